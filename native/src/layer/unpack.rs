//! unpack_layer: extracts one layer blob into a directory. Decompression and the diffID hash run on their own
//! thread; extraction walks every path from the target's fd without following symlinks (see fsat.rs), applies
//! or writes whiteouts, and keeps ownership when the process may set it (root, or mapped ids in a user
//! namespace), otherwise records it in the `user.gantry.owner` xattr.
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::thread;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::error::{show, LayerError, LayerResult};
use super::fsat::{self, os};
use super::path::{self, Whiteout};
use super::stream::{digest_string, ChannelReader, CHUNK};

/// Where ownership that could not be set is recorded, as `uid:gid`.
pub const OWNER_XATTR: &str = "user.gantry.owner";

/// The record a directory holds for an entry of it that cannot carry user.* xattrs itself (a symlink, fifo
/// or device): `user.gantry.owner.<name>` = `uid:gid`. Only owners other than root are recorded: the caller's
/// ids, which such an entry keeps, stand for root in the container's user namespace, and a directory's
/// xattr space is small (ext4: one block). None when the name is too long for an xattr name (255 bytes).
pub fn entry_owner_xattr(name: &[u8]) -> Option<std::ffi::OsString> {
  use std::os::unix::ffi::OsStringExt;
  let key = [OWNER_XATTR.as_bytes(), b".", name].concat();
  (key.len() <= 255).then(|| std::ffi::OsString::from_vec(key))
}

pub struct UnpackOptions {
  pub source: PathBuf,
  pub target: PathBuf,
  /// Write overlayfs whiteouts (for per-layer lowerdirs) instead of applying them.
  pub overlay: bool,
}

pub struct Skipped {
  pub path: String,
  pub reason: String,
}

pub struct UnpackReport {
  pub entries: u32,
  pub skipped: Vec<Skipped>,
  /// sha256 of the uncompressed tar stream.
  pub diff_id: String,
  /// Entries whose uid/gid could not be set and were recorded in `user.gantry.owner` instead.
  pub owners_recorded: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
  None,
  Gzip,
  Zstd,
}

impl Compression {
  /// The option names gantry uses: `gzip`, `zstd`, `none`.
  pub fn from_name(name: &str) -> Option<Compression> {
    match name {
      "gzip" => Some(Compression::Gzip),
      "zstd" => Some(Compression::Zstd),
      "none" => Some(Compression::None),
      _ => None,
    }
  }
}

/// Compression from the blob's first bytes (gzip 1f8b, zstd frame 28b52ffd); anything else is read as tar.
pub fn sniff(head: &[u8]) -> Compression {
  if head.starts_with(&[0x1f, 0x8b]) {
    Compression::Gzip
  } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
    Compression::Zstd
  } else {
    Compression::None
  }
}

