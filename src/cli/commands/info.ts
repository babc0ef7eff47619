/** `gantry info`: what this environment allows for running commands, and the isolation each command would use. */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isGantryError } from '../../errors/index.js';
import { chooseIsolation } from '../../sandbox/isolation.js';
import { type EnvironmentReport, type LevelProbe, probeEnvironment } from '../../sandbox/probe.js';
import { defaultStoreRoot, LayerStore } from '../../store/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';

const flags = {
  json: { type: 'boolean', description: 'print the report as JSON' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
} as const;

/** Commands that run containers, and the network each uses by default. */
const RUNNING_COMMANDS = ['run'] as const;

function describeLevel(p: LevelProbe): string {
  if (!p.namespaces) return `no (${p.error})`;
  const parts = [
    `overlay ${p.overlayError ? `no (${p.overlayError})` : 'yes'}`,
    `/proc ${p.procError ? `no (${p.procError})` : 'yes'}`,
  ];
  return `yes; ${parts.join(', ')}`;
}

function ranges(r: EnvironmentReport['subuid']): string {
  return r.length ? r.map((x) => `${x.start}-${x.start + x.count - 1}`).join(', ') : 'none';
}

function choiceFor(report: EnvironmentReport): { level: string; rootfs?: string; problem?: string } {
  try {
    const c = chooseIsolation(report, 'auto', { network: 'host' });
    return { level: c.level, rootfs: c.rootfs };
  } catch (err) {
    if (isGantryError(err)) return { level: 'unavailable', problem: err.message };
    throw err;
  }
}

export const command: Command = {
  summary: 'show what isolation this environment allows and which level commands use',
  usage: 'info [--json]',
  flags,
  async run(argv) {
    const { flags: f } = parseArgs(argv, flags);
    const store = await LayerStore.open(defaultStoreRoot());
    const scratch = await store.makeScratch('info');
    let report: EnvironmentReport;
    try {
      report = await probeEnvironment({ scratchDir: join(scratch, 'probe') });
    } finally {
      await rm(scratch, { recursive: true, force: true });
      await store.releaseScratch(scratch);
    }
    const choice = choiceFor(report);
    const commands = Object.fromEntries(RUNNING_COMMANDS.map((c) => [c, choice]));
    if (f.json) {
      process.stdout.write(`${JSON.stringify({ store: store.root, ...report, commands }, null, 2)}\n`);
      return 0;
    }
    const seccomp = ['disabled', 'strict', 'filter'][report.seccomp.mode ?? -1] ?? 'unknown';
    const rows: [string, string][] = [
      ['user', `${report.user} (uid ${report.uid}, gid ${report.gid})`],
      ['store', store.root],
      ['user namespaces', describeLevel(report.rootless)],
      ['max_user_namespaces', String(report.maxUserNamespaces ?? 'unknown')],
      ['namespaces as root', report.uid === 0 ? describeLevel(report.chroot) : 'not root'],
      ['fuse-overlayfs', report.fuseOverlayfs ? 'yes' : 'no (binary or access to /dev/fuse missing)'],
      ['newuidmap/newgidmap', report.newuidmap ? 'yes' : 'no (install uidmap)'],
      ['subuid ranges', ranges(report.subuid)],
      ['subgid ranges', ranges(report.subgid)],
      ['seccomp', `${seccomp}${report.seccomp.filters ? ` (${report.seccomp.filters} filter(s))` : ''}`],
    ];
    const lines = [
      ...rows.map(([k, v]) => `${`${k}:`.padEnd(22)} ${v}`),
      '',
      'isolation (--isolation auto):',
      ...RUNNING_COMMANDS.map((c) =>
        choice.problem
          ? `  ${c}: unavailable: ${choice.problem}`
          : `  ${c}: ${choice.level} (root filesystem: ${choice.rootfs})`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return choice.problem ? 1 : 0;
  },
};
