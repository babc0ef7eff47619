/** bench/util: what every benchmark needs: running commands, timing them, medians, acting as the test user. */
import { execFile } from 'node:child_process';

/** Runs a command to its end (asynchronously: the registries' log pipes keep draining); its trimmed stdout. */
export function exec(
  cmd: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 900_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd[0] as string,
      cmd.slice(1),
      { env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd.join(' ')} failed:\n${stderr.slice(-4000)}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** Wall-clock seconds of one command. */
export async function timeOnce(
  cmd: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const start = process.hrtime.bigint();
  await exec(cmd, env);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The unprivileged user the rootless benchmarks run as (scripts/setup.sh creates it with subordinate ids). */
export const BENCH_USER = 'gantry-test';

/** A command run as BENCH_USER (the benchmarks run as root). */
export function asUser(...cmd: string[]): string[] {
  return ['setpriv', '--reuid', BENCH_USER, '--regid', BENCH_USER, '--init-groups', '--', ...cmd];
}
