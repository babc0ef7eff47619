/**
 * test/support/cli: runs the shipped `gantry` CLI (bin/gantry.cjs over the esbuild bundle) as a child process,
 * the way users and CI run it. The bundle is built once per test run by test/support/global-setup.ts.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gantry.cjs');

export function gantry(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runCommand([process.execPath, BIN, ...args], {
    ...options,
    env: { ...process.env, CI: 'true', ...options.env },
  });
}

/** Runs a command with exactly `env`, feeding it `input`; killed after `timeoutMs` (default 2 minutes). */
export function runCommand(
  argv: readonly string[],
  options: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs gantry and fails with its stderr unless it exits 0. */
export async function gantryOk(args: string[], options?: Parameters<typeof gantry>[1]): Promise<CliResult> {
  const result = await gantry(args, options);
  if (result.code !== 0) {
    throw new Error(`gantry ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  }
  return result;
}
