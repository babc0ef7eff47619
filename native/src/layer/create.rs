//! create_layer: turns an overlay upperdir, or the difference between two trees, into a layer blob. One thread
//! walks the tree in sorted order and writes the tar while hashing it (diffID); compression runs on worker
//! threads (parallel gzip blocks or zstd's own workers) and a writer thread hashes the compressed bytes
//! (digest) into a temporary file that is renamed into place at the end.
use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs as rfs;
use tar::EntryType;

use super::error::{LayerError, LayerResult};
use super::path::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::pgzip::ParGzWriter;
use super::stream::{digest_string, HashWriter, CHUNK};
use super::tarw::{TarEntry, TarWriter};
use super::unpack::{entry_owner_xattr, Compression, OWNER_XATTR};

pub struct CreateOptions {
  pub changes: PathBuf,
  pub base: Option<PathBuf>,
  pub output: PathBuf,
  pub compression: Compression,
  pub level: Option<i32>,
  pub source_date_epoch: Option<i64>,
  /// Owners to write instead of the files' own (or their `user.gantry.owner` record), by `owner_key` path:
  /// how a caller that could not chown (no root, and symlinks take no xattrs) says who owns an entry.
  pub owners: HashMap<Vec<u8>, (u64, u64)>,
}

/// The key `owners` uses for a path relative to the changes directory: no leading or trailing `/`.
pub fn owner_key(path: &str) -> Vec<u8> {
  path.trim_matches('/').as_bytes().to_vec()
}

pub struct CreateReport {
  pub digest: String,
  pub diff_id: String,
  pub size: u64,
}

type Blob = HashWriter<BufWriter<File>>;

/// The compressor between the tar stream and the blob file.
enum Sink {
  Plain(Blob),
  Gzip(ParGzWriter<Blob>),
  Zstd(zstd::stream::write::Encoder<'static, Blob>),
}

impl Write for Sink {
  fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
    match self {
      Sink::Plain(w) => w.write(buf),
      Sink::Gzip(w) => w.write(buf),
      Sink::Zstd(w) => w.write(buf),
    }
  }

  fn flush(&mut self) -> io::Result<()> {
    match self {
      Sink::Plain(w) => w.flush(),
      Sink::Gzip(w) => w.flush(),
      Sink::Zstd(w) => w.flush(),
    }
  }
}

impl Sink {
  fn finish(self) -> io::Result<Blob> {
    match self {
      Sink::Plain(w) => Ok(w),
      Sink::Gzip(w) => w.finish(),
      Sink::Zstd(w) => w.finish(),
    }
  }
}

pub fn create_layer(opts: &CreateOptions) -> LayerResult<CreateReport> {
  let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
  let output = &opts.output;
  let file_name = output
    .file_name()
    .map(|n| n.to_string_lossy().into_owned())
    .unwrap_or_default();
  // Unique per process and call: concurrent calls may target the same output (e.g. the same digest).
  static SEQ: AtomicU64 = AtomicU64::new(0);
  let seq = SEQ.fetch_add(1, Ordering::Relaxed);
  let tmp = output.with_file_name(format!(".{file_name}.{}-{seq}.tmp", std::process::id()));
  let out_err = |e: io::Error| LayerError::io(format!("write {}", output.display()), e);
  let file = OpenOptions::new()
    .write(true)
    .create(true)
    .truncate(true)
    .open(&tmp)
    .map_err(out_err)?;
  let blob = HashWriter::new(BufWriter::with_capacity(CHUNK, file));
  let result = (|| {
    let sink = match opts.compression {
      Compression::None => Sink::Plain(blob),
      Compression::Gzip => {
        let level = opts.level.unwrap_or(6).clamp(1, 9) as u32;
        Sink::Gzip(ParGzWriter::new(blob, level, threads).map_err(out_err)?)
      }
      Compression::Zstd => {
        let mut enc = zstd::stream::write::Encoder::new(blob, opts.level.unwrap_or(3)).map_err(out_err)?;
        enc.multithread(threads as u32).map_err(out_err)?;
        Sink::Zstd(enc)
      }
    };
    let mut walker = Walker {
      tar: TarWriter::new(HashWriter::new(sink)),
      epoch: opts.source_date_epoch,
      owners: &opts.owners,
      links: HashMap::new(),
      pending: Vec::new(),
    };
    match &opts.base {
      None => walker.changes(&opts.changes, b"")?,
      Some(base) => walker.diff(&opts.changes, base, b"")?,
    }
    let tarred = walker.tar.finish().map_err(out_err)?;
    let diff_id = digest_string(tarred.hasher);
    let mut blob = tarred.inner.finish().map_err(out_err)?;
    blob.flush().map_err(out_err)?;
    Ok(CreateReport {
      digest: digest_string(blob.hasher),
      diff_id,
      size: blob.count,
    })
  })();
  match result {
    Ok(report) => {
      fs::rename(&tmp, output).map_err(out_err)?;
      Ok(report)
    }
    Err(e) => {
      let _ = fs::remove_file(&tmp);
      Err(e)
    }
  }
}

