//! `gantry-sandbox probe DIR`: tries, in throwaway children, what each isolation level needs — namespaces
//! (with and without a user namespace), an overlay mount and a fresh /proc inside them — and prints JSON.
use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::spec::{Isolation, Rootfs, RootfsMode};
use super::{idmap, rootfs, sys};

const NAMESPACES: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;

/// Runs in the probe child (PID 1 of its namespaces): one "ok" or error line per step.
fn child_steps(dir: &Path, isolation: Isolation) -> String {
  let s = |p: &str| dir.join(p).to_string_lossy().into_owned();
  let private = sys::mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None);
  let overlay = private.clone().and_then(|_| {
    let rootfs = Rootfs { mode: RootfsMode::Overlay, layers: vec![s("lower")], upper: s("upper"), work: s("work"), target: s("merged") };
    rootfs::mount_rootfs(&rootfs, isolation)
  });
  let proc = private.and_then(|_| sys::mount("proc", &dir.join("proc"), Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None));
  [overlay, proc].iter().map(|r| r.as_ref().err().cloned().unwrap_or_else(|| "ok".into())).collect::<Vec<_>>().join("\n")
}

fn probe(dir: &Path, isolation: Isolation) -> Value {
  let result = (|| -> sys::Result<Value> {
    for sub in ["lower", "upper", "work", "merged", "proc"] {
      fs::create_dir_all(dir.join(sub)).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    }
    let flags = if isolation == Isolation::Rootless { NAMESPACES | libc::CLONE_NEWUSER } else { NAMESPACES };
    let (go_r, go_w) = sys::pipe()?;
    let (out_r, out_w) = sys::pipe()?;
    let pid = match sys::clone_process(flags) {
      Ok(pid) => pid,
      Err(e) => return Ok(json!({ "namespaces": false, "error": e })),
    };
    if pid == 0 {
      sys::close(go_w);
      sys::close(out_r);
      if sys::read_to_end(go_r) == b"go" {
        sys::write_all(out_w, child_steps(dir, isolation).as_bytes());
      }
      unsafe { libc::_exit(0) };
    }
    sys::close(go_r);
    sys::close(out_w);
    let mapped = if isolation == Isolation::Rootless {
      idmap::apply(pid, &idmap::single(unsafe { libc::geteuid() }, unsafe { libc::getegid() }))
    } else {
      Ok(())
    };
    if mapped.is_ok() {
      sys::write_all(go_w, b"go");
    }
    sys::close(go_w);
    let out = String::from_utf8_lossy(&sys::read_to_end(out_r)).into_owned();
    sys::close(out_r);
    sys::wait_for(pid)?;
    if let Err(e) = mapped {
      return Ok(json!({ "namespaces": false, "error": e }));
    }
    let mut lines = out.lines().map(|l| if l == "ok" { Value::Null } else { Value::String(l.to_string()) });
    Ok(json!({ "namespaces": true, "overlayError": lines.next(), "procError": lines.next() }))
  })();
  let _ = fs::remove_dir_all(dir);
  result.unwrap_or_else(|e| json!({ "namespaces": false, "error": e }))
}

pub fn main(scratch: &str) -> i32 {
  let base = Path::new(scratch);
  let report = json!({
    "rootless": probe(&base.join("rootless"), Isolation::Rootless),
    "chroot": probe(&base.join("chroot"), Isolation::Chroot),
  });
  println!("{report}");
  0
}