pub fn unpack_layer(opts: &UnpackOptions) -> LayerResult<UnpackReport> {
  let source_name = opts.source.display().to_string();
  let file = File::open(&opts.source).map_err(|e| LayerError::io(format!("open {source_name}"), e))?;
  let root = rfs::open(
    &opts.target,
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
    Mode::empty(),
  )
  .map_err(|e| LayerError::io(format!("open target {}", opts.target.display()), e.into()))?;

  let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
  let reader = thread::Builder::new()
    .name("gantry-unpack-read".into())
    .spawn(move || -> io::Result<String> {
      let mut buffered = BufReader::with_capacity(CHUNK, file);
      let head = buffered.fill_buf()?.to_vec();
      let mut input: Box<dyn Read> = match sniff(&head) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
      };
      let mut hasher = Sha256::new();
      loop {
        let mut chunk = vec![0u8; CHUNK];
        let n = match read_full(&mut input, &mut chunk) {
          Ok(n) => n,
          Err(e) => {
            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
          }
        };
        if n == 0 {
          return Ok(digest_string(hasher));
        }
        chunk.truncate(n);
        hasher.update(&chunk);
        // The extractor hung up (it failed); its error is the one to report.
        if tx.send(Ok(chunk)).is_err() {
          return Err(io::Error::other("extraction stopped"));
        }
      }
    })
    .map_err(|e| LayerError::io("spawn reader thread", e))?;

  let mut unpacker = Unpacker::new(root, opts.overlay);
  let mut archive = tar::Archive::new(ChannelReader::new(rx));
  let extracted = unpacker.extract_all(&mut archive);
  // On success, read to the end so the diffID covers the whole stream (tar's zero blocks and any padding).
  // Either way the channel's receiver is dropped here, before the join: a reader blocked on a full channel
  // then stops instead of waiting forever.
  let mut rest = archive.into_inner();
  let drained =
    extracted.and_then(|()| io::copy(&mut rest, &mut io::sink()).map_err(|e| LayerError::Invalid(e.to_string())));
  drop(rest);
  let read = reader
    .join()
    .map_err(|_| LayerError::Invalid("reader thread panicked".into()))?;
  drained?;
  let diff_id = read.map_err(|e| LayerError::Invalid(format!("{source_name}: {e}")))?;
  unpacker.finish()?;
  Ok(UnpackReport {
    entries: unpacker.entries,
    skipped: unpacker.skipped,
    diff_id,
    owners_recorded: unpacker.owners_recorded,
  })
}

/// Fills `buf` unless the input ends first (decoders may return short reads mid-stream).
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
  let mut n = 0;
  while n < buf.len() {
    match input.read(&mut buf[n..]) {
      Ok(0) => break,
      Ok(k) => n += k,
      Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
      Err(e) => return Err(e),
    }
  }
  Ok(n)
}

/// Directory metadata applied after all entries: a directory's mtime changes with every child written, and a
/// read-only mode would stop an unprivileged process from writing the children.
struct DeferredDir {
  mode: u32,
  mtime: Option<Timespec>,
}

/// What a tar header says about an entry, besides its name and type.
struct Meta {
  mode: u32,
  uid: u64,
  gid: u64,
  mtime: Timespec,
  xattrs: Vec<(String, Vec<u8>)>,
}

enum Node<'a> {
  Fd(BorrowedFd<'a>),
  At(BorrowedFd<'a>, &'a [u8]),
}

struct Unpacker {
  root: OwnedFd,
  overlay: bool,
  unprivileged: bool,
  euid: u32,
  egid: u32,
  /// Paths this layer wrote (and their ancestors): whiteouts and opaque markers only hide lower layers.
  created: HashSet<Vec<u8>>,
  opaque: Vec<Vec<u8>>,
  deferred: BTreeMap<Vec<u8>, DeferredDir>,
  entries: u32,
  skipped: Vec<Skipped>,
  owners_recorded: u32,
  copy_buf: Vec<u8>,
}

impl Unpacker {
  fn new(root: OwnedFd, overlay: bool) -> Self {
    let euid = rustix::process::geteuid().as_raw();
    Unpacker {
      root,
      overlay,
      unprivileged: euid != 0,
      euid,
      egid: rustix::process::getegid().as_raw(),
      created: HashSet::new(),
      opaque: Vec::new(),
      deferred: BTreeMap::new(),
      entries: 0,
      skipped: Vec::new(),
      owners_recorded: 0,
      copy_buf: vec![0u8; 256 * 1024],
    }
  }

  fn skip(&mut self, path: &[u8], reason: String) {
    self.skipped.push(Skipped {
      path: show(path),
      reason,
    });
  }

  fn extract_all<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> LayerResult<()> {
    let bad = |e: io::Error| LayerError::Invalid(format!("cannot read tar: {e}"));
    for entry in archive.entries().map_err(bad)? {
      let mut entry = entry.map_err(bad)?;
      if entry.header().entry_type().is_pax_global_extensions() {
        continue;
      }
      self.entries += 1;
      self.extract(&mut entry)?;
    }
    Ok(())
  }