/// One directory entry with what the tar needs to know about it.
struct Node {
  name: Vec<u8>,
  path: PathBuf,
  meta: Metadata,
  xattrs: Vec<(String, Vec<u8>)>,
  owner: Option<(u64, u64)>,
  whiteout: bool,
  opaque: bool,
}

impl Node {
  fn read(dir: &Path, name: &[u8]) -> LayerResult<Node> {
    let path = dir.join(std::ffi::OsStr::from_bytes(name));
    let meta = fs::symlink_metadata(&path).map_err(|e| LayerError::io(path.display().to_string(), e))?;
    let all = read_xattrs(&path).map_err(|e| LayerError::io(format!("xattrs of {}", path.display()), e))?;
    let has = |key: &str, value: &[u8]| {
      ["trusted.overlay.", "user.overlay."]
        .iter()
        .any(|p| all.iter().any(|(k, v)| *k == format!("{p}{key}") && v == value))
    };
    let ft = meta.file_type();
    let whiteout = (ft.is_char_device() && meta.rdev() == 0)
      || (ft.is_file()
        && meta.len() == 0
        && ["trusted.overlay.whiteout", "user.overlay.whiteout"]
          .iter()
          .any(|k| all.iter().any(|(n, _)| n == k)));
    let opaque = ft.is_dir() && has("opaque", b"y");
    let owner = if ft.is_file() || ft.is_dir() {
      all.iter().find(|(k, _)| k == OWNER_XATTR).and_then(|(_, v)| parse_owner(v))
    } else {
      entry_record(dir, name)
    };
    let xattrs = all.into_iter().filter(|(k, _)| keep_xattr(k)).collect();
    Ok(Node {
      name: name.to_vec(),
      path,
      meta,
      xattrs,
      owner,
      whiteout,
      opaque,
    })
  }

  /// The name this node has in the tar: whiteouts become `.wh.NAME`.
  fn tar_name(&self, overlay: bool) -> Vec<u8> {
    if overlay && self.whiteout {
      [WHITEOUT_PREFIX, &self.name].concat()
    } else {
      self.name.clone()
    }
  }
}

struct Walker<'a> {
  tar: TarWriter<HashWriter<Sink>>,
  epoch: Option<i64>,
  owners: &'a HashMap<Vec<u8>, (u64, u64)>,
  /// First tar path of each multiply-linked inode, to write later names as hard links.
  links: HashMap<(u64, u64), Vec<u8>>,
  /// Unchanged ancestor directories (diff mode), written only if something below them is.
  pending: Vec<(Vec<u8>, Node)>,
}

fn child_path(rel: &[u8], name: &[u8]) -> Vec<u8> {
  if rel.is_empty() {
    name.to_vec()
  } else {
    [rel, b"/", name].concat()
  }
}

fn sorted_names(dir: &Path) -> LayerResult<Vec<Vec<u8>>> {
  let mut names = Vec::new();
  let entries = fs::read_dir(dir).map_err(|e| LayerError::io(format!("read {}", dir.display()), e))?;
  for entry in entries {
    let entry = entry.map_err(|e| LayerError::io(format!("read {}", dir.display()), e))?;
    names.push(entry.file_name().as_bytes().to_vec());
  }
  names.sort();
  Ok(names)
}

