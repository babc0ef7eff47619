/**
 * sandbox/probe: finds out what this environment allows — user namespaces, overlayfs and a fresh /proc inside
 * them (tried by the helper in throwaway children), mount namespaces as root, fuse-overlayfs, newuidmap,
 * subordinate id ranges and the seccomp mode — for `gantry info` and the automatic isolation choice.
 */
import { access, constants, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { probeHelper, sandboxHelperPath } from './helper.js';
import { type IdRange, readIdRanges } from './idmap.js';

/** What the helper found for one namespaced level. */
export interface LevelProbe {
  namespaces: boolean;
  error?: string;
  overlayError?: string | null;
  procError?: string | null;
}

export interface EnvironmentReport {
  uid: number;
  gid: number;
  user: string;
  /** user.max_user_namespaces, when readable. */
  maxUserNamespaces?: number;
  /** From /proc/self/status: 0 disabled, 1 strict, 2 filter. */
  seccomp: { mode: number | undefined; filters: number | undefined };
  rootless: LevelProbe;
  chroot: LevelProbe;
  fuseOverlayfs: boolean;
  newuidmap: boolean;
  subuid: IdRange[];
  subgid: IdRange[];
}

async function executableOnPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    if (
      await access(join(dir, name), constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

/** Parses `Seccomp:` and `Seccomp_filters:` out of /proc/self/status text. */
export function parseSeccomp(status: string): EnvironmentReport['seccomp'] {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status);
    return m ? Number(m[1]) : undefined;
  };
  return { mode: field('Seccomp'), filters: field('Seccomp_filters') };
}

function userName(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (common for arbitrary uids in Kubernetes).
    return String(uid);
  }
}

type HelperProbe = Awaited<ReturnType<typeof probeHelper>>;

/**
 * What the helper's answer depends on: the boot, the caller, the user-namespace sysctls, the seccomp
 * state and the helper binary itself. Any change makes the cached answer stale.
 */
async function probeKey(uid: number, seccompLine: string): Promise<string> {
  const read = (p: string) => readFile(p, 'utf8').catch(() => '-');
  const parts = await Promise.all([
    read('/proc/sys/kernel/random/boot_id'),
    read('/proc/sys/user/max_user_namespaces'),
    read('/proc/sys/kernel/unprivileged_userns_clone'),
    read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
    stat(sandboxHelperPath()).then((s) => String(s.mtimeMs)),
  ]);
  return JSON.stringify([uid, seccompLine, ...parts.map((p) => p.trim())]);
}

/** The helper's probe, reused from `cacheFile` while its key still matches (saves two clones per run). */
async function cachedHelperProbe(
  scratchDir: string,
  cacheFile: string | undefined,
  key: string,
): Promise<HelperProbe> {
  if (cacheFile) {
    const cached = await readFile(cacheFile, 'utf8').then(
      (t) => JSON.parse(t) as { key: string; probe: HelperProbe },
      () => undefined,
    );
    if (cached?.key === key) return cached.probe;
  }
  const probe = await probeHelper(scratchDir);
  if (cacheFile) {
    const temp = `${cacheFile}.${process.pid}`;
    await writeFile(temp, JSON.stringify({ key, probe }));
    await rename(temp, cacheFile);
  }
  return probe;
}

/**
 * Probes the environment; `scratchDir` should be on the filesystem that will hold the containers' changes.
 * With `cacheFile`, the helper's part is reused while nothing it depends on has changed.
 */
export async function probeEnvironment(options: {
  scratchDir: string;
  cacheFile?: string;
}): Promise<EnvironmentReport> {
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  const user = userName(uid);
  await mkdir(options.scratchDir, { recursive: true });
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const seccomp = parseSeccomp(status);
  const key = await probeKey(uid, JSON.stringify(seccomp));
  const [helper, ids, maxUserNs, fuseBinary, fuseDevice, newuidmap, newgidmap] = await Promise.all([
    cachedHelperProbe(options.scratchDir, options.cacheFile, key),
    readIdRanges({ name: user, uid, gid }),
    readFile('/proc/sys/user/max_user_namespaces', 'utf8').catch(() => undefined),
    executableOnPath('fuse-overlayfs'),
    access('/dev/fuse', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ),
    executableOnPath('newuidmap'),
    executableOnPath('newgidmap'),
  ]);
  const report: EnvironmentReport = {
    uid,
    gid,
    user,
    seccomp,
    rootless: helper.rootless,
    chroot: helper.chroot,
    fuseOverlayfs: fuseBinary && fuseDevice,
    newuidmap: newuidmap && newgidmap,
    subuid: ids.subuid,
    subgid: ids.subgid,
  };
  if (maxUserNs !== undefined) report.maxUserNamespaces = Number(maxUserNs.trim());
  return report;
}
