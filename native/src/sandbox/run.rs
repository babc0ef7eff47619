//! The helper's side of one container: clone the namespaces, map ids from outside, wait for the container's
//! PID 1 while forwarding signals to it, then remove the scratch directory — from inside the user namespace,
//! because the container leaves files owned by subordinate ids the caller cannot delete.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::events::Events;
use super::init::{self, SETUP_FAILED};
use super::spec::{Isolation, Network, Spec};
use super::{idmap, sys};

static CHILD: AtomicI32 = AtomicI32::new(0);
static READY: AtomicBool = AtomicBool::new(false);
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Before the command runs, PID 1 has no handlers and would ignore a forwarded signal, so it is killed.
extern "C" fn on_signal(sig: libc::c_int) {
  let pid = CHILD.load(Ordering::SeqCst);
  if pid <= 0 {
    PENDING.store(sig, Ordering::SeqCst);
  } else if READY.load(Ordering::SeqCst) {
    unsafe { libc::kill(pid, sig) };
  } else {
    unsafe { libc::kill(pid, libc::SIGKILL) };
  }
}

struct Outcome {
  code: i32,
  error: Option<String>,
  /// Keeps the user namespace alive after the container exits, for the clean-up.
  userns: Option<File>,
}

fn clone_flags(spec: &Spec) -> libc::c_int {
  if spec.isolation == Isolation::None {
    return 0;
  }
  let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
  if spec.isolation == Isolation::Rootless {
    flags |= libc::CLONE_NEWUSER;
  }
  if spec.network == Network::None {
    flags |= libc::CLONE_NEWNET;
  }
  flags
}

fn start(spec: &Spec, events: &Events) -> sys::Result<Outcome> {
  let (go_r, go_w) = sys::pipe()?;
  let (err_r, err_w) = sys::pipe()?;
  let pid = sys::clone_process(clone_flags(spec))?;
  if pid == 0 {
    sys::close(go_w);
    sys::close(err_r);
    // If the helper dies, so does the container (and with its PID 1, everything in it).
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let code = init::container_main(spec, go_r, err_w);
    unsafe { libc::_exit(code) };
  }
  CHILD.store(pid, Ordering::SeqCst);
  sys::close(go_r);
  sys::close(err_w);
  let mut userns = None;
  if spec.isolation == Isolation::Rootless {
    let ns = File::open(format!("/proc/{pid}/ns/user")).map_err(|e| format!("opening the user namespace: {e}"));
    let mapped = ns.and_then(|ns| {
      userns = Some(ns);
      let maps = spec.id_maps.as_ref().ok_or("rootless isolation needs idMaps")?;
      idmap::apply(pid, maps)
    });
    if let Err(message) = mapped {
      unsafe { libc::kill(pid, libc::SIGKILL) };
      sys::wait_for(pid)?;
      return Ok(Outcome { code: SETUP_FAILED, error: Some(message), userns });
    }
  }
  if PENDING.load(Ordering::SeqCst) != 0 {
    unsafe { libc::kill(pid, libc::SIGKILL) };
  }
  sys::write_all(go_w, b"go");
  sys::close(go_w);
  let failure = sys::read_to_end(err_r);
  sys::close(err_r);
  let error = if failure.is_empty() {
    READY.store(true, Ordering::SeqCst);
    events.started(pid);
    None
  } else {
    Some(String::from_utf8_lossy(&failure).into_owned())
  };
  let status = sys::wait_for(pid)?;
  let mut code = sys::exit_code(status);
  let error = error.map(|text| match text.split_once(':') {
    Some((c, message)) => {
      code = c.parse().unwrap_or(SETUP_FAILED);
      message.to_string()
    }
    None => text,
  });
  Ok(Outcome { code, error, userns })
}

/// Deletes the scratch directory, entering the container's user namespace first when there was one.
fn remove_scratch(path: &str, userns: Option<&File>) -> sys::Result<()> {
  let Some(ns) = userns else {
    return std::fs::remove_dir_all(path).or_else(ignore_missing).map_err(|e| format!("removing {path}: {e}"));
  };
  let pid = sys::clone_process(0)?;
  if pid == 0 {
    let ok = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUSER) } == 0
      && std::fs::remove_dir_all(path).or_else(ignore_missing).is_ok();
    unsafe { libc::_exit(if ok { 0 } else { 1 }) };
  }
  if sys::exit_code(sys::wait_for(pid)?) != 0 {
    return Err(format!("could not remove {path}"));
  }
  Ok(())
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
  if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

pub fn main(spec_file: &str) -> i32 {
  let events = Events::open();
  let parsed = std::fs::read(spec_file)
    .map_err(|e| format!("{spec_file}: {e}"))
    .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
  let spec: Spec = match parsed {
    Ok(spec) => spec,
    Err(e) => {
      events.error(&format!("invalid sandbox spec: {e}"));
      return SETUP_FAILED;
    }
  };
  // When gantry dies the helper still tears the container down and cleans up.
  unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
  sys::on_signals(&sys::FORWARDED, on_signal);
  let (code, userns) = match start(&spec, &events) {
    Ok(outcome) => {
      if let Some(message) = &outcome.error {
        events.error(message);
      }
      (outcome.code, outcome.userns)
    }
    Err(message) => {
      events.error(&message);
      (SETUP_FAILED, None)
    }
  };
  if let Err(message) = remove_scratch(&spec.scratch, userns.as_ref()) {
    events.warning(&message);
  }
  events.exit(code);
  code
}
