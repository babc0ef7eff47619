/**
 * build/config: the image config a build produces and how each metadata instruction changes it (ENV, LABEL,
 * WORKDIR, USER, CMD, ENTRYPOINT, SHELL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER), with
 * BuildKit's semantics, plus history entries. Pure: instructions arrive already expanded.
 */
import { posix } from 'node:path';
import type { CommandLine, Instruction } from '../dockerfile/index.js';
import type { Platform } from '../oci/index.js';

export interface HealthcheckConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The `config` object of an OCI image config, as written by BuildKit and Buildah. */
export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthcheckConfig;
  OnBuild?: string[];
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: RuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

/** BuildKit's default PATH, set on images built FROM scratch. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function emptyConfig(platform: Platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** Per-stage state metadata instructions carry that is not in the config itself. */
export interface ConfigState {
  /** Whether this stage set CMD: ENTRYPOINT clears an inherited CMD only (BuildKit's rule). */
  cmdSet: boolean;
}

/** The argv a CMD/ENTRYPOINT/RUN command line stands for: exec form as is, shell form through the shell. */
export function commandArgs(command: CommandLine, shell: readonly string[] | undefined): string[] {
  if (command.form === 'exec') return [...command.args];
  return [...(shell && shell.length > 0 ? shell : DEFAULT_SHELL), command.args.join(' ')];
}

function setEnv(env: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(env ?? [])];
  const at = out.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (at >= 0) out[at] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

function portKey(port: string): string {
  return port.includes('/') ? port.toLowerCase() : `${port}/tcp`;
}

/**
 * Applies one metadata instruction to a config (returns a new config). RUN, COPY, ADD and ARG return the
 * config unchanged: they change the filesystem or only the build's variables.
 */
export function applyInstruction(
  image: ImageConfig,
  instruction: Instruction,
  state: ConfigState,
): { image: ImageConfig; state: ConfigState } {
  const c: RuntimeConfig = { ...image.config };
  let next = state;
  let author = image.author;
  switch (instruction.kind) {
    case 'ENV':
      for (const p of instruction.pairs) c.Env = setEnv(c.Env, p.key, p.value);
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const p of instruction.pairs) c.Labels[p.key] = p.value;
      break;
    case 'WORKDIR':
      c.WorkingDir = posix.resolve(c.WorkingDir || '/', instruction.path);
      break;
    case 'USER':
      c.User = instruction.user;
      break;
    case 'CMD':
      c.Cmd = commandArgs(instruction.command, c.Shell);
      next = { cmdSet: true };
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = commandArgs(instruction.command, c.Shell);
      if (!state.cmdSet) c.Cmd = null;
      break;
    case 'SHELL':
      c.Shell = [...instruction.shell];
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of instruction.ports) c.ExposedPorts[portKey(p)] = {};
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of instruction.volumes) c.Volumes[v] = {};
      break;
    case 'STOPSIGNAL':
      c.StopSignal = instruction.signal;
      break;
    case 'HEALTHCHECK': {
      const h = instruction.health;
      c.Healthcheck = {
        Test: [...h.test],
        ...(h.interval ? { Interval: h.interval } : {}),
        ...(h.timeout ? { Timeout: h.timeout } : {}),
        ...(h.startPeriod ? { StartPeriod: h.startPeriod } : {}),
        ...(h.startInterval ? { StartInterval: h.startInterval } : {}),
        ...(h.retries ? { Retries: h.retries } : {}),
      };
      break;
    }
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), instruction.expression];
      break;
    case 'MAINTAINER':
      author = instruction.maintainer;
      break;
    default:
      return { image, state };
  }
  const out: ImageConfig = { ...image, config: c };
  if (author !== undefined) out.author = author;
  return { image: out, state: next };
}

/** The `created_by` text of a step, in BuildKit's style. */
export function historyText(instruction: Instruction, shell: readonly string[] | undefined): string {
  if (instruction.kind === 'RUN') {
    return `RUN ${commandArgs(instruction.command, shell).join(' ')} # buildkit`;
  }
  if (instruction.kind === 'COPY' || instruction.kind === 'ADD') {
    return `${instruction.kind} ${[...instruction.sources, instruction.dest].join(' ')} # buildkit`;
  }
  return instruction.original;
}
