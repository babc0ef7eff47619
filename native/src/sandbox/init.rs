//! The container's PID 1. It mounts the root filesystem (in the new mount namespace), pivots into it, starts
//! the command as PID 2, forwards signals to it, reaps every orphan and exits with the command's status;
//! the kernel then kills whatever is left in the PID namespace.
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use super::spec::{Isolation, Network, Process, Spec};
use super::{mounts, rootfs, sys};

static COMMAND_PID: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
  let pid = COMMAND_PID.load(Ordering::SeqCst);
  if pid > 0 {
    unsafe { libc::kill(pid, sig) };
  } else {
    PENDING.store(sig, Ordering::SeqCst);
  }
}

/// Exit codes as docker and podman use them: 125 the container could not start, 126 the command is not
/// executable, 127 it was not found.
pub const SETUP_FAILED: i32 = 125;

fn prepare(spec: &Spec) -> sys::Result<()> {
  if spec.isolation == Isolation::None {
    // No mount namespace: mount nothing (it would land on the host); chroot into the copied layers.
    rootfs::copy_layers(&spec.rootfs)?;
    mounts::device_nodes(Path::new(&spec.rootfs.target))?;
    return sys::chroot_into(Path::new(&spec.rootfs.target));
  }
  // Nothing mounted from here on may propagate back to the host.
  sys::mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
  rootfs::mount_rootfs(&spec.rootfs, spec.isolation)?;
  mounts::setup(spec)?;
  sys::sethostname(&spec.hostname)?;
  if spec.network == Network::None {
    sys::loopback_up()?;
  }
  sys::pivot_root_into(Path::new(&spec.rootfs.target))?;
  // Like runc, a missing working directory is created (as container root, inside the new root).
  std::fs::create_dir_all(&spec.process.cwd).map_err(|e| format!("working directory {}: {e}", spec.process.cwd))
}

fn env_path(env: &[String]) -> &str {
  env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

/// Finds the executable the way execvp does, but with the container's PATH, after pivot_root.
fn resolve(program: &str, env: &[String]) -> Option<String> {
  if program.contains('/') {
    return Some(program.to_string());
  }
  env_path(env).split(':').map(|dir| format!("{}/{program}", if dir.is_empty() { "." } else { dir })).find(|p| {
    let c = CString::new(p.as_str()).ok();
    c.is_some_and(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && !Path::new(p).is_dir())
  })
}

/// Runs in PID 2: drops to the image's user and execs. Returns only on failure, with (exit code, message).
fn exec_command(p: &Process) -> (i32, String) {
  let fail = |what: String| (SETUP_FAILED, format!("{what}: {}", std::io::Error::last_os_error()));
  unsafe {
    // Where setgroups(2) is denied (a single-id user namespace, or one made by `unshare --map-root-user`)
    // that is fine as long as no group beyond the primary one is wanted.
    let extra = p.groups.iter().any(|&g| g != p.gid);
    if libc::setgroups(p.groups.len(), p.groups.as_ptr()) != 0 && extra {
      return fail(format!("setgroups {:?}", p.groups));
    }
    if libc::setresgid(p.gid, p.gid, p.gid) != 0 {
      return fail(format!("setgid {} (is the group mapped? multi-user images need a /etc/subgid range)", p.gid));
    }
    if libc::setresuid(p.uid, p.uid, p.uid) != 0 {
      return fail(format!("setuid {} (is the user mapped? multi-user images need a /etc/subuid range)", p.uid));
    }
  }
  if let Err(e) = std::env::set_current_dir(&p.cwd) {
    return (SETUP_FAILED, format!("working directory {}: {e}", p.cwd));
  }
  let Some(program) = p.args.first() else { return (SETUP_FAILED, "no command to run".to_string()) };
  let Some(path) = resolve(program, &p.env) else {
    return (127, format!("{program}: executable file not found in $PATH"));
  };
  let to_c = |v: &[String]| v.iter().map(|s| CString::new(s.as_str())).collect::<Result<Vec<_>, _>>();
  let (Ok(argv), Ok(envp), Ok(cpath)) = (to_c(&p.args), to_c(&p.env), CString::new(path.as_str())) else {
    return (SETUP_FAILED, "command or environment contains a NUL byte".to_string());
  };
  let err = sys::exec(&cpath, &argv, &envp);
  let code = if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
  (code, format!("exec {path}: {err}"))
}

fn report(err_fd: libc::c_int, code: i32, message: &str) {
  sys::write_all(err_fd, format!("{code}:{message}").as_bytes());
}

fn reap(command: libc::pid_t) -> i32 {
  loop {
    let mut status = 0;
    let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
    if pid == command {
      return sys::exit_code(status);
    }
    if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
      return 255;
    }
  }
}

/// The container side of the clone: waits for the helper to write the id maps ("go" on `go_fd`), sets up
/// and runs the command. Setup and exec failures are written to `err_fd` as "CODE:message"; the helper
/// sees EOF once the command has exec'd.
pub fn container_main(spec: &Spec, go_fd: libc::c_int, err_fd: libc::c_int) -> i32 {
  if sys::read_to_end(go_fd) != b"go" {
    return SETUP_FAILED;
  }
  sys::close(go_fd);
  if let Err(message) = prepare(spec) {
    report(err_fd, SETUP_FAILED, &message);
    return SETUP_FAILED;
  }
  sys::on_signals(&sys::FORWARDED, forward);
  let pid = match sys::clone_process(0) {
    Ok(pid) => pid,
    Err(message) => {
      report(err_fd, SETUP_FAILED, &message);
      return SETUP_FAILED;
    }
  };
  if pid == 0 {
    sys::reset_signals(&sys::FORWARDED);
    let (code, message) = exec_command(&spec.process);
    report(err_fd, code, &message);
    unsafe { libc::_exit(code) };
  }
  COMMAND_PID.store(pid, Ordering::SeqCst);
  let pending = PENDING.swap(0, Ordering::SeqCst);
  if pending != 0 {
    unsafe { libc::kill(pid, pending) };
  }
  sys::close(err_fd);
  reap(pid)
}
