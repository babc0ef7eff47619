/**
 * Shared by the build-run-* tests: `gantry build` run as the unprivileged user gantry-test (scripts/setup.sh
 * creates it; root is needed to act as it, and the tests say so instead of skipping), a busybox base image in
 * an OCI layout, build contexts owned by that user, and readers for what a build produced: a tag's layers
 * (the entries of each layer tar) and its flattened root filesystem (umoci).
 */
import { chownSync, mkdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeImageLayout } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import type { CliResult } from '../support/cli.js';
import { gantryAsTestUser, installationForTestUser, testUser } from './sandbox-user.js';

export interface RunBench {
  /** `oci:DIR:TAG` of a busybox image. */
  image: string;
  /** A new directory owned by gantry-test. */
  userDir(name: string): string;
  /** A build context owned by gantry-test holding `files` (relative path to content). */
  context(files: Record<string, string>): Promise<string>;
  /** Runs `gantry ARGS` as gantry-test with GANTRY_STORE and the given environment. */
  gantry(args: string[], env: Record<string, string>): Promise<CliResult>;
}

export async function runBench(): Promise<RunBench> {
  const ids = testUser();
  const { cli } = installationForTestUser();
  const base = await mkdtemp(join(tmpdir(), 'gantry-build-run-'));
  trackTempDir(base);
  await chmod(base, 0o755);
  const layout = join(base, 'base');
  const fixture = await makeImageLayout({ dir: layout, busybox: true, layers: 0 });
  await run('chmod', ['-R', 'a+rX', layout]);
  let n = 0;
  const userDir = (name: string): string => {
    const dir = join(base, `${name}-${n++}`);
    mkdirSync(dir);
    chownSync(dir, ids.uid, ids.gid);
    return dir;
  };
  return {
    image: `oci:${layout}:${fixture.tag}`,
    userDir,
    async context(files) {
      const dir = userDir('ctx');
      for (const [name, content] of Object.entries(files)) {
        const path = join(dir, name);
        await run('mkdir', ['-p', dirname(path)]);
        await writeFile(path, content);
      }
      await run('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
      await run('chmod', ['-R', 'a+rX', dir]);
      return dir;
    },
    gantry(args, env) {
      return gantryAsTestUser(cli, args, env);
    },
  };
}

interface Manifest {
  layers: { digest: string }[];
  config: { digest: string };
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

async function manifestOf(layout: string, tag: string): Promise<Manifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no ${tag} in ${layout}`);
  return JSON.parse(await readFile(blobPath(layout, entry.digest), 'utf8')) as Manifest;
}

/** The entries of each layer of `layout:tag` (gzip tars), base first, without `./` and trailing `/`. */
export async function layerEntries(layout: string, tag: string): Promise<string[][]> {
  const manifest = await manifestOf(layout, tag);
  const out: string[][] = [];
  for (const layer of manifest.layers) {
    const { stdout } = await run('tar', ['-tzf', blobPath(layout, layer.digest)]);
    out.push(
      stdout
        .split('\n')
        .filter(Boolean)
        .map((e) => e.replace(/^\.?\//, '').replace(/\/$/, '')),
    );
  }
  return out;
}

/** The image config's history `created_by` lines. */
export async function historyOf(layout: string, tag: string): Promise<string[]> {
  const manifest = await manifestOf(layout, tag);
  const config = JSON.parse(await readFile(blobPath(layout, manifest.config.digest), 'utf8')) as {
    history?: { created_by?: string }[];
  };
  return (config.history ?? []).map((h) => h.created_by ?? '');
}

/** Unpacks `layout:tag` with umoci into a new directory under `parent`; returns the root filesystem. */
export async function unpack(layout: string, tag: string, parent: string): Promise<string> {
  const dir = join(parent, `unpacked-${tag}`);
  await run('umoci', ['unpack', '--image', `${layout}:${tag}`, dir]);
  return join(dir, 'rootfs');
}
