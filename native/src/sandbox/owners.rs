//! Tree work inside a user namespace with the container's id maps. `gantry-sandbox own SPEC_FILE` gives an
//! unpacked layer the ownership its tar recorded: unpacking as an unprivileged user cannot chown, so the
//! unpacker records `uid:gid` in the `user.gantry.owner` xattr (a symlink's in its directory's); applied in
//! the namespace, the ids land on the caller's subordinate ids exactly as the container will see them. `gantry-sandbox remove SPEC_FILE`
//! deletes a tree holding files owned by subordinate ids (scratch left by a killed run), which the caller
//! cannot do outside the namespace. `in_user_namespace` is the namespace plumbing these and `layer` share.
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde::Deserialize;

use super::spec::IdMaps;
use super::{idmap, sys};
use crate::layer::unpack::entry_owner_xattr;

use crate::layer::unpack::OWNER_XATTR;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnSpec {
  id_maps: IdMaps,
  dir: String,
}

fn recorded_owner(path: &Path) -> sys::Result<Option<(u32, u32)>> {
  let (p, n) = (sys::path_cstr(path)?, sys::cstr(OWNER_XATTR)?);
  let mut buf = [0u8; 64];
  let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
  if len < 0 {
    return Ok(None);
  }
  let text = String::from_utf8_lossy(&buf[..len as usize]).into_owned();
  let parsed = text.split_once(':').and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
  parsed.map(Some).ok_or_else(|| format!("{}: bad {OWNER_XATTR} value {text:?}", path.display()))
}

fn restore(path: &Path, meta: &fs::Metadata) -> sys::Result<()> {
  let Some((uid, gid)) = recorded_owner(path)? else { return Ok(()) };
  std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
  // chown clears set-id bits; the tar's mode had them for a reason.
  if meta.mode() & 0o6000 != 0 {
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
      .map_err(|e| format!("chmod {}: {e}", path.display()))?;
  }
  let (p, n) = (sys::path_cstr(path)?, sys::cstr(OWNER_XATTR)?);
  unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
  Ok(())
}

/// Applies the record `dir` holds for its entry `name` (a symlink, fifo or device), then drops the record.
fn restore_entry(dir: &Path, name: &OsStr) -> sys::Result<()> {
  let Some(key) = entry_owner_xattr(name.as_bytes()) else { return Ok(()) };
  let (d, k) = (sys::path_cstr(dir)?, CString::new(key.into_vec()).map_err(|e| e.to_string())?);
  let mut buf = [0u8; 64];
  let len = unsafe { libc::lgetxattr(d.as_ptr(), k.as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
  if len < 0 {
    return Ok(());
  }
  let path = dir.join(name);
  let text = String::from_utf8_lossy(&buf[..len as usize]).into_owned();
  let (uid, gid) = text
    .split_once(':')
    .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
    .ok_or_else(|| format!("{}: bad owner record {text:?}", path.display()))?;
  std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
  unsafe { libc::lremovexattr(d.as_ptr(), k.as_ptr()) };
  Ok(())
}

/// Walks the tree without following symlinks, children before their directory.
fn walk(dir: &Path) -> sys::Result<()> {
  for entry in fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
    let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let path = entry.path();
    let meta = fs::symlink_metadata(&path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if !meta.is_dir() && !meta.is_file() {
      restore_entry(dir, &entry.file_name())?;
      continue;
    }
    if meta.is_dir() {
      walk(&path)?;
    }
    restore(&path, &meta)?;
  }
  Ok(())
}

fn apply_tree(dir: &Path) -> sys::Result<()> {
  walk(dir)?;
  let meta = fs::symlink_metadata(dir).map_err(|e| format!("stat {}: {e}", dir.display()))?;
  restore(dir, &meta)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
  Own,
  Remove,
}

impl Action {
  fn name(self) -> &'static str {
    if self == Action::Own { "own" } else { "remove" }
  }

  fn apply(self, dir: &Path) -> sys::Result<()> {
    match self {
      Action::Own => apply_tree(dir),
      Action::Remove => match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", dir.display())),
        _ => Ok(()),
      },
    }
  }
}

/// Runs `work` in a child process inside a new user namespace mapped with `maps`, and waits for it. The
/// child starts only once the maps are written (before that it would see itself as the overflow id).
/// `name` prefixes the child's error message on stderr.
pub fn in_user_namespace(maps: &IdMaps, name: &str, work: impl FnOnce() -> sys::Result<()>) -> sys::Result<()> {
  let (go_r, go_w) = sys::pipe()?;
  let pid = sys::clone_process(libc::CLONE_NEWUSER)?;
  if pid == 0 {
    sys::close(go_w);
    let result = if sys::read_to_end(go_r) == b"go" { work() } else { Err("not mapped".into()) };
    if let Err(e) = &result {
      eprintln!("gantry-sandbox {name}: {e}");
    }
    unsafe { libc::_exit(i32::from(result.is_err())) };
  }
  sys::close(go_r);
  let mapped = idmap::apply(pid, maps);
  if mapped.is_ok() {
    sys::write_all(go_w, b"go");
  }
  sys::close(go_w);
  let status = sys::wait_for(pid)?;
  mapped?;
  if sys::exit_code(status) != 0 {
    return Err(format!("{name} failed in the user namespace"));
  }
  Ok(())
}

pub fn main(spec_file: &str, action: Action) -> i32 {
  let result = (|| -> sys::Result<()> {
    let bytes = fs::read(spec_file).map_err(|e| format!("{spec_file}: {e}"))?;
    let spec: OwnSpec = serde_json::from_slice(&bytes).map_err(|e| format!("invalid spec: {e}"))?;
    in_user_namespace(&spec.id_maps, action.name(), || action.apply(Path::new(&spec.dir)))
      .map_err(|e| format!("{e} ({})", spec.dir))
  })();
  match result {
    Ok(()) => 0,
    Err(e) => {
      eprintln!("gantry-sandbox {}: {e}", action.name());
      1
    }
  }
}
