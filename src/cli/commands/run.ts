/** `gantry run IMAGE [CMD...]`: runs a command in a container made from an image, rootlessly (see src/run). */
import { resolve } from 'node:path';
import { GantryError } from '../../errors/index.js';
import { unpackLayer } from '../../layer/index.js';
import { type PullPolicy, parseVolume, runImage } from '../../run/index.js';
import { ISOLATION_REQUESTS } from '../../sandbox/isolation.js';
import type { IsolationRequest, NetworkMode } from '../../sandbox/spec.js';
import { defaultStoreRoot, LayerStore } from '../../store/index.js';
import { parseArgs, parseChoice } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  rm: {
    type: 'boolean',
    description: 'remove the container when it exits (always done; accepted for docker compatibility)',
  },
  env: {
    type: 'string',
    short: 'e',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'set an environment variable (KEY alone: take it from here)',
  },
  volume: {
    type: 'string',
    short: 'v',
    multiple: true,
    valueName: 'HOST:CTR[:ro]',
    description: 'bind-mount a host path',
  },
  workdir: {
    type: 'string',
    short: 'w',
    valueName: 'DIR',
    description: 'working directory inside the container',
  },
  user: {
    type: 'string',
    short: 'u',
    valueName: 'USER[:GROUP]',
    description: "user to run as (names from the image's /etc/passwd)",
  },
  network: {
    type: 'string',
    valueName: 'host|none',
    description: 'share the host network (default) or only loopback',
  },
  isolation: {
    type: 'string',
    valueName: 'auto|rootless|chroot|none',
    description: 'isolation level (default auto: the strongest that works)',
  },
  pull: {
    type: 'string',
    valueName: 'missing|always|never',
    description: 'when to pull the image into the store (default missing)',
  },
  ...registryFlags(''),
  insecure: commonFlags.insecure,
  'retry-times': commonFlags['retry-times'],
  quiet: commonFlags.quiet,
  help: commonFlags.help,
} as const;

/** Flags end at the image: everything after it is the command, even words starting with `-`. */
function splitAtImage(argv: string[]): { own: string[]; rest: string[] } {
  const valued = new Set(
    Object.entries(flags).flatMap(([name, s]) =>
      s.type === 'string' ? [`--${name}`, ...('short' in s ? [`-${s.short}`] : [])] : [],
    ),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return { own: argv.slice(0, i), rest: argv.slice(i + 1) };
    if (!arg.startsWith('-')) return { own: argv.slice(0, i), rest: argv.slice(i) };
    if (valued.has(arg)) i++;
  }
  return { own: argv, rest: [] };
}

export const command: Command = {
  summary: 'run a command in a container from an image, without a daemon or root',
  usage: 'run [flags] IMAGE [CMD...]   (IMAGE: registry reference, oci:DIR[:REF], oci-archive:FILE, ...)',
  flags,
  async run(argv) {
    const { own, rest } = splitAtImage(argv);
    const { flags: f } = parseArgs(own, flags);
    const [image, ...command] = rest;
    if (!image) throw new GantryError('INVALID_ARGUMENT', 'run needs an IMAGE');
    const out = createOutput({ quiet: f.quiet });
    const result = await runImage({
      image,
      command,
      env: f.env,
      volumes: (f.volume ?? []).map((v) => parseVolume(v, (p) => resolve(p))),
      workdir: f.workdir,
      user: f.user,
      network: parseChoice<NetworkMode>('network', f.network, ['host', 'none'], 'host'),
      isolation: parseChoice<IsolationRequest>('isolation', f.isolation, ISOLATION_REQUESTS, 'auto'),
      pull: parseChoice<PullPolicy>('pull', f.pull, ['missing', 'always', 'never'], 'missing'),
      store: await LayerStore.open(defaultStoreRoot()),
      registry: async () =>
        (await import('../registry-client.js')).registryClientFromFlags(f, '', out.logger),
      logger: out.logger,
      unpackLayer,
    });
    if (result.error) process.stderr.write(`gantry run: ${result.error}\n`);
    return result.exitCode;
  },
};
