/**
 * Shared by the sandbox-* and run-* tests: the unprivileged user gantry-test (scripts/setup.sh creates it with
 * /etc/subuid and /etc/subgid ranges) and a copy of the built CLI and helper it can read. Root is needed to act
 * as that user; without it the tests fail and say why (they are never skipped).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSubordinateIds } from '../../src/sandbox/idmap.js';
import { trackTempDir } from '../harness/procs.js';
import { type CliResult, runCommand } from '../support/cli.js';

export const TEST_USER = 'gantry-test';

export interface TestUser {
  uid: number;
  gid: number;
  subuid: number;
  subgid: number;
}

export function testUser(): TestUser {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'these tests run commands as the unprivileged user gantry-test and need root for that: run them as root after scripts/setup.sh',
    );
  }
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${TEST_USER}:`));
  if (!line) throw new Error(`user ${TEST_USER} is missing: run scripts/setup.sh as root`);
  const [, , uid, gid] = line.split(':');
  const owner = { name: TEST_USER, id: Number(uid) };
  const subuid = parseSubordinateIds(readFileSync('/etc/subuid', 'utf8'), owner)[0];
  const subgid = parseSubordinateIds(readFileSync('/etc/subgid', 'utf8'), owner)[0];
  if (!subuid || !subgid) {
    throw new Error(`${TEST_USER} has no /etc/subuid or /etc/subgid range: run scripts/setup.sh as root`);
  }
  return { uid: Number(uid), gid: Number(gid), subuid: subuid.start, subgid: subgid.start };
}

/** Runs the gantry CLI at `cli` as gantry-test with only PATH, CI=true and `env` (no readable HOME). */
export function gantryAsTestUser(
  cli: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return runCommand(asTestUser(process.execPath, cli, ...args), {
    env: { PATH: process.env.PATH, HOME: '/nonexistent', CI: 'true', ...env },
  });
}

/** `setpriv` execs the command itself as gantry-test, so signals sent to the child reach it directly. */
export function asTestUser(...cmd: string[]): string[] {
  return ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--', ...cmd];
}

const ROOT = join(import.meta.dirname, '..', '..');
const HELPER = join('native', 'target', 'release', 'gantry-sandbox');

/**
 * Paths of the CLI (bin/gantry.cjs over dist/) and the helper that gantry-test can use: the checkout itself
 * when that user can read it, else a world-readable copy of the built files (a checkout under /root is not).
 */
export function installationForTestUser(): { cli: string; helper: string } {
  const inPlace = { cli: join(ROOT, 'bin', 'gantry.cjs'), helper: join(ROOT, HELPER) };
  const [file, ...args] = asTestUser('test', '-r', inPlace.cli, '-a', '-x', inPlace.helper);
  try {
    execFileSync(file as string, args, { stdio: 'ignore' });
    return inPlace;
  } catch {
    const copy = mkdtempSync(join(tmpdir(), 'gantry-install-'));
    trackTempDir(copy);
    const files = [
      'package.json',
      'bin',
      'dist',
      HELPER,
      ...readdirSync(join(ROOT, 'native'))
        .filter((f) => f.endsWith('.node') || f === 'package.json')
        .map((f) => join('native', f)),
    ];
    for (const f of files) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    return { cli: join(copy, 'bin', 'gantry.cjs'), helper: join(copy, HELPER) };
  }
}
