//! Status events for gantry's TypeScript side: one JSON object per line on the file descriptor named by
//! GANTRY_SANDBOX_EVENTS_FD (stdin, stdout and stderr belong to the container's command).
use serde_json::{json, Value};

use super::sys;

pub struct Events {
  fd: Option<libc::c_int>,
}

impl Events {
  pub fn open() -> Events {
    let fd = std::env::var("GANTRY_SANDBOX_EVENTS_FD").ok().and_then(|v| v.parse::<libc::c_int>().ok());
    // The container's processes must not inherit the channel.
    let fd = fd.filter(|&fd| fd > 2 && unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0);
    Events { fd }
  }

  fn send(&self, value: Value) {
    match self.fd {
      Some(fd) => sys::write_all(fd, format!("{value}\n").as_bytes()),
      None => eprintln!("gantry-sandbox: {value}"),
    }
  }

  pub fn started(&self, pid: libc::pid_t) {
    self.send(json!({ "event": "started", "pid": pid }));
  }

  pub fn warning(&self, message: &str) {
    self.send(json!({ "event": "warning", "message": message }));
  }

  pub fn error(&self, message: &str) {
    self.send(json!({ "event": "error", "message": message }));
  }

  pub fn exit(&self, code: i32) {
    self.send(json!({ "event": "exit", "code": code }));
  }
}
