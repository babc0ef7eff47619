// Differential test against buildah (`buildah bud --isolation chroot`, as root with the vfs driver in a private
// storage root): for COPY-only, multi-stage and metadata Dockerfiles, gantry's image and buildah's have the same
// config fields and the same flattened filesystem (paths, types, modes, owners, content hashes), both unpacked
// by umoci. Buildah's own `io.buildah.version` label is left out of the comparison.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, trackTempDir } from '../harness/procs.js';
import { gantryOk } from '../support/cli.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'build');
const CONFIG_FIELDS = [
  'User',
  'ExposedPorts',
  'Env',
  'Entrypoint',
  'Cmd',
  'Volumes',
  'WorkingDir',
  'Labels',
  'StopSignal',
] as const;

let base: string;

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the buildah differential test runs buildah as root (vfs, --isolation chroot): run it as root',
    );
  }
  base = await mkdtemp(join(tmpdir(), 'gantry-buildah-'));
  trackTempDir(base);
});

async function buildah(args: string[]): Promise<string> {
  const storage = [
    '--root',
    join(base, 'buildah-root'),
    '--runroot',
    join(base, 'buildah-run'),
    '--storage-driver',
    'vfs',
  ];
  return (await run('buildah', [...storage, ...args])).stdout;
}

/** `path type mode uid:gid digest` for every entry below `root`. */
async function tree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const path = join(root, rel);
    const s = await lstat(path);
    const mode = (s.mode & 0o7777).toString(8);
    let what = '';
    if (s.isFile())
      what = `file ${createHash('sha256')
        .update(await readFile(path))
        .digest('hex')}`;
    else if (s.isSymbolicLink()) what = `symlink ${await readlink(path)}`;
    else if (s.isDirectory()) what = 'dir';
    else what = 'other';
    out.push(`${rel} ${what} ${mode} ${s.uid}:${s.gid}`);
    if (s.isDirectory()) out.push(...(await tree(root, rel)));
  }
  return out;
}

async function unpack(layout: string, name: string): Promise<string[]> {
  const dir = await mkdtemp(join(base, 'unpack-'));
  await run('umoci', ['unpack', '--image', `${layout}:${name}`, join(dir, 'b')]);
  return tree(join(dir, 'b', 'rootfs'));
}

/**
 * Buildah creates VOLUME directories (and their parents) in the image; BuildKit and gantry do not
 * (docs/build.md). Those entries of buildah's listing are left out unless gantry's image has them too.
 */
function withoutVolumeDirs(
  entries: string[],
  volumes: readonly string[],
  other: readonly string[],
): string[] {
  const pathOf = (e: string) => e.split(' ')[0] as string;
  const present = new Set(other.map(pathOf));
  const vols = volumes.map((v) => v.replace(/^\//, ''));
  return entries.filter((e) => {
    const path = pathOf(e);
    return present.has(path) || !vols.some((v) => v === path || v.startsWith(`${path}/`));
  });
}

async function configOf(layout: string, name: string): Promise<Record<string, unknown>> {
  const config = JSON.parse(
    (await run('skopeo', ['inspect', '--config', `oci:${layout}:${name}`])).stdout,
  ).config;
  const picked: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) if (config[field] !== undefined) picked[field] = config[field];
  const labels = { ...((picked.Labels as Record<string, string>) ?? {}) };
  delete labels['io.buildah.version'];
  if (Object.keys(labels).length > 0) picked.Labels = labels;
  else delete picked.Labels;
  return picked;
}

describe('gantry build and buildah bud agree', () => {
  it.each(['copy', 'multistage', 'metadata'])('%s', async (fixture) => {
    const context = join(FIXTURES, fixture);
    const layout = join(base, `out-${fixture}`);
    await buildah([
      'bud',
      '--isolation',
      'chroot',
      '--timestamp',
      '0',
      '-t',
      `localhost/${fixture}`,
      context,
    ]);
    await buildah(['push', `localhost/${fixture}`, `oci:${layout}:buildah`]);
    await gantryOk(['build', '--timestamp', '0', '-o', `type=oci,dest=${layout},name=gantry`, context], {
      env: { GANTRY_STORE: join(base, `store-${fixture}`) },
    });
    expect(await configOf(layout, 'gantry')).toEqual(await configOf(layout, 'buildah'));
    const volumes = Object.keys(((await configOf(layout, 'gantry')).Volumes as object | undefined) ?? {});
    const ours = await unpack(layout, 'gantry');
    expect(ours).toEqual(withoutVolumeDirs(await unpack(layout, 'buildah'), volumes, ours));
  });
});
