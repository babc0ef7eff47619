// Rootless `gantry build` (as the unprivileged user gantry-test, which has subordinate ids) records exact file
// owners: RUN's layer is written inside the user namespace, so files the container gave to another user —
// symlinks and a file it made unreadable included — carry the container's ids in the tar headers; a later RUN
// as that user may write what it owns (lower layers get their owners); COPY --chown of a symlink and COPY --from
// a stage keep owners. The flattened filesystem matches buildah's (`buildah bud --isolation chroot`, as root in
// a private vfs store) for the same Dockerfile, both unpacked by umoci, and the layers are byte-for-byte those
// of the same build as root (where lchown sets owners).
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeImageLayout } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import { gantryOk } from '../support/cli.js';
import { asTestUser, installationForTestUser, testUser } from './sandbox-user.js';

// The busybox base links only a few applets; the others are called through `busybox`, whose Debian build has
// no adduser: the user is added the way adduser would.
const DOCKERFILE = `ARG BASE
FROM \${BASE} AS base
RUN mkdir -p /etc /home/app && printf 'root:x:0:0::/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\n' > /etc/passwd && \\
    printf 'root:x:0:\\napp:x:1000:\\n' > /etc/group && busybox chown 1000:1000 /home/app && \\
    touch /f && busybox chown 1000:1000 /f && busybox ln -s x /l && busybox chown -h 1000:1000 /l && \\
    echo hidden > /hidden && busybox chown 1000:1000 /hidden && busybox chmod 000 /hidden && \\
    mkdir /data && busybox chown app:app /data && busybox chmod 700 /data
USER app
RUN touch /data/by-app && busybox ln -s /f /data/link-by-app
USER root
COPY --chown=1000:1000 links/ /copied/
FROM base
COPY --from=base /data/ /home/app/
`;

let base: string;
let image: string;
let cli: string;
let user: ReturnType<typeof testUser>;

beforeAll(async () => {
  user = testUser();
  cli = installationForTestUser().cli;
  base = await mkdtemp(join(tmpdir(), 'gantry-build-owners-'));
  trackTempDir(base);
  await chmod(base, 0o755);
  const layout = join(base, 'base');
  const fixture = await makeImageLayout({ dir: layout, busybox: true, layers: 0 });
  image = `oci:${layout}:${fixture.tag}`;
  await run('chmod', ['-R', 'a+rX', layout]);
});

function userDir(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  chownSync(dir, user.uid, user.gid);
  return dir;
}

async function context(): Promise<string> {
  const dir = userDir('ctx');
  await writeFile(join(dir, 'Dockerfile'), DOCKERFILE);
  // In a directory: BuildKit and Buildah follow a symlink named as the source itself.
  await mkdir(join(dir, 'links'));
  await symlink('/f', join(dir, 'links', 'link'));
  await run('chmod', ['-R', 'a+rX', dir]);
  return dir;
}

/** Runs the CLI as gantry-test with its own store; rejects with its output when it fails. */
async function gantryAs(store: string, args: string[]): Promise<void> {
  const [file, ...rest] = asTestUser(process.execPath, cli, ...args);
  await run(file as string, rest, {
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', CI: 'true', GANTRY_STORE: store },
  });
}

/** Tar headers of a layer blob: `path uid:gid` for each entry (numeric ids, as stored). */
async function layerOwners(blob: string): Promise<Map<string, string>> {
  const { stdout } = await run('tar', ['-tvzf', blob, '--numeric-owner']);
  const owners = new Map<string, string>();
  for (const line of stdout.trim().split('\n')) {
    const f = line.split(/\s+/);
    const name = (f[5] as string).replace(/\/$/, '');
    owners.set(name, (f[1] as string).replace('/', ':'));
  }
  return owners;
}

/** `path type mode uid:gid digest` for every entry below `root` (read as root). */
async function tree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const path = join(root, rel);
    const s = await lstat(path);
    let what = 'other';
    if (s.isFile())
      what = `file ${createHash('sha256')
        .update(await readFile(path))
        .digest('hex')}`;
    else if (s.isSymbolicLink()) what = `symlink ${await readlink(path)}`;
    else if (s.isDirectory()) what = 'dir';
    out.push(`${rel} ${what} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`);
    if (s.isDirectory()) out.push(...(await tree(root, rel)));
  }
  return out;
}

async function unpack(layout: string, name: string): Promise<string[]> {
  const dir = await mkdtemp(join(base, 'unpack-'));
  await run('umoci', ['unpack', '--image', `${layout}:${name}`, join(dir, 'b')]);
  return tree(join(dir, 'b', 'rootfs'));
}