  fn extract<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> LayerResult<()> {
    let name = entry.path_bytes().into_owned();
    let parts = path::components(&name)?;
    // The archive root (`./`) describes the target itself, which belongs to the caller.
    let Some((base, dir)) = parts.split_last() else {
      return Ok(());
    };
    let key = path::join(&parts);
    match path::whiteout(base)? {
      Whiteout::Opaque => return self.opaque_marker(dir),
      Whiteout::Remove(hidden) => return self.whiteout(dir, hidden),
      Whiteout::None => {}
    }
    let meta = self.meta(entry, &name)?;
    let kind = entry.header().entry_type();
    let parent = self.parent(dir)?;
    let parent = parent.as_fd();
    let io_err = |what: &str, e: io::Error| LayerError::io(format!("{what} {}", show(&key)), e);
    match kind {
      tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
        self.clear(parent, base, &key, false)?;
        let fd = rfs::openat(
          parent,
          os(base),
          OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
          Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err("create", e.into()))?;
        let mut file = File::from(fd);
        self.copy(entry, &mut file).map_err(|e| io_err("write", e))?;
        self.apply(Node::Fd(file.as_fd()), &key, &meta, true)?;
        rfs::futimens(&file, &times(meta.mtime)).map_err(|e| io_err("set times on", e.into()))?;
      }
      tar::EntryType::Directory => {
        if self.clear(parent, base, &key, true)? {
          rfs::mkdirat(parent, os(base), Mode::from_raw_mode(0o700)).map_err(|e| io_err("mkdir", e.into()))?;
        }
        let fd = fsat::open_dir_nofollow(parent, base).map_err(|e| io_err("open", e.into()))?;
        self.apply(Node::Fd(fd.as_fd()), &key, &meta, false)?;
        self.deferred.insert(
          key.clone(),
          DeferredDir {
            mode: meta.mode,
            mtime: Some(meta.mtime),
          },
        );
      }
      tar::EntryType::Symlink => {
        let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
        self.clear(parent, base, &key, false)?;
        // The link is stored as is (absolute targets are normal in images); it is never followed on write.
        rfs::symlinkat(os(&target), parent, os(base)).map_err(|e| io_err("symlink", e.into()))?;
        self.apply(Node::At(parent, base), &key, &meta, false)?;
        rfs::utimensat(parent, os(base), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
          .map_err(|e| io_err("set times on", e.into()))?;
      }
      tar::EntryType::Link => {
        let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
        if !self.hard_link(parent, base, &key, &target)? {
          return Ok(());
        }
      }
      tar::EntryType::Fifo => {
        self.clear(parent, base, &key, false)?;
        rfs::mknodat(parent, os(base), FileType::Fifo, Mode::from_raw_mode(0o600), 0)
          .map_err(|e| io_err("mkfifo", e.into()))?;
        self.apply(Node::At(parent, base), &key, &meta, true)?;
        rfs::utimensat(parent, os(base), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
          .map_err(|e| io_err("set times on", e.into()))?;
      }
      tar::EntryType::Char | tar::EntryType::Block => {
        let (major, minor) = (entry.header().device_major(), entry.header().device_minor());
        let dev = format!(
          "{}:{}",
          major.ok().flatten().unwrap_or(0),
          minor.ok().flatten().unwrap_or(0)
        );
        self.skip(
          &key,
          format!("device node {dev} skipped: unpacking never creates devices"),
        );
        return Ok(());
      }
      other => {
        self.skip(&key, format!("unsupported tar entry type {other:?}"));
        return Ok(());
      }
    }
    self.mark_created(&parts);
    Ok(())
  }

  /// The parent directory of an entry, created if missing, walked without following symlinks.
  fn parent(&mut self, dir: &[&[u8]]) -> LayerResult<OwnedFd> {
    let fd = fsat::open_path(self.root.as_fd(), dir, true)?.expect("open_path creates missing directories");
    self.ensure_writable(fd.as_fd(), dir)?;
    Ok(fd)
  }

  /// Without root, a read-only directory from a lower layer must be made writable to add entries; its mode
  /// and mtime are put back at the end.
  fn ensure_writable(&mut self, dir: BorrowedFd<'_>, parts: &[&[u8]]) -> LayerResult<()> {
    if !self.unprivileged {
      return Ok(());
    }
    let st = rfs::fstat(dir).map_err(|e| LayerError::io("stat directory", e.into()))?;
    if st.st_mode & 0o300 == 0o300 {
      return Ok(());
    }
    let key = path::join(parts);
    rfs::fchmod(dir, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700))
      .map_err(|e| LayerError::io(format!("make {} writable", show(&key)), e.into()))?;
    let mtime = Timespec {
      tv_sec: st.st_mtime as _,
      tv_nsec: st.st_mtime_nsec as _,
    };
    self.deferred.entry(key).or_insert(DeferredDir {
      mode: st.st_mode & 0o7777,
      mtime: Some(mtime),
    });
    Ok(())
  }

