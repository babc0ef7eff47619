/**
 * harness/procs: process plumbing shared by the test harness — free loopback ports, running a command to
 * completion (bounded), and the registry of long-lived children that must not outlive the test process.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

/** Asks the kernel for a free 127.0.0.1 port by binding port 0, then releases it for the caller to use. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with its stderr on non-zero exit or after `timeoutMs`. */
export function run(
  file: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (err) {
          const reason = err.killed ? `timed out or was killed (${err.signal})` : `exited with ${err.code}`;
          reject(new Error(`${file} ${args.join(' ')} ${reason}:\n${stderr || stdout}`, { cause: err }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Children and temp dirs to clean up when the test process exits, whatever the tests did. Children are also
 * started under `setpriv --pdeathsig KILL` (see `deathSignalPrefix`) so a SIGKILLed test worker leaves none.
 */
const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** Removed at exit unless GANTRY_KEEP_TEST_DATA=1 (to inspect registry storage and logs after a failure). */
export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
}

function cleanUp(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  if (process.env.GANTRY_KEEP_TEST_DATA === '1') return;
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.once('exit', cleanUp);
// vitest stops its fork workers with SIGTERM, which skips 'exit' handlers: clean up, then die of the signal
// as before (unless someone else handles it).
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUp();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

/** `setpriv --pdeathsig KILL --` when available: the kernel kills the child if the test process dies. */
export function deathSignalPrefix(): string[] {
  return existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
  return false;
}
