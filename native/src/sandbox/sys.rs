//! Thin, checked wrappers over the raw syscalls the sandbox needs; each error names the call and its path.
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub type Result<T> = std::result::Result<T, String>;

pub fn cstr(s: &str) -> Result<CString> {
  CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

pub fn path_cstr(p: &Path) -> Result<CString> {
  CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{p:?} contains a NUL byte"))
}

fn last_error(what: &str) -> String {
  format!("{what}: {}", io::Error::last_os_error())
}

fn check(rc: libc::c_int, what: impl FnOnce() -> String) -> Result<()> {
  if rc < 0 { Err(last_error(&what())) } else { Ok(()) }
}

/// fork(2) through the clone syscall so new namespaces can be created in the same step. With a null stack the
/// child runs on a copy-on-write copy of ours, exactly like fork. Returns 0 in the child.
pub fn clone_process(flags: libc::c_int) -> Result<libc::pid_t> {
  let pid = unsafe {
    libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
  };
  if pid < 0 { Err(last_error("clone")) } else { Ok(pid as libc::pid_t) }
}

pub fn mount(source: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> Result<()> {
  let src = cstr(source)?;
  let tgt = path_cstr(target)?;
  let fs = fstype.map(cstr).transpose()?;
  let dat = data.map(cstr).transpose()?;
  let rc = unsafe {
    libc::mount(
      src.as_ptr(),
      tgt.as_ptr(),
      fs.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
      flags,
      dat.as_ref().map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
    )
  };
  check(rc, || format!("mount {} on {}", fstype.unwrap_or(source), target.display()))
}

/// Flags of the mount holding `path` that a user namespace locks (a read-only remount must keep them).
pub fn locked_mount_flags(path: &Path) -> Result<libc::c_ulong> {
  let p = path_cstr(path)?;
  let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
  check(unsafe { libc::statvfs(p.as_ptr(), &mut st) }, || format!("statvfs {}", path.display()))?;
  let mut flags = 0;
  for (vfs, ms) in [
    (libc::ST_NOSUID, libc::MS_NOSUID),
    (libc::ST_NODEV, libc::MS_NODEV),
    (libc::ST_NOEXEC, libc::MS_NOEXEC),
    (libc::ST_NOATIME, libc::MS_NOATIME),
    (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
    (libc::ST_RELATIME, libc::MS_RELATIME),
  ] {
    if st.f_flag & vfs != 0 {
      flags |= ms;
    }
  }
  Ok(flags)
}

pub fn pivot_root_into(dir: &Path) -> Result<()> {
  // runc's trick: pivot the root onto itself, then lazily detach the old root stacked underneath.
  std::env::set_current_dir(dir).map_err(|e| format!("chdir {}: {e}", dir.display()))?;
  let dot = cstr(".")?;
  check(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int }, || {
    format!("pivot_root {}", dir.display())
  })?;
  // Keep the detach from propagating anywhere before dropping the old root.
  mount("none", Path::new("."), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
  check(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) }, || "umount old root".to_string())?;
  std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

pub fn chroot_into(dir: &Path) -> Result<()> {
  let d = path_cstr(dir)?;
  check(unsafe { libc::chroot(d.as_ptr()) }, || format!("chroot {}", dir.display()))?;
  std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

pub fn sethostname(name: &str) -> Result<()> {
  check(unsafe { libc::sethostname(name.as_ptr() as *const libc::c_char, name.len()) }, || {
    format!("sethostname {name}")
  })
}

/// Brings the loopback interface of a fresh network namespace up.
pub fn loopback_up() -> Result<()> {
  unsafe {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    check(fd, || "socket".to_string())?;
    let mut req: libc::ifreq = std::mem::zeroed();
    for (i, b) in b"lo\0".iter().enumerate() {
      req.ifr_name[i] = *b as libc::c_char;
    }
    let rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
    let result = check(rc, || "SIOCGIFFLAGS lo".to_string()).and_then(|_| {
      req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
      check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req), || "SIOCSIFFLAGS lo up".to_string())
    });
    libc::close(fd);
    result
  }
}

pub fn pipe() -> Result<(libc::c_int, libc::c_int)> {
  let mut fds = [0; 2];
  check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, || "pipe".to_string())?;
  Ok((fds[0], fds[1]))
}

pub fn close(fd: libc::c_int) {
  unsafe { libc::close(fd) };
}

pub fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
  while !bytes.is_empty() {
    let n = unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) };
    if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
      continue;
    }
    if n <= 0 {
      return;
    }
    bytes = &bytes[n as usize..];
  }
}

/// Reads until EOF (bounded to 64 KiB: only short messages travel on these pipes).
pub fn read_to_end(fd: libc::c_int) -> Vec<u8> {
  let mut out = Vec::new();
  let mut buf = [0u8; 4096];
  while out.len() < 65536 {
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
      continue;
    }
    if n <= 0 {
      break;
    }
    out.extend_from_slice(&buf[..n as usize]);
  }
  out
}

/// Waits for one child, retrying on EINTR; returns the raw wait status.
pub fn wait_for(pid: libc::pid_t) -> Result<libc::c_int> {
  loop {
    let mut status = 0;
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    if rc == pid {
      return Ok(status);
    }
    if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
      return Err(last_error("waitpid"));
    }
  }
}

/// A shell-style exit code for a wait status: the code, or 128 + the signal.
pub fn exit_code(status: libc::c_int) -> i32 {
  if libc::WIFEXITED(status) {
    libc::WEXITSTATUS(status)
  } else if libc::WIFSIGNALED(status) {
    128 + libc::WTERMSIG(status)
  } else {
    255
  }
}

pub fn exec(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
  let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
  a.push(std::ptr::null());
  let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
  e.push(std::ptr::null());
  unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
  io::Error::last_os_error()
}

/// Installs `handler` for each signal (SA_RESTART so blocking reads and waits resume).
pub fn on_signals(signals: &[libc::c_int], handler: extern "C" fn(libc::c_int)) {
  for &sig in signals {
    unsafe {
      let mut act: libc::sigaction = std::mem::zeroed();
      act.sa_sigaction = handler as usize;
      act.sa_flags = libc::SA_RESTART;
      libc::sigemptyset(&mut act.sa_mask);
      libc::sigaction(sig, &act, std::ptr::null_mut());
    }
  }
}

/// Restores default dispositions and an empty mask, as a fresh process expects.
pub fn reset_signals(signals: &[libc::c_int]) {
  for &sig in signals {
    unsafe { libc::signal(sig, libc::SIG_DFL) };
  }
  unsafe {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
  }
}

/// Signals gantry forwards from the helper to the container's init and from init to the command.
pub const FORWARDED: [libc::c_int; 7] =
  [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];
