/**
 * harness/cosign: the real cosign binary, the oracle for signature interoperability. scripts/setup.sh installs
 * the pinned version with `go install` into the tools cache; this module finds it there (or where
 * GANTRY_COSIGN points) and runs it offline against loopback registries. A missing cosign is a test failure,
 * never a skip: CI must prove interoperability on every run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTempDir } from './procs.js';

/** Keep in step with COSIGN_VERSION in scripts/setup.sh. */
export const COSIGN_VERSION = 'v2.6.5';

/** Where the cosign binary is: $GANTRY_COSIGN, else the setup.sh tools cache. Throws with the fix if absent. */
export function cosignPath(): string {
  const toolsDir = process.env.GANTRY_TOOLS_DIR ?? join(homedir(), '.cache', 'gantry-tools');
  const candidates = [process.env.GANTRY_COSIGN, join(toolsDir, 'bin', 'cosign')].filter(
    (p): p is string => p !== undefined && p !== '',
  );
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `cosign ${COSIGN_VERSION} not found (looked at ${candidates.join(', ')}): run scripts/setup.sh, ` +
        'which installs it with go install, or point GANTRY_COSIGN at a cosign binary',
    );
  }
  return found;
}

export interface CosignResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs cosign with its state (TUF cache, docker config) in a private temp HOME so it never reaches the network
 * for trust roots or reads the developer's credentials. Resolves with the exit code instead of rejecting.
 */
export async function cosign(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CosignResult> {
  const home = await cosignHome();
  return new Promise((resolve) => {
    execFile(
      cosignPath(),
      args,
      {
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          TUF_ROOT: join(home, '.sigstore'),
          COSIGN_YES: 'true',
          ...options.env,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs cosign and throws with its output unless it exits 0. */
export async function cosignOk(
  args: string[],
  options?: Parameters<typeof cosign>[1],
): Promise<CosignResult> {
  const result = await cosign(args, options);
  if (result.code !== 0) {
    throw new Error(`cosign ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  }
  return result;
}

/** Flags cosign needs for a plain-HTTP loopback registry. */
export const LOOPBACK_REGISTRY_FLAGS = ['--allow-insecure-registry', '--allow-http-registry'];

/**
 * A trusted root with no authorities: `cosign verify --key` needs one for bundles and would otherwise fetch
 * Sigstore's from the network. With `--key` and `--insecure-ignore-tlog`, nothing else is trusted.
 */
export async function emptyTrustedRoot(dir: string): Promise<string> {
  const path = join(dir, 'trusted_root.json');
  await writeFile(
    path,
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
    }),
  );
  return path;
}

let home: Promise<string> | undefined;

function cosignHome(): Promise<string> {
  home ??= mkdtemp(join(tmpdir(), 'gantry-cosign-home-')).then((dir) => {
    trackTempDir(dir);
    return dir;
  });
  return home;
}
