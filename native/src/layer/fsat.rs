//! Directory-fd based file operations that never follow a symlink: the primitives unpacking is built on.
//! Every path is walked one component at a time from the target's fd with O_NOFOLLOW, so no entry (nor a
//! symlink an earlier entry created) can redirect a write outside the target.
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::error::{show, LayerError, LayerResult};

pub fn os(name: &[u8]) -> &OsStr {
  OsStr::from_bytes(name)
}

pub fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
  rfs::openat(
    parent,
    os(name),
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
    Mode::empty(),
  )
}

/// The kind of whatever is at `parent/name`, without following a symlink; None when nothing is there.
pub fn kind_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
  match rfs::statat(parent, os(name), AtFlags::SYMLINK_NOFOLLOW) {
    Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
    Err(Errno::NOENT) => Ok(None),
    Err(e) => Err(e.into()),
  }
}

/// Opens the directory `parts` (relative to `root`), refusing symlinks and non-directories on the way. With
/// `create`, missing directories are made (mode 0755, as tar does for implicit parents); without it a missing
/// component gives Ok(None).
pub fn open_path(root: BorrowedFd<'_>, parts: &[&[u8]], create: bool) -> LayerResult<Option<OwnedFd>> {
  let mut cur = rfs::openat(
    root,
    ".",
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
    Mode::empty(),
  )
  .map_err(|e| LayerError::io("open target", e.into()))?;
  for (i, part) in parts.iter().enumerate() {
    let next = match open_dir_nofollow(cur.as_fd(), part) {
      Ok(fd) => fd,
      Err(Errno::NOENT) if create => {
        match rfs::mkdirat(cur.as_fd(), os(part), Mode::from_raw_mode(0o755)) {
          Ok(()) | Err(Errno::EXIST) => {}
          Err(e) => {
            return Err(LayerError::io(
              format!("mkdir {}", show(&super::path::join(&parts[..=i]))),
              e.into(),
            ))
          }
        }
        open_dir_nofollow(cur.as_fd(), part).map_err(|e| refused_parent(cur.as_fd(), parts, i, e))?
      }
      Err(Errno::NOENT) => return Ok(None),
      Err(e) => return Err(refused_parent(cur.as_fd(), parts, i, e)),
    };
    cur = next;
  }
  Ok(Some(cur))
}

/// Why a path component could not be opened as a directory. O_NOFOLLOW|O_DIRECTORY on a symlink gives ENOTDIR
/// (or ELOOP), the same as on a file, so the component's type decides which it was.
fn refused_parent(dir: BorrowedFd<'_>, parts: &[&[u8]], i: usize, e: Errno) -> LayerError {
  let at = show(&super::path::join(&parts[..=i]));
  match (e, kind_at(dir, parts[i])) {
    (Errno::LOOP | Errno::NOTDIR, Ok(Some(FileType::Symlink))) => {
      LayerError::Unsafe(format!("{at} is a symlink; refusing to write through it"))
    }
    (Errno::NOTDIR, _) => LayerError::Invalid(format!("{at} is not a directory but has entries below it")),
    _ => LayerError::io(format!("open {at}"), e.into()),
  }
}

/// Removes `parent/name` and, for a directory, everything below it, never following symlinks. Missing is fine.
pub fn remove_all_at(parent: BorrowedFd<'_>, name: &[u8], unprivileged: bool) -> io::Result<()> {
  match kind_at(parent, name)? {
    None => Ok(()),
    Some(FileType::Directory) => {
      let dir = open_dir_nofollow(parent, name)?;
      // Without root, a read-only directory (0555) we own can only be emptied after making it writable.
      if unprivileged {
        rfs::fchmod(&dir, Mode::from_raw_mode(0o700))?;
      }
      for child in list_dir(dir.as_fd())? {
        remove_all_at(dir.as_fd(), &child, unprivileged)?;
      }
      rfs::unlinkat(parent, os(name), AtFlags::REMOVEDIR).map_err(Into::into)
    }
    Some(_) => rfs::unlinkat(parent, os(name), AtFlags::empty()).map_err(Into::into),
  }
}

/// Names in a directory (without `.` and `..`), read through the fd.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
  let mut names = Vec::new();
  let mut reader = rfs::Dir::read_from(dir)?;
  while let Some(entry) = reader.read() {
    let entry = entry?;
    let name = entry.file_name().to_bytes();
    if name != b"." && name != b".." {
      names.push(name.to_vec());
    }
  }
  Ok(names)
}

/// Sets an xattr on `parent/name` without following a symlink. Symlinks have no usable fd for fsetxattr, so
/// this goes through the parent's /proc/self/fd path (its components are fds, not names we must trust).
pub fn lsetxattr_at(parent: BorrowedFd<'_>, name: &[u8], key: &str, value: &[u8]) -> io::Result<()> {
  use std::os::fd::AsRawFd;
  let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
  path.extend_from_slice(name);
  rfs::lsetxattr(os(&path), key, value, rfs::XattrFlags::empty()).map_err(Into::into)
}
