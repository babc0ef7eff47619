//! The run spec gantry's TypeScript side (src/sandbox/spec.ts) sends as JSON; field names match it.
use serde::Deserialize;

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
  /// User + mount + PID + UTS + IPC namespaces, ids mapped through newuidmap/newgidmap.
  Rootless,
  /// Real root without a user namespace: mount + PID + UTS + IPC namespaces only.
  Chroot,
  /// No namespaces: chroot(2) into a copied root filesystem, as root (a throwaway container's Kaniko mode).
  None,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMode {
  Overlay,
  FuseOverlayfs,
  /// The layers are copied into `upper`, which becomes the root.
  Copy,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
  Host,
  None,
}

#[derive(Deserialize, Debug, Clone)]
pub struct IdMapEntry {
  pub inside: u32,
  pub outside: u32,
  pub count: u32,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct IdMaps {
  pub uid: Vec<IdMapEntry>,
  pub gid: Vec<IdMapEntry>,
  /// Map through the setuid newuidmap/newgidmap (subordinate ranges) instead of writing the single-id map.
  pub use_helpers: bool,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Rootfs {
  pub mode: RootfsMode,
  /// Unpacked layers, bottom (base) first.
  pub layers: Vec<String>,
  pub upper: String,
  pub work: String,
  /// The mount point that becomes `/`.
  pub target: String,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
  /// A host file or directory (`source`) bound onto the destination.
  #[default]
  Bind,
  /// A fresh tmpfs of at most `size` bytes.
  Tmpfs,
  /// `source` inside the union of `layers`, assembled like the root filesystem (same mode) in `scratch`;
  /// writes land in `scratch` and never in the container's layer.
  Layers,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Mount {
  #[serde(rename = "type", default)]
  pub kind: MountKind,
  /// Bind: the host path. Layers: the path inside the layers' union.
  #[serde(default)]
  pub source: String,
  /// Absolute path inside the container.
  pub destination: String,
  #[serde(default)]
  pub readonly: bool,
  /// Tmpfs: the size limit in bytes (absent: the kernel's default, half the RAM).
  #[serde(default)]
  pub size: Option<u64>,
  /// Layers: unpacked layer directories, base first.
  #[serde(default)]
  pub layers: Vec<String>,
  /// Layers: an empty directory for the union's upper, work and mount directories.
  #[serde(default)]
  pub scratch: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Process {
  pub args: Vec<String>,
  pub env: Vec<String>,
  pub cwd: String,
  pub uid: u32,
  pub gid: u32,
  pub groups: Vec<u32>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
  pub isolation: Isolation,
  pub id_maps: Option<IdMaps>,
  pub rootfs: Rootfs,
  pub hostname: String,
  pub network: Network,
  pub mounts: Vec<Mount>,
  pub process: Process,
  /// Removed (inside the user namespace, so files owned by subordinate ids go too) when the container ends.
  pub scratch: String,
}