impl Walker<'_> {
  /// Overlay upperdir mode: every entry is a change; whiteout devices/xattrs become `.wh.` files and opaque
  /// directories get a `.wh..wh..opq` entry right after their own.
  fn changes(&mut self, dir: &Path, rel: &[u8]) -> LayerResult<()> {
    let mut nodes = Vec::new();
    for name in sorted_names(dir)? {
      nodes.push(Node::read(dir, &name)?);
    }
    nodes.sort_by_key(|a| a.tar_name(true));
    for node in nodes {
      let path = child_path(rel, &node.tar_name(true));
      if node.whiteout {
        self.whiteout(&path, &node)?;
        continue;
      }
      self.write(&path, &node)?;
      if node.meta.is_dir() {
        if node.opaque {
          self.whiteout(&child_path(&path, OPAQUE_MARKER), &node)?;
        }
        self.changes(&node.path, &path)?;
      }
    }
    Ok(())
  }

  /// Two-tree mode: entries new or changed in `new` (type, mode, owner, size, mtime, link target, device,
  /// xattrs) are written with their parent directories, entries only in `old` become whiteouts.
  fn diff(&mut self, new: &Path, old: &Path, rel: &[u8]) -> LayerResult<()> {
    let new_names = sorted_names(new)?;
    let old_names = sorted_names(old)?;
    let mut items: Vec<(Vec<u8>, Option<Node>, bool)> = Vec::new();
    for name in &new_names {
      let in_old = old_names.binary_search(name).is_ok();
      items.push((name.clone(), Some(Node::read(new, name)?), in_old));
    }
    for name in &old_names {
      if new_names.binary_search(name).is_err() {
        items.push(([WHITEOUT_PREFIX, name].concat(), None, true));
      }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for (tar_name, node, in_old) in items {
      let path = child_path(rel, &tar_name);
      let Some(node) = node else {
        let epoch = self.epoch.unwrap_or(0);
        self.write_whiteout(&path, epoch.max(0) as u64)?;
        continue;
      };
      let old_node = if in_old {
        Some(Node::read(old, &node.name)?)
      } else {
        None
      };
      let same_type = old_node
        .as_ref()
        .map(|o| o.meta.file_type() == node.meta.file_type())
        .unwrap_or(false);
      if node.meta.is_dir() && same_type {
        let changed = differs(&node, old_node.as_ref().expect("same_type implies an old node"))?;
        let depth = self.pending.len();
        let sub_old = old.join(std::ffi::OsStr::from_bytes(&node.name));
        let sub_new = node.path.clone();
        if changed {
          self.write(&path, &node)?;
        } else {
          self.pending.push((path.clone(), node));
        }
        self.diff(&sub_new, &sub_old, &path)?;
        self.pending.truncate(depth);
      } else if !same_type || differs(&node, old_node.as_ref().expect("same_type implies an old node"))? {
        self.write(&path, &node)?;
        if node.meta.is_dir() {
          self.all(&node.path, &path)?;
        }
      }
    }
    Ok(())
  }

  /// A whole new subtree (diff mode): plain files, no overlay interpretation.
  fn all(&mut self, dir: &Path, rel: &[u8]) -> LayerResult<()> {
    for name in sorted_names(dir)? {
      let node = Node::read(dir, &name)?;
      let path = child_path(rel, &name);
      self.write(&path, &node)?;
      if node.meta.is_dir() {
        self.all(&node.path, &path)?;
      }
    }
    Ok(())
  }

  fn mtime(&self, meta: &Metadata) -> u64 {
    let t = meta.mtime();
    let t = match self.epoch {
      Some(epoch) => t.min(epoch),
      None => t,
    };
    t.max(0) as u64
  }

  fn whiteout(&mut self, path: &[u8], node: &Node) -> LayerResult<()> {
    let mtime = self.mtime(&node.meta);
    self.write_whiteout(path, mtime)
  }

  fn write_whiteout(&mut self, path: &[u8], mtime: u64) -> LayerResult<()> {
    self.flush_pending()?;
    let entry = TarEntry {
      name: path,
      kind: EntryType::Regular,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime,
      size: 0,
      link: None,
      device: (0, 0),
      xattrs: &[],
    };
    self
      .tar
      .append(&entry, None)
      .map_err(|e| LayerError::io("write tar", e))
  }

  fn flush_pending(&mut self) -> LayerResult<()> {
    for (path, node) in std::mem::take(&mut self.pending) {
      self.write_node(&path, &node)?;
    }
    Ok(())
  }

  fn write(&mut self, path: &[u8], node: &Node) -> LayerResult<()> {
    self.flush_pending()?;
    self.write_node(path, node)
  }

  fn write_node(&mut self, path: &[u8], node: &Node) -> LayerResult<()> {
    let meta = &node.meta;
    let ft = meta.file_type();
    let given = self.owners.get(path).copied();
    let (uid, gid) = given.or(node.owner).unwrap_or((meta.uid() as u64, meta.gid() as u64));
    let err = |e: io::Error| LayerError::io(node.path.display().to_string(), e);
    let mut entry = TarEntry {
      name: path,
      kind: EntryType::Regular,
      mode: meta.mode() & 0o7777,
      uid,
      gid,
      mtime: self.mtime(meta),
      size: 0,
      link: None,
      device: (0, 0),
      xattrs: &node.xattrs,
    };
    let dir_name;
    let target;
    if ft.is_dir() {
      dir_name = [path, b"/"].concat();
      entry.name = &dir_name;
      entry.kind = EntryType::Directory;
    } else if ft.is_symlink() {
      target = fs::read_link(&node.path).map_err(err)?;
      entry.kind = EntryType::Symlink;
      entry.link = Some(target.as_os_str().as_bytes());
    } else if ft.is_file() {
      let key = (meta.dev(), meta.ino());
      if meta.nlink() > 1 {
        if let Some(first) = self.links.get(&key) {
          let first = first.clone();
          entry.kind = EntryType::Link;
          entry.link = Some(&first);
          return self.tar.append(&entry, None).map_err(err);
        }
        self.links.insert(key, path.to_vec());
      }
      // O_NOFOLLOW: a file swapped for a symlink after the walk saw it must not pull in the link's target.
      let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(o_nofollow())
        .open(&node.path)
        .map_err(err)?;
      entry.size = meta.len();
      return self.tar.append(&entry, Some(&mut file)).map_err(err);
    } else if ft.is_char_device() || ft.is_block_device() {
      entry.kind = if ft.is_char_device() {
        EntryType::Char
      } else {
        EntryType::Block
      };
      entry.device = (rfs::major(meta.rdev()), rfs::minor(meta.rdev()));
    } else if ft.is_fifo() {
      entry.kind = EntryType::Fifo;
    } else {
      // Sockets are not layer content.
      return Ok(());
    }
    self.tar.append(&entry, None).map_err(err)
  }
}