  /// Makes room for a new entry at `parent/base`. An existing directory stays when `keep_dir` (a directory
  /// entry over a directory only updates its metadata); returns whether the name is now free.
  fn clear(&mut self, parent: BorrowedFd<'_>, base: &[u8], key: &[u8], keep_dir: bool) -> LayerResult<bool> {
    let kind = fsat::kind_at(parent, base).map_err(|e| LayerError::io(format!("stat {}", show(key)), e))?;
    match kind {
      None => Ok(true),
      Some(FileType::Directory) if keep_dir => Ok(false),
      Some(_) => {
        fsat::remove_all_at(parent, base, self.unprivileged)
          .map_err(|e| LayerError::io(format!("replace {}", show(key)), e))?;
        Ok(true)
      }
    }
  }

  fn copy<R: Read>(&mut self, entry: &mut R, file: &mut File) -> io::Result<()> {
    loop {
      let n = match entry.read(&mut self.copy_buf) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
        Err(e) => return Err(e),
      };
      file.write_all(&self.copy_buf[..n])?;
    }
  }

  /// Creates a hard link to an earlier entry. The link target is resolved inside the target with the same
  /// no-symlink walk, so it can never name a host file. Returns false when the entry was skipped.
  fn hard_link(&mut self, parent: BorrowedFd<'_>, base: &[u8], key: &[u8], target: &[u8]) -> LayerResult<bool> {
    let target_parts = path::components(target)
      .map_err(|e| LayerError::Unsafe(format!("hard link {} -> {}: {e}", show(key), show(target))))?;
    let Some((target_base, target_dir)) = target_parts.split_last() else {
      return Err(LayerError::Unsafe(format!(
        "hard link {} points at the target root",
        show(key)
      )));
    };
    if path::join(&target_parts) == key {
      return Ok(false);
    }
    let Some(src_dir) = fsat::open_path(self.root.as_fd(), target_dir, false)? else {
      self.skip(key, format!("hard link target {} does not exist", show(target)));
      return Ok(false);
    };
    match fsat::kind_at(src_dir.as_fd(), target_base).map_err(|e| LayerError::io(show(target), e))? {
      None => {
        self.skip(key, format!("hard link target {} does not exist", show(target)));
        Ok(false)
      }
      Some(FileType::Directory) => Err(LayerError::Unsafe(format!("hard link {} to a directory", show(key)))),
      Some(_) => {
        self.clear(parent, base, key, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself, never what it points at.
        rfs::linkat(src_dir.as_fd(), os(target_base), parent, os(base), AtFlags::empty())
          .map_err(|e| LayerError::io(format!("link {} -> {}", show(key), show(target)), e.into()))?;
        Ok(true)
      }
    }
  }

  fn whiteout(&mut self, dir: &[&[u8]], hidden: &[u8]) -> LayerResult<()> {
    let mut hidden_parts = dir.to_vec();
    hidden_parts.push(hidden);
    let key = path::join(&hidden_parts);
    if self.overlay {
      let parent = self.parent(dir)?;
      self.clear(parent.as_fd(), hidden, &key, false)?;
      return self.overlay_whiteout(parent.as_fd(), hidden, &key);
    }
    let Some(parent) = fsat::open_path(self.root.as_fd(), dir, false)? else {
      return Ok(());
    };
    if self.created.contains(&key) {
      return Ok(());
    }
    self.ensure_writable(parent.as_fd(), dir)?;
    fsat::remove_all_at(parent.as_fd(), hidden, self.unprivileged)
      .map_err(|e| LayerError::io(format!("whiteout {}", show(&key)), e))
  }

  /// An overlayfs whiteout: the 0/0 character device (Linux ≥ 5.8 lets unprivileged users make this one), or,
  /// where mknod is refused, the xattr form (Linux ≥ 6.7: an empty file with `overlay.whiteout`, its
  /// directory marked `overlay.opaque=x`).
  fn overlay_whiteout(&mut self, parent: BorrowedFd<'_>, name: &[u8], key: &[u8]) -> LayerResult<()> {
    match rfs::mknodat(
      parent,
      os(name),
      FileType::CharacterDevice,
      Mode::empty(),
      rfs::makedev(0, 0),
    ) {
      Ok(()) => return Ok(()),
      Err(Errno::PERM) | Err(Errno::ACCESS) => {}
      Err(e) => return Err(LayerError::io(format!("whiteout {}", show(key)), e.into())),
    }
    let fd = rfs::openat(
      parent,
      os(name),
      OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
      Mode::from_raw_mode(0o600),
    )
    .map_err(|e| LayerError::io(format!("whiteout {}", show(key)), e.into()))?;
    set_overlay_xattr(Node::Fd(fd.as_fd()), "whiteout", b"y")
      .map_err(|e| LayerError::io(format!("whiteout xattr on {}", show(key)), e))?;
    // Only mark the directory when it is not already fully opaque ("y" wins over "x").
    let marked = rfs::fgetxattr(parent, "user.overlay.opaque", &mut [0u8; 1][..])
      .or_else(|_| rfs::fgetxattr(parent, "trusted.overlay.opaque", &mut [0u8; 1][..]));
    if marked.is_err() {
      set_overlay_xattr(Node::Fd(parent), "opaque", b"x")
        .map_err(|e| LayerError::io(format!("mark whiteouts in the directory of {}", show(key)), e))?;
    }
    Ok(())
  }

  fn opaque_marker(&mut self, dir: &[&[u8]]) -> LayerResult<()> {
    if self.overlay {
      let fd = fsat::open_path(self.root.as_fd(), dir, true)?.expect("open_path creates missing directories");
      return set_overlay_xattr(Node::Fd(fd.as_fd()), "opaque", b"y")
        .map_err(|e| LayerError::io(format!("mark {} opaque", show(&path::join(dir))), e));
    }
    self.opaque.push(path::join(dir));
    Ok(())
  }

  fn mark_created(&mut self, parts: &[&[u8]]) {
    for i in 1..=parts.len() {
      self.created.insert(path::join(&parts[..i]));
    }
  }

  /// Ownership, mode (after chown, which clears set-id bits) and xattrs.
  fn apply(&mut self, node: Node<'_>, key: &[u8], meta: &Meta, set_mode: bool) -> LayerResult<()> {
    let (uid, gid) = (meta.uid, meta.gid);
    // A record an earlier layer left for an entry of this name must not describe this one.
    if let (Node::At(dir, name), true) = (&node, self.unprivileged) {
      if let Some(record) = entry_owner_xattr(name) {
        let _ = rfs::fremovexattr(dir, &record);
      }
    }
    if (uid, gid) != (self.euid as u64, self.egid as u64) {
      let ids = (u32::try_from(uid).ok(), u32::try_from(gid).ok());
      let owned = match (ids, &node) {
        ((Some(u), Some(g)), Node::Fd(fd)) => rfs::fchown(fd, Some(rfs::Uid::from_raw(u)), Some(rfs::Gid::from_raw(g))),
        ((Some(u), Some(g)), Node::At(dir, name)) => rfs::chownat(
          dir,
          os(name),
          Some(rfs::Uid::from_raw(u)),
          Some(rfs::Gid::from_raw(g)),
          AtFlags::SYMLINK_NOFOLLOW,
        ),
        _ => Err(Errno::INVAL),
      };
      match owned {
        Ok(()) => {}
        // Not permitted (no root) or not mapped in this user namespace: record instead.
        Err(Errno::PERM) | Err(Errno::INVAL) => {
          self.owners_recorded += 1;
          let value = format!("{uid}:{gid}");
          // Best effort: a record that does not fit (xattr space, read-only filesystem) leaves the count.
          match &node {
            Node::Fd(fd) => {
              let _ = rfs::fsetxattr(fd, OWNER_XATTR, value.as_bytes(), rfs::XattrFlags::empty());
            }
            // Symlinks, fifos and devices take no user.* xattrs: their directory holds the record.
            Node::At(dir, name) if (uid, gid) != (0, 0) => {
              if let Some(key) = entry_owner_xattr(name) {
                let _ = rfs::fsetxattr(dir, &key, value.as_bytes(), rfs::XattrFlags::empty());
              }
            }
            Node::At(..) => {}
          }
        }
        Err(e) => return Err(LayerError::io(format!("chown {}", show(key)), e.into())),
      }
    }
    if set_mode {
      let mode = Mode::from_raw_mode(meta.mode);
      let changed = match &node {
        Node::Fd(fd) => rfs::fchmod(fd, mode),
        Node::At(dir, name) => rfs::chmodat(dir, os(name), mode, AtFlags::empty()),
      };
      changed.map_err(|e| LayerError::io(format!("chmod {}", show(key)), e.into()))?;
    }
    for (name, value) in &meta.xattrs {
      if is_reserved_xattr(name) {
        self.skip(key, format!("xattr {name} dropped: reserved for overlayfs and gantry"));
        continue;
      }
      let set = match &node {
        Node::Fd(fd) => rfs::fsetxattr(fd, name.as_str(), value, rfs::XattrFlags::empty()).map_err(Into::into),
        Node::At(dir, base) => fsat::lsetxattr_at(*dir, base, name, value),
      };
      if let Err(e) = set {
        self.skip(key, format!("xattr {name} not kept: {e}"));
      }
    }
    Ok(())
  }

  fn meta<R: Read>(&self, entry: &mut tar::Entry<R>, name: &[u8]) -> LayerResult<Meta> {
    let bad = |e: io::Error| LayerError::Invalid(format!("{}: bad header: {e}", show(name)));
    let header = entry.header();
    let mode = header.mode().map_err(bad)? & 0o7777;
    let uid = header.uid().map_err(bad)?;
    let gid = header.gid().map_err(bad)?;
    let mut mtime = Timespec {
      tv_sec: header.mtime().map_err(bad)? as _,
      tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(bad)? {
      for ext in exts {
        let ext = ext.map_err(bad)?;
        let Ok(key) = ext.key() else { continue };
        if let Some(xattr) = key.strip_prefix("SCHILY.xattr.") {
          xattrs.push((xattr.to_string(), ext.value_bytes().to_vec()));
        } else if key == "mtime" {
          if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
            mtime = t;
          }
        }
      }
    }
    Ok(Meta {
      mode,
      uid,
      gid,
      mtime,
      xattrs,
    })
  }

  /// Opaque directories (apply mode) lose everything this layer did not write; then directory modes and
  /// mtimes are set, deepest first so a parent's mode never blocks reaching its children.
  fn finish(&mut self) -> LayerResult<()> {
    for dir in std::mem::take(&mut self.opaque) {
      let parts: Vec<&[u8]> = if dir.is_empty() {
        Vec::new()
      } else {
        dir.split(|b| *b == b'/').collect()
      };
      if let Some(fd) = fsat::open_path(self.root.as_fd(), &parts, false)? {
        self
          .prune(fd.as_fd(), &dir)
          .map_err(|e| LayerError::io(format!("opaque {}", show(&dir)), e))?;
      }
    }
    for (key, d) in std::mem::take(&mut self.deferred).into_iter().rev() {
      let parts: Vec<&[u8]> = if key.is_empty() {
        Vec::new()
      } else {
        key.split(|b| *b == b'/').collect()
      };
      let Some(fd) = fsat::open_path(self.root.as_fd(), &parts, false)? else {
        continue;
      };
      let err = |e: Errno| LayerError::io(format!("set metadata on {}", show(&key)), e.into());
      rfs::fchmod(&fd, Mode::from_raw_mode(d.mode)).map_err(err)?;
      if let Some(t) = d.mtime {
        rfs::futimens(&fd, &times(t)).map_err(err)?;
      }
    }
    Ok(())
  }

  fn prune(&self, dir: BorrowedFd<'_>, prefix: &[u8]) -> io::Result<()> {
    for child in fsat::list_dir(dir)? {
      let key = if prefix.is_empty() {
        child.clone()
      } else {
        [prefix, b"/", &child].concat()
      };
      if !self.created.contains(&key) {
        fsat::remove_all_at(dir, &child, self.unprivileged)?;
      } else if fsat::kind_at(dir, &child)? == Some(FileType::Directory) {
        let sub = fsat::open_dir_nofollow(dir, &child)?;
        self.prune(sub.as_fd(), &key)?;
      }
    }
    Ok(())
  }
}

