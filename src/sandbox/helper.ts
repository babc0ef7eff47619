/**
 * sandbox/helper: finds and runs the gantry-sandbox helper binary (native/src/bin/gantry-sandbox.rs, built by
 * `npm run build:native`). Node is multithreaded, so namespaces are created in that single-threaded helper;
 * this module hands it a spec file, forwards SIGINT/SIGTERM/SIGHUP and reads its status events from fd 3.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { GantryError } from '../errors/index.js';
import type { Logger } from '../util/log.js';
import type { LevelProbe } from './probe.js';
import type { IdMaps, SandboxSpec } from './spec.js';

const HELPER = 'gantry-sandbox';

/** GANTRY_SANDBOX_HELPER, else native/target/release/gantry-sandbox next to this package (src/ or dist/). */
export function sandboxHelperPath(): string {
  const override = process.env.GANTRY_SANDBOX_HELPER;
  if (override) return override;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'native'), join(here, '..', 'native')].map((d) =>
    join(d, 'target', 'release', HELPER),
  );
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GantryError(
      'NATIVE',
      `the ${HELPER} helper is not built (looked in ${candidates.join(', ')}); run \`npm run build:native\``,
      {
        subject: HELPER,
      },
    );
  }
  return found;
}

/** The helper needs PATH (newuidmap, fuse-overlayfs) and nothing else from gantry's environment. */
function helperEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
}

export interface HelperOutput {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs one helper subcommand that reports through stdout and stderr (not `run`, which talks over fd 3) to its
 * end. Rejects only when the helper cannot start; the exit code is the caller's to judge.
 */
export function runHelper(args: readonly string[]): Promise<HelperOutput> {
  const helper = sandboxHelperPath();
  return new Promise((resolve, reject) => {
    const child = spawn(helper, args, { env: helperEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (cause) =>
      reject(
        new GantryError('NATIVE', `cannot start ${HELPER}: ${cause.message}`, { subject: helper, cause }),
      ),
    );
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Runs `gantry-sandbox probe DIR` (which removes DIR's probe subdirectories again). */
export async function probeHelper(dir: string): Promise<{ rootless: LevelProbe; chroot: LevelProbe }> {
  const { code, out, err } = await runHelper(['probe', dir]);
  try {
    if (code !== 0) throw new Error(`exited with ${code}: ${err.trim()}`);
    return JSON.parse(out) as { rootless: LevelProbe; chroot: LevelProbe };
  } catch (cause) {
    throw new GantryError('NATIVE', `${HELPER} probe failed: ${(cause as Error).message}`, {
      subject: sandboxHelperPath(),
      cause,
    });
  }
}

/** Runs `gantry-sandbox own|remove` on a directory inside a user namespace with the container's id maps. */
async function treeInUserNamespace(
  action: 'own' | 'remove',
  options: { dir: string; idMaps: IdMaps },
): Promise<void> {
  const specFile = `${options.dir}.${action}.json`;
  await writeFile(specFile, JSON.stringify(options), { mode: 0o600 });
  try {
    const { code, err } = await runHelper([action, specFile]);
    if (code !== 0) throw new GantryError('NATIVE', err.trim(), { subject: options.dir });
  } finally {
    await rm(specFile, { force: true });
  }
}

/**
 * Gives an unpacked layer the ownership its tar recorded in `user.gantry.owner` xattrs (an unprivileged
 * unpack cannot chown), by chowning inside a user namespace with the container's id maps.
 */
export function restoreOwners(options: { dir: string; idMaps: IdMaps }): Promise<void> {
  return treeInUserNamespace('own', options);
}

/** Deletes a directory that holds files owned by the caller's subordinate ids (as container root). */
export function removeAsContainerRoot(options: { dir: string; idMaps: IdMaps }): Promise<void> {
  return treeInUserNamespace('remove', options);
}

export interface SandboxResult {
  /** The command's exit status, or 128 + signal. */
  exitCode: number;
  /** Why the command did not start (exit codes 126/127: not executable, not found). */
  error?: string;
}

type HelperEvent =
  | { event: 'started'; pid: number }
  | { event: 'warning'; message: string }
  | { event: 'error'; message: string }
  | { event: 'exit'; code: number };

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs one container: writes the spec into its scratch directory, starts the helper with the caller's
 * stdin/stdout/stderr, forwards signals while it runs, and resolves with the command's exit status.
 * Throws GantryError NATIVE when the container could not be set up (helper exit 125).
 */
export async function runSandbox(spec: SandboxSpec, options: { logger: Logger }): Promise<SandboxResult> {
  const helper = sandboxHelperPath();
  const specFile = join(spec.scratch, 'spec.json');
  await writeFile(specFile, JSON.stringify(spec), { mode: 0o600 });
  const child = spawn(helper, ['run', specFile], {
    // `run` reports its events on fd 3 (stdin, stdout and stderr are the container command's).
    env: { ...helperEnv(), GANTRY_SANDBOX_EVENTS_FD: '3' },
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  let error: string | undefined;
  let reported: number | undefined;
  const events = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
  events.on('line', (line) => {
    let e: HelperEvent;
    try {
      e = JSON.parse(line) as HelperEvent;
    } catch {
      options.logger.debug(`${HELPER}: ${line}`);
      return;
    }
    if (e.event === 'started') options.logger.debug(`container init is pid ${e.pid}`);
    else if (e.event === 'warning') options.logger.warn(e.message);
    else if (e.event === 'error') error = e.message;
    else if (e.event === 'exit') reported = e.code;
  });
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', (cause) =>
        reject(
          new GantryError('NATIVE', `cannot start ${HELPER}: ${cause.message}`, { subject: helper, cause }),
        ),
      );
      child.on('close', (status, signal) => resolve(status ?? 128 + signalNumber(signal)));
    });
    const exitCode = reported ?? code;
    if (exitCode === 125 && error !== undefined) {
      throw new GantryError('NATIVE', `the container could not start: ${error}`, {
        subject: spec.process.args[0],
      });
    }
    return error === undefined ? { exitCode } : { exitCode, error };
  } finally {
    for (const s of FORWARDED_SIGNALS) process.off(s, forward);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? constants.signals[signal] : 1;
}