fn o_nofollow() -> i32 {
  rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Whether an entry differs from its counterpart in the base tree.
fn differs(new: &Node, old: &Node) -> LayerResult<bool> {
  let (n, o) = (&new.meta, &old.meta);
  let owner = |node: &Node| node.owner.unwrap_or((node.meta.uid() as u64, node.meta.gid() as u64));
  if n.mode() != o.mode() || owner(new) != owner(old) || n.rdev() != o.rdev() || new.xattrs != old.xattrs {
    return Ok(true);
  }
  if n.file_type().is_symlink() {
    let read = |node: &Node| fs::read_link(&node.path).map_err(|e| LayerError::io(node.path.display().to_string(), e));
    return Ok(read(new)? != read(old)?);
  }
  if n.is_dir() {
    return Ok(false);
  }
  Ok(n.len() != o.len() || n.mtime() != o.mtime() || n.mtime_nsec() != o.mtime_nsec())
}

/// Overlay metadata, gantry's ownership record and host SELinux labels are not layer content.
fn keep_xattr(name: &str) -> bool {
  !(name.starts_with("trusted.overlay.")
    || name.starts_with("user.overlay.")
    || name.starts_with("user.gantry.")
    || name == "security.selinux")
}

/// The owner `dir` records for its entry `name` (a symlink, fifo or device; see `entry_owner_xattr`).
fn entry_record(dir: &Path, name: &[u8]) -> Option<(u64, u64)> {
  let key = entry_owner_xattr(name)?;
  let mut value = [0u8; 64];
  let len = rfs::lgetxattr(dir, &key, &mut value[..]).ok()?;
  parse_owner(&value[..len])
}

fn parse_owner(value: &[u8]) -> Option<(u64, u64)> {
  let text = std::str::from_utf8(value).ok()?;
  let (uid, gid) = text.split_once(':')?;
  Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// All xattrs of a path (not following a symlink), sorted by name. Most files have none: one small listxattr.
fn read_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
  use rustix::io::Errno;
  let mut small = [0u8; 1024];
  let list = match rfs::llistxattr(path, &mut small[..]) {
    Ok(0) | Err(Errno::NOTSUP) => return Ok(Vec::new()),
    Ok(n) => small[..n].to_vec(),
    Err(Errno::RANGE) => {
      let mut big = vec![0u8; rfs::llistxattr_query(path)?];
      let n = rfs::llistxattr(path, &mut big[..])?;
      big.truncate(n);
      big
    }
    Err(e) => return Err(e.into()),
  };
  let mut out = Vec::new();
  for name in list.split(|b| *b == 0).filter(|s| !s.is_empty()) {
    let Ok(name) = std::str::from_utf8(name) else { continue };
    let mut value = vec![0u8; 64 * 1024];
    match rfs::lgetxattr(path, name, &mut value[..]) {
      Ok(len) => {
        value.truncate(len);
        out.push((name.to_string(), value));
      }
      // Removed between list and get, or not readable by us (trusted.* without root): not content we can keep.
      Err(Errno::NODATA) | Err(Errno::PERM) => {}
      Err(e) => return Err(e.into()),
    }
  }
  out.sort();
  Ok(out)
}
