//! Writes a user namespace's uid/gid maps from the parent side: through the setuid newuidmap/newgidmap for
//! subordinate ranges (the kernel lets an unprivileged process map only its own id), else directly.
use std::process::Command;

use super::spec::{IdMapEntry, IdMaps};
use super::sys::Result;

fn format_map(entries: &[IdMapEntry]) -> String {
  entries.iter().map(|e| format!("{} {} {}\n", e.inside, e.outside, e.count)).collect()
}

fn run_helper(tool: &str, pid: libc::pid_t, entries: &[IdMapEntry]) -> Result<()> {
  let mut cmd = Command::new(tool);
  cmd.arg(pid.to_string());
  for e in entries {
    cmd.args([e.inside.to_string(), e.outside.to_string(), e.count.to_string()]);
  }
  let out = cmd.output().map_err(|e| format!("{tool}: {e} (install the uidmap package)"))?;
  if !out.status.success() {
    return Err(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
  }
  Ok(())
}

fn write_proc(pid: libc::pid_t, file: &str, text: &str) -> Result<()> {
  let path = format!("/proc/{pid}/{file}");
  std::fs::write(&path, text).map_err(|e| format!("writing {path}: {e}"))
}

/// Maps the ids of the user namespace `pid` lives in. Must run outside that namespace, before the child
/// relies on its ids.
pub fn apply(pid: libc::pid_t, maps: &IdMaps) -> Result<()> {
  if maps.use_helpers {
    run_helper("newuidmap", pid, &maps.uid)?;
    run_helper("newgidmap", pid, &maps.gid)
  } else {
    write_proc(pid, "uid_map", &format_map(&maps.uid))?;
    // An unprivileged process may write gid_map only after giving up setgroups(2) for the namespace; root
    // keeps it, so the container's own su/setgroups work under root's identity map.
    if unsafe { libc::geteuid() } != 0 {
      write_proc(pid, "setgroups", "deny")?;
    }
    write_proc(pid, "gid_map", &format_map(&maps.gid))
  }
}

/// A single-id map of the caller to root, which needs no helper (used by the probe).
pub fn single(uid: u32, gid: u32) -> IdMaps {
  IdMaps {
    uid: vec![IdMapEntry { inside: 0, outside: uid, count: 1 }],
    gid: vec![IdMapEntry { inside: 0, outside: gid, count: 1 }],
    use_helpers: false,
  }
}
