/**
 * sandbox/spec: the run spec handed to the gantry-sandbox helper (native/src/sandbox/spec.rs reads it; the
 * field names must match), and the isolation vocabulary shared by probe, choice and CLI.
 */

/** How strongly a command is isolated; see docs/run.md. */
export type IsolationLevel = 'rootless' | 'chroot' | 'none';
/** What `--isolation` accepts: a level, or `auto` for the strongest that works here. */
export type IsolationRequest = IsolationLevel | 'auto';
/** How the root filesystem is assembled from the unpacked layers. */
export type RootfsMode = 'overlay' | 'fuse-overlayfs' | 'copy';
export type NetworkMode = 'host' | 'none';

export interface IdMapEntry {
  inside: number;
  outside: number;
  count: number;
}

export interface IdMaps {
  uid: IdMapEntry[];
  gid: IdMapEntry[];
  /** Map through newuidmap/newgidmap (subordinate ranges); false writes a single-id map directly. */
  useHelpers: boolean;
}

/** A host file or directory bound onto `destination` (volumes, secrets, cache mounts, the build context). */
export interface BindMount {
  type?: 'bind';
  source: string;
  /** Absolute path inside the container. */
  destination: string;
  readonly: boolean;
}

/** A fresh tmpfs that lives only as long as the container. */
export interface TmpfsMount {
  type: 'tmpfs';
  destination: string;
  /** Size limit in bytes; absent: the kernel's default (half the RAM). */
  size?: number;
}

/**
 * `source` inside the union of image layers, assembled like the root filesystem (overlay, fuse-overlayfs or
 * a copy) in `scratch`, an empty directory the helper removes with the rest of its scratch space: writes go
 * there, never into the container's layer.
 */
export interface LayersMount {
  type: 'layers';
  /** Unpacked layer directories, base first; none gives an empty directory. */
  layers: string[];
  /** Absolute path inside the union. */
  source: string;
  scratch: string;
  destination: string;
  readonly: boolean;
}

export type SandboxMount = BindMount | TmpfsMount | LayersMount;

export interface SandboxProcess {
  args: string[];
  /** `KEY=value` strings. */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
}

export interface SandboxSpec {
  isolation: IsolationLevel;
  idMaps?: IdMaps;
  rootfs: {
    mode: RootfsMode;
    /** Unpacked layer directories, base layer first. */
    layers: string[];
    upper: string;
    work: string;
    /** Mount point that becomes `/`. */
    target: string;
  };
  hostname: string;
  network: NetworkMode;
  mounts: SandboxMount[];
  process: SandboxProcess;
  /** Directory the helper removes (from inside the user namespace) when the container has ended. */
  scratch: string;
}