async function buildah(args: string[]): Promise<string> {
  const storage = ['--root', join(base, 'buildah-root'), '--runroot', join(base, 'buildah-run')];
  return (await run('buildah', [...storage, '--storage-driver', 'vfs', ...args])).stdout;
}

describe('rootless gantry build records exact owners', () => {
  let layout: string;
  let ctx: string;

  it('writes the container ids of RUN and COPY output into the layer tar headers', async () => {
    ctx = await context();
    const store = userDir('store');
    layout = join(userDir('out'), 'layout');
    await gantryAs(store, [
      'build',
      '--timestamp',
      '0',
      '--build-arg',
      `BASE=${image}`,
      '-o',
      `type=oci,dest=${layout},name=gantry`,
      ctx,
    ]);
    const manifest = JSON.parse(
      (await run('skopeo', ['inspect', '--raw', `oci:${layout}:gantry`])).stdout,
    ) as { layers: { digest: string }[] };
    const blob = (i: number) => join(layout, 'blobs', 'sha256', (manifest.layers[i]?.digest ?? '').slice(7));
    const first = await layerOwners(blob(1));
    expect(first.get('f')).toBe('1000:1000');
    expect(first.get('l')).toBe('1000:1000');
    expect(first.get('hidden')).toBe('1000:1000');
    expect(first.get('data')).toBe('1000:1000');
    expect(first.get('etc/passwd')).toBe('0:0');
    const second = await layerOwners(blob(2));
    expect(second.get('data/by-app')).toBe('1000:1000');
    expect(second.get('data/link-by-app')).toBe('1000:1000');
    expect((await layerOwners(blob(3))).get('copied/link')).toBe('1000:1000');
    const fromStage = await layerOwners(blob(4));
    expect(fromStage.get('home/app/by-app')).toBe('1000:1000');
    expect(fromStage.get('home/app/link-by-app')).toBe('1000:1000');
    // The unreadable file's content is in the layer all the same.
    const { stdout } = await run('tar', ['-xOzf', blob(1), 'hidden']);
    expect(stdout).toBe('hidden\n');
  });

  it("gives the same flattened filesystem as buildah's", async () => {
    // Buildah names images pulled from a layout after its path; it gets the base under a plain name instead.
    const storage = `containers-storage:[vfs@${join(base, 'buildah-root')}+${join(base, 'buildah-run')}]`;
    await run('skopeo', ['copy', '--quiet', image, `${storage}localhost/owners-base:latest`]);
    await buildah([
      'bud',
      '--isolation',
      'chroot',
      '--timestamp',
      '0',
      '--build-arg',
      'BASE=localhost/owners-base:latest',
      '-t',
      'localhost/owners',
      ctx,
    ]);
    await buildah(['push', 'localhost/owners', `oci:${layout}:buildah`]);
    // Buildah's RUN leaves its mount points; gantry's stubs never reach a layer (BuildKit; docs/build.md).
    const stubs = /^(dev|proc|sys|run|etc\/hostname|etc\/hosts|etc\/resolv\.conf) /;
    const buildahTree = (await unpack(layout, 'buildah')).filter((e) => !stubs.test(e));
    expect(await unpack(layout, 'gantry')).toEqual(buildahTree);
  });

  it('writes the same layers as the same build as root', async () => {
    await gantryOk(
      [
        'build',
        '--isolation',
        'chroot',
        '--timestamp',
        '0',
        '--build-arg',
        `BASE=${image}`,
        '-o',
        `type=oci,dest=${layout},name=root`,
        ctx,
      ],
      { env: { GANTRY_STORE: join(base, 'root-store') } },
    );
    const layers = async (name: string) =>
      JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${layout}:${name}`])).stdout).layers;
    expect(await layers('gantry')).toEqual(await layers('root'));
  });

  it('writes the same layers as root with the default isolation (a user namespace with root identity ids)', async () => {
    await gantryOk(
      [
        'build',
        '--timestamp',
        '0',
        '--build-arg',
        `BASE=${image}`,
        '-o',
        `type=oci,dest=${layout},name=root-auto`,
        ctx,
      ],
      { env: { GANTRY_STORE: join(base, 'root-auto-store') } },
    );
    const layers = async (name: string) =>
      JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${layout}:${name}`])).stdout).layers;
    expect(await layers('root-auto')).toEqual(await layers('gantry'));
  });
});
