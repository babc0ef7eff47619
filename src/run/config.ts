/**
 * run/config: turns an image config plus `gantry run` flags into the command, environment and working
 * directory to run, and parses `-v` and `-e` values, with Docker's semantics. Pure.
 */
import { posix } from 'node:path';
import { GantryError } from '../errors/index.js';
import type { SandboxMount } from '../sandbox/spec.js';

/** The `config` object of an OCI image config (only what running needs). */
export interface ImageRuntimeConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessOverrides {
  /** Replaces the image's Cmd (the Entrypoint stays). */
  command?: string[];
  /** `-e` values: `K=V`, or `K` to pass the host's value of K. */
  env?: string[];
  workdir?: string;
  hostEnv?: NodeJS.ProcessEnv;
}

export interface ProcessPlan {
  args: string[];
  env: string[];
  cwd: string;
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Later entries win; order of first appearance is kept. */
function mergeEnv(...lists: string[][]): string[] {
  const byKey = new Map<string, string>();
  for (const list of lists) for (const e of list) byKey.set(envKey(e), e);
  return [...byKey.values()];
}

export function planProcess(config: ImageRuntimeConfig, o: ProcessOverrides, home?: string): ProcessPlan {
  const args = [...(config.Entrypoint ?? []), ...(o.command?.length ? o.command : (config.Cmd ?? []))];
  if (args.length === 0) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      'the image has no Entrypoint or Cmd: give a command after the image',
    );
  }
  const overrides = (o.env ?? []).flatMap((e) => {
    if (e === '' || e.startsWith('='))
      throw new GantryError('INVALID_ARGUMENT', `-e needs KEY=VALUE, got ${JSON.stringify(e)}`);
    if (e.includes('=')) return [e];
    const host = o.hostEnv?.[e];
    return host === undefined ? [] : [`${e}=${host}`];
  });
  const defaults = [`PATH=${DEFAULT_PATH}`, ...(home ? [`HOME=${home}`] : ['HOME=/'])];
  const env = mergeEnv(defaults, config.Env ?? [], overrides);
  const cwd = o.workdir ?? (config.WorkingDir || '/');
  if (!posix.isAbsolute(cwd)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `the working directory must be absolute, got ${JSON.stringify(cwd)}`,
    );
  }
  return { args, env, cwd: posix.normalize(cwd) };
}

/** Parses `-v HOST:CONTAINER[:ro|rw]`; `resolveHost` makes the host side absolute. */
export function parseVolume(text: string, resolveHost: (p: string) => string): SandboxMount {
  const parts = text.split(':');
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new GantryError('INVALID_ARGUMENT', `-v needs HOST:CONTAINER[:ro], got ${JSON.stringify(text)}`);
  }
  const [host, container] = parts as [string, string];
  if (host === '' || !posix.isAbsolute(container)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `-v needs a host path and an absolute container path, got ${JSON.stringify(text)}`,
    );
  }
  return { source: resolveHost(host), destination: posix.normalize(container), readonly: mode === 'ro' };
}
