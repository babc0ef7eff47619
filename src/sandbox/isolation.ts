/**
 * sandbox/isolation: picks the isolation level and root filesystem mode from a probe report (pure). `auto`
 * takes the strongest level that works; an explicit level that cannot work, or `auto` when nothing does, is
 * an error that names what is missing and how to enable it.
 */
import { GantryError } from '../errors/index.js';
import type { EnvironmentReport, LevelProbe } from './probe.js';
import type { IsolationLevel, IsolationRequest, NetworkMode, RootfsMode } from './spec.js';

export interface IsolationChoice {
  level: IsolationLevel;
  rootfs: RootfsMode;
  /** Why this level and mode, for `gantry info` and debug logs. */
  reason: string;
  warnings: string[];
}

export const ISOLATION_REQUESTS: readonly IsolationRequest[] = ['auto', 'rootless', 'chroot', 'none'];

/** Why a namespaced level cannot run here, or undefined when it can. */
function levelProblem(level: 'rootless' | 'chroot', report: EnvironmentReport): string | undefined {
  const probe: LevelProbe = report[level];
  if (level === 'chroot' && report.uid !== 0) return 'chroot isolation needs root (uid 0)';
  if (!probe.namespaces) {
    if (level === 'chroot') {
      return `cannot create mount/PID namespaces (${probe.error}): the container lacks CAP_SYS_ADMIN or seccomp blocks unshare`;
    }
    const hints = [
      report.maxUserNamespaces === 0
        ? 'user.max_user_namespaces is 0: raise it (sysctl -w user.max_user_namespaces=15000)'
        : undefined,
      report.seccomp.mode === 2
        ? 'a seccomp filter is active and may block clone(CLONE_NEWUSER): use an Unconfined or unshare-allowing profile'
        : undefined,
      'on Debian/Ubuntu kernels also check kernel.unprivileged_userns_clone=1 and the AppArmor restriction kernel.apparmor_restrict_unprivileged_userns=0',
    ].filter(Boolean);
    return `cannot create user namespaces (${probe.error}); ${hints.join('; ')}`;
  }
  if (probe.procError) {
    return `cannot mount a fresh /proc in a new PID namespace (${probe.procError}): this container masks parts of /proc; run it with an unmasked /proc (Kubernetes procMount: Unmasked, docker --security-opt systempaths=unconfined)`;
  }
  return undefined;
}

function rootfsMode(probe: LevelProbe, report: EnvironmentReport): { mode: RootfsMode; warning?: string } {
  if (!probe.overlayError) return { mode: 'overlay' };
  if (report.fuseOverlayfs) return { mode: 'fuse-overlayfs' };
  return {
    mode: 'copy',
    warning: `overlayfs is not available (${probe.overlayError}) and fuse-overlayfs is missing: layers are copied for every run (install fuse-overlayfs and give access to /dev/fuse)`,
  };
}

/** Chooses how to isolate a command; throws GantryError INVALID_ARGUMENT or NATIVE when it cannot run. */
export function chooseIsolation(
  report: EnvironmentReport,
  request: IsolationRequest,
  options: { network: NetworkMode },
): IsolationChoice {
  if (request === 'none') {
    if (report.uid !== 0) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        '--isolation none needs root: it chroots into a copy of the image',
      );
    }
    if (options.network === 'none') {
      throw new GantryError(
        'INVALID_ARGUMENT',
        '--network none needs a network namespace, which --isolation none does not create',
      );
    }
    return {
      level: 'none',
      rootfs: 'copy',
      reason: 'asked for explicitly',
      warnings: [
        '--isolation none: the command runs as root without namespaces; use it only inside a throwaway container',
      ],
    };
  }
  const problems: string[] = [];
  for (const level of ['rootless', 'chroot'] as const) {
    if (request !== 'auto' && request !== level) continue;
    const problem = levelProblem(level, report);
    if (problem) {
      problems.push(`${level}: ${problem}`);
      continue;
    }
    const { mode, warning } = rootfsMode(report[level], report);
    const warnings = warning ? [warning] : [];
    const reason =
      request === 'auto'
        ? `strongest level that works here${problems.length ? ` (${problems.join('; ')})` : ''}`
        : 'asked for explicitly';
    return { level, rootfs: mode, reason, warnings };
  }
  const hint =
    request === 'auto'
      ? '; inside a throwaway container running as root, --isolation none runs without namespaces'
      : '';
  throw new GantryError('NATIVE', `no isolation level works here: ${problems.join('; ')}${hint}`, {
    subject: `--isolation ${request}`,
  });
}
