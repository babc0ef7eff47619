/** `gantry run IMAGE [CMD...]`: runs a command in a container made from an image, rootlessly (see src/run). */
import { resolve } from 'node:path';
import { GantryError } from '../../errors/index.js';
import { unpackLayer } from '../../layer/index.js';
import { type PullPolicy, parseVolume, runImage } from '../../run/index.js';
import { ISOLATION_REQUESTS } from '../../sandbox/isolation.js';
import type { IsolationRequest, NetworkMode } from '../../sandbox/spec.js';
import { defaultStoreRoot, LayerStore } from '../../store/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';

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
  // The registry flags of copy, declared here because cli/registry-flags loads the registry client (and
  // undici) with it: a run from the store must not pay for that. The client is made only to pull.
  creds: { type: 'string', valueName: 'USER:PASS', description: 'credentials for the registry' },
  'registry-token': { type: 'string', valueName: 'TOKEN', description: 'bearer token for the registry' },
  authfile: {
    type: 'string',
    valueName: 'FILE',
    description: 'auth file (default: containers auth.json, then ~/.docker/config.json)',
  },
  'tls-verify': { type: 'boolean', description: 'verify TLS certificates (default true; =false to skip)' },
  'cert-dir': {
    type: 'string',
    valueName: 'DIR',
    description: 'CA and client certificates (ca.crt, client.cert, client.key)',
  },
  insecure: {
    type: 'string',
    multiple: true,
    valueName: 'HOST',
    description: 'allow plain HTTP to this registry (repeatable)',
  },
  'retry-times': {
    type: 'string',
    valueName: 'N',
    description: 'retries per request on network errors, 5xx and 429 (default 4)',
  },
  quiet: { type: 'boolean', short: 'q', description: 'print nothing but errors' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
} as const;

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

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
      network: oneOf<NetworkMode>('network', f.network, ['host', 'none'], 'host'),
      isolation: oneOf<IsolationRequest>('isolation', f.isolation, ISOLATION_REQUESTS, 'auto'),
      pull: oneOf<PullPolicy>('pull', f.pull, ['missing', 'always', 'never'], 'missing'),
      store: await LayerStore.open(defaultStoreRoot()),
      registry: async () => (await import('../registry-flags.js')).registryClientFromFlags(f, '', out.logger),
      logger: out.logger,
      unpackLayer,
    });
    if (result.error) process.stderr.write(`gantry run: ${result.error}\n`);
    return result.exitCode;
  },
};
