//! Everything mounted into the root filesystem before pivot_root: /proc for the new PID namespace, /dev from
//! the host's harmless device nodes, /dev/shm, the host's resolv.conf and hosts, and the spec's mounts: host
//! binds, tmpfs, and paths inside a union of image layers (RUN --mount from= a stage or image).
use std::fs;
use std::path::{Path, PathBuf};

use super::rootfs;
use super::spec::{Mount, MountKind, Network, Rootfs, Spec};
use super::sys::{self, Result};

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn inside(root: &Path, container_path: &str) -> PathBuf {
  root.join(container_path.trim_start_matches('/'))
}

/// Resolves a mount target that already exists. Before pivot_root the kernel follows an image's absolute
/// symlinks (`/etc/resolv.conf -> /run/...`) against the host's root, so a target that resolves outside the
/// rootfs is refused.
fn confined(root: &Path, target: &Path, what: &str) -> Result<PathBuf> {
  let resolved = target.canonicalize().map_err(|e| format!("{}: {e}", target.display()))?;
  if !resolved.starts_with(root) {
    return Err(format!("{what} resolves outside the container's root filesystem"));
  }
  Ok(resolved)
}

/// Creates a directory below `root`, refusing when an existing part of the path is a symlink leading out.
fn ensure_dir(root: &Path, p: &Path) -> Result<()> {
  let mut existing = p;
  while fs::symlink_metadata(existing).is_err() {
    existing = existing.parent().ok_or_else(|| format!("{} has no existing parent", p.display()))?;
  }
  confined(root, existing, &p.display().to_string())?;
  fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

/// Makes `p` a regular file to bind onto; a symlink there (often dangling, e.g. /etc/resolv.conf) is replaced.
fn ensure_file(root: &Path, p: &Path) -> Result<()> {
  if let Some(parent) = p.parent() {
    ensure_dir(root, parent)?;
  }
  match fs::symlink_metadata(p) {
    Ok(m) if m.file_type().is_symlink() => {
      fs::remove_file(p).map_err(|e| format!("removing {}: {e}", p.display()))?;
    }
    Ok(_) => return Ok(()),
    Err(_) => {}
  }
  fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
  Ok(())
}

fn bind(source: &Path, target: &Path, readonly: bool) -> Result<()> {
  let src = source.to_str().ok_or_else(|| format!("{source:?} is not UTF-8"))?;
  sys::mount(src, target, None, libc::MS_BIND | libc::MS_REC, None)?;
  if readonly {
    make_readonly(target)?;
  }
  Ok(())
}

/// Remounts a bind mount read-only; mounts already made below it stay as they are.
fn make_readonly(target: &Path) -> Result<()> {
  let locked = sys::locked_mount_flags(target)?;
  sys::mount("none", target, None, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked, None)
}

/// /proc is mounted by PID 1 of the new namespace so it shows that namespace. Where the host's /proc is
/// partly masked (nested containers) the kernel refuses a fresh one; gantry then says so instead of binding
/// the host's, which would show every host process.
fn mount_proc(root: &Path) -> Result<()> {
  let target = inside(root, "/proc");
  ensure_dir(root, &target)?;
  let target = confined(root, &target, "/proc")?;
  sys::mount("proc", &target, Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
}

/// Without a mount namespace (isolation `none`, as root) /dev gets real device nodes instead of bind mounts.
pub fn device_nodes(root: &Path) -> Result<()> {
  let dev = inside(root, "/dev");
  ensure_dir(root, &dev)?;
  let dev = confined(root, &dev, "/dev")?;
  for (name, minor) in [("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)] {
    let path = sys::path_cstr(&dev.join(name))?;
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
    if rc != 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::AlreadyExists {
      return Err(format!("mknod /dev/{name}: {}", std::io::Error::last_os_error()));
    }
  }
  Ok(())
}

fn mount_dev(root: &Path) -> Result<()> {
  let dev = inside(root, "/dev");
  ensure_dir(root, &dev)?;
  let dev = confined(root, &dev, "/dev")?;
  for name in DEVICES {
    let host = Path::new("/dev").join(name);
    // A CI job may have no controlling terminal device at all.
    if !host.exists() {
      continue;
    }
    let target = dev.join(name);
    ensure_file(root, &target)?;
    bind(&host, &confined(root, &target, &format!("/dev/{name}"))?, false)?;
  }
  let shm = dev.join("shm");
  ensure_dir(root, &shm)?;
  sys::mount("shm", &shm, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, Some("mode=1777,size=65536k"))?;
  for (name, to) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
    let link = dev.join(name);
    if fs::symlink_metadata(&link).is_err() {
      std::os::unix::fs::symlink(to, &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
    }
  }
  Ok(())
}

/// Assembles a `layers` mount's union in its scratch directory (in this mount namespace only) and returns
/// the union's root. No layers: the empty directory itself.
fn mount_layers(m: &Mount, spec: &Spec) -> Result<PathBuf> {
  let scratch = Path::new(m.scratch.as_deref().ok_or_else(|| format!("mount {}: no scratch directory", m.destination))?);
  let [upper, work, target] = ["upper", "work", "root"].map(|d| scratch.join(d));
  for d in [&upper, &work, &target] {
    fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
  }
  if !m.layers.is_empty() {
    let str_of = |p: &Path| p.to_str().map(str::to_string).ok_or_else(|| format!("{p:?} is not UTF-8"));
    let union = Rootfs {
      mode: spec.rootfs.mode,
      layers: m.layers.clone(),
      upper: str_of(&upper)?,
      work: str_of(&work)?,
      target: str_of(&target)?,
    };
    rootfs::mount_rootfs(&union, spec.isolation)?;
  }
  target.canonicalize().map_err(|e| format!("{}: {e}", target.display()))
}

/// Mounts in spec order (a mount inside another's target comes after it). Binds become read-only only once
/// every mount is made, so a mount point inside a read-only mount can still be created.
fn mount_volumes(root: &Path, spec: &Spec) -> Result<()> {
  let mut readonly = Vec::new();
  for m in &spec.mounts {
    let target = inside(root, &m.destination);
    match m.kind {
      MountKind::Tmpfs => {
        ensure_dir(root, &target)?;
        let size = m.size.map(|s| format!("size={s}"));
        let flags = libc::MS_NOSUID | libc::MS_NODEV;
        sys::mount("tmpfs", &confined(root, &target, &m.destination)?, Some("tmpfs"), flags, size.as_deref())?;
      }
      MountKind::Bind | MountKind::Layers => {
        let source = if m.kind == MountKind::Bind {
          PathBuf::from(&m.source)
        } else {
          let union = mount_layers(m, spec)?;
          // The source must stay inside the union, whatever symlinks the layers hold.
          confined(&union, &inside(&union, &m.source), &m.source)?
        };
        if source.is_dir() { ensure_dir(root, &target)? } else { ensure_file(root, &target)? }
        let target = confined(root, &target, &m.destination)?;
        bind(&source, &target, false)?;
        if m.readonly {
          readonly.push(target);
        }
      }
    }
  }
  readonly.iter().rev().try_for_each(|t| make_readonly(t))
}

pub fn setup(spec: &Spec) -> Result<()> {
  let root = &Path::new(&spec.rootfs.target).canonicalize().map_err(|e| format!("{}: {e}", spec.rootfs.target))?;
  mount_proc(root)?;
  mount_dev(root)?;
  if spec.network == Network::Host {
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
      let host = Path::new(file);
      if host.exists() {
        let target = inside(root, file);
        ensure_file(root, &target)?;
        bind(host, &confined(root, &target, file)?, true)?;
      }
    }
  }
  mount_volumes(root, spec)
}
