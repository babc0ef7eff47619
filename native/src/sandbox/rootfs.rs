//! Assembles the container's root filesystem inside its mount namespace: overlayfs (lowerdirs = the unpacked
//! layers, upperdir = this run's changes), fuse-overlayfs, or a plain copy of the layers when neither mounts.
use std::fs;
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::spec::{Isolation, Rootfs, RootfsMode};
use super::sys::{self, Result};

/// overlayfs takes the topmost lower first; gantry's spec lists layers base first.
fn overlay_options(rootfs: &Rootfs) -> Result<String> {
  for p in rootfs.layers.iter().chain([&rootfs.upper, &rootfs.work]) {
    if p.contains([',', ':']) {
      return Err(format!("overlay paths cannot contain ',' or ':': {p}"));
    }
  }
  let lower: Vec<&str> = rootfs.layers.iter().rev().map(String::as_str).collect();
  Ok(format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), rootfs.upper, rootfs.work))
}

pub fn mount_rootfs(rootfs: &Rootfs, isolation: Isolation) -> Result<()> {
  let target = Path::new(&rootfs.target);
  match rootfs.mode {
    RootfsMode::Overlay => {
      let mut opts = overlay_options(rootfs)?;
      // Inside a user namespace overlayfs may not set trusted.* xattrs; user.overlay.* ones work.
      if isolation == Isolation::Rootless {
        opts.push_str(",userxattr");
      }
      sys::mount("overlay", target, Some("overlay"), 0, Some(&opts))
    }
    RootfsMode::FuseOverlayfs => {
      let out = Command::new("fuse-overlayfs")
        .args(["-o", &overlay_options(rootfs)?, &rootfs.target])
        .output()
        .map_err(|e| format!("fuse-overlayfs: {e}"))?;
      if !out.status.success() {
        return Err(format!("fuse-overlayfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
      }
      Ok(())
    }
    RootfsMode::Copy => {
      copy_layers(rootfs)?;
      // pivot_root needs a mount point.
      sys::mount(&rootfs.target, target, None, libc::MS_BIND | libc::MS_REC, None)
    }
  }
}

/// Copies the layers, base first, into the target directory.
pub fn copy_layers(rootfs: &Rootfs) -> Result<()> {
  for layer in &rootfs.layers {
    copy_tree(Path::new(layer), Path::new(&rootfs.target))?;
  }
  Ok(())
}

/// Whether `path` carries the overlayfs xattr `overlay.<name>` (user. or trusted. namespace) with any value
/// (`y` for opaque dirs; whiteout files may carry an empty value).
fn has_overlay_xattr(path: &Path, name: &str) -> bool {
  ["trusted", "user"].iter().any(|ns| {
    let (Ok(p), Ok(n)) = (sys::path_cstr(path), sys::cstr(&format!("{ns}.overlay.{name}"))) else { return false };
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
    len >= 0
  })
}

/// Both overlayfs whiteout forms: the 0/0 character device, and (where mknod was refused) an empty file
/// marked with the `overlay.whiteout` xattr.
fn is_whiteout(path: &Path, meta: &fs::Metadata) -> bool {
  (meta.file_type().is_char_device() && meta.rdev() == 0)
    || (meta.is_file() && meta.len() == 0 && has_overlay_xattr(path, "whiteout"))
}

fn is_opaque(dir: &Path) -> bool {
  has_overlay_xattr(dir, "opaque")
}

fn remove_any(path: &Path) -> Result<()> {
  match fs::symlink_metadata(path) {
    Ok(m) if m.is_dir() => fs::remove_dir_all(path),
    Ok(_) => fs::remove_file(path),
    Err(_) => Ok(()),
  }
  .map_err(|e| format!("removing {}: {e}", path.display()))
}

/// Applies one layer directory (overlay format: 0/0 character devices are whiteouts, opaque xattrs hide
/// what lies below) on top of `dst`. Ownership and modes are kept; we are root in the namespace.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
  let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
  for entry in fs::read_dir(src).map_err(|e| io("reading", src, e))? {
    let entry = entry.map_err(|e| io("reading", src, e))?;
    let (from, to) = (entry.path(), dst.join(entry.file_name()));
    let meta = fs::symlink_metadata(&from).map_err(|e| io("stat", &from, e))?;
    let existing = fs::symlink_metadata(&to).ok();
    if is_whiteout(&from, &meta) {
      remove_any(&to)?;
      continue;
    }
    if meta.is_dir() {
      if existing.as_ref().is_some_and(|m| !m.is_dir()) || (existing.is_some() && is_opaque(&from)) {
        remove_any(&to)?;
      }
      if !to.exists() {
        fs::create_dir(&to).map_err(|e| io("mkdir", &to, e))?;
      }
      copy_tree(&from, &to)?;
    } else {
      if existing.is_some() {
        remove_any(&to)?;
      }
      if meta.file_type().is_symlink() {
        let link = fs::read_link(&from).map_err(|e| io("readlink", &from, e))?;
        std::os::unix::fs::symlink(&link, &to).map_err(|e| io("symlink", &to, e))?;
      } else if meta.is_file() {
        fs::copy(&from, &to).map_err(|e| io("copying", &from, e))?;
      } else {
        // Sockets, fifos and devices are not carried by copy mode.
        continue;
      }
    }
    lchown(&to, Some(meta.uid()), Some(meta.gid())).map_err(|e| io("chown", &to, e))?;
    if !meta.file_type().is_symlink() {
      fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(|e| io("chmod", &to, e))?;
    }
  }
  Ok(())
}