/// Sets `trusted.overlay.<name>` (for overlay mounted by real root) and `user.overlay.<name>` (for overlay
/// mounted with `userxattr` inside a user namespace); at least one must stick.
fn set_overlay_xattr(node: Node<'_>, name: &str, value: &[u8]) -> io::Result<()> {
  let mut last = None;
  let mut any = false;
  for prefix in ["trusted.overlay.", "user.overlay."] {
    let key = format!("{prefix}{name}");
    let set = match &node {
      Node::Fd(fd) => rfs::fsetxattr(fd, key.as_str(), value, rfs::XattrFlags::empty()).map_err(Into::into),
      Node::At(dir, base) => fsat::lsetxattr_at(*dir, base, &key, value),
    };
    match set {
      Ok(()) => any = true,
      Err(e) => last = Some(e),
    }
  }
  if any {
    Ok(())
  } else {
    Err(last.unwrap_or_else(|| io::Error::other("no xattr namespace accepted")))
  }
}

/// Xattrs a layer must not set: overlayfs metadata (could redirect or hide paths in a mount) and gantry's
/// own ownership record.
pub fn is_reserved_xattr(name: &str) -> bool {
  name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") || name.starts_with("user.gantry.")
}

fn times(t: Timespec) -> Timestamps {
  Timestamps {
    last_access: t,
    last_modification: t,
  }
}

/// PAX times are decimal seconds with an optional fraction (`1700000000.123456789`).
fn parse_pax_time(value: &str) -> Option<Timespec> {
  let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
  let tv_sec: i64 = secs.parse().ok()?;
  let digits: String = frac.chars().take(9).collect();
  let tv_nsec: i64 = if digits.is_empty() {
    0
  } else {
    format!("{digits:0<9}").parse().ok()?
  };
  if tv_sec < 0 && tv_nsec > 0 {
    return Some(Timespec {
      tv_sec: tv_sec - 1,
      tv_nsec: (1_000_000_000 - tv_nsec) as _,
    });
  }
  Some(Timespec {
    tv_sec: tv_sec as _,
    tv_nsec: tv_nsec as _,
  })
}
