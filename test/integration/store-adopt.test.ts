// LayerStore.adoptLayer against the real round trip: a changes directory (sub-second and future mtimes, a
// whiteout device, an opaque directory, overlayfs bookkeeping xattrs, a symlink, a fifo, a hard link) made
// into a layer and unpacked gives exactly the tree adoptLayer keeps; what unpacking would not reproduce is
// refused and left in place; a layer already in the store wins.

import {
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLayer, unpackLayer } from '../../src/layer/index.js';
import { LayerStore } from '../../src/store/index.js';
import { run } from '../harness/procs.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-store-adopt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const EPOCH = 1_700_000_000;

/** Everything unpacking decides about each entry: type, mode, owner, mtime (ns), xattrs, content or target. */
async function describeTree(root: string, rel = ''): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  if (rel === '') {
    const args = ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root];
    out.xattrs = (await run('getfattr', args)).stdout.split(root).join('.');
  }
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const s = await lstat(join(root, path), { bigint: true });
    const whiteout = s.isCharacterDevice() && s.rdev === 0n;
    out[path] = {
      mode: Number(s.mode),
      owner: `${s.uid}:${s.gid}`,
      nlink: Number(s.nlink),
      // Unpacking leaves a whiteout's times as it made it.
      mtime: whiteout ? 'whiteout' : String(s.mtimeNs),
      content: s.isFile()
        ? (await readFile(join(root, path))).toString()
        : s.isSymbolicLink()
          ? await readlink(join(root, path))
          : '',
    };
    if (s.isDirectory()) Object.assign(out, await describeTree(root, path));
  }
  return out;
}

async function xattrsOf(path: string): Promise<string> {
  return (await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path])).stdout;
}

/** A changes directory as a RUN leaves it in an overlay upper directory. */
async function makeChanges(at: string): Promise<void> {
  await mkdir(join(at, 'etc', 'sub'), { recursive: true });
  await mkdir(join(at, 'opaque'));
  await writeFile(join(at, 'etc', 'a.conf'), 'a\n');
  await writeFile(join(at, 'etc', 'sub', 'new'), 'future\n');
  await writeFile(join(at, 'etc', 'ro'), 'read-only\n');
  await link(join(at, 'etc', 'ro'), join(at, 'etc', 'ro-link'));
  await symlink('a.conf', join(at, 'etc', 'link'));
  await run('mkfifo', [join(at, 'etc', 'fifo')]);
  // Overlayfs makes its whiteouts with no permission bits, as unpacking does.
  await run('mknod', ['-m', '000', join(at, 'etc', 'gone'), 'c', '0', '0']);
  await run('setfattr', ['-n', 'user.overlay.opaque', '-v', 'y', join(at, 'opaque')]);
  await run('setfattr', ['-n', 'user.overlay.origin', '-v', '0x00', join(at, 'etc', 'a.conf')]);
  await run('setfattr', ['-n', 'user.overlay.origin', '-v', '0x00', join(at, 'etc', 'ro')]);
  await run('setfattr', ['-n', 'user.overlay.impure', '-v', 'y', join(at, 'etc')]);
  await run('setfattr', ['-n', 'user.overlay.uuid', '-v', '0x0011', at]);
  await run('setfattr', ['-n', 'user.app', '-v', 'kept', join(at, 'etc', 'a.conf')]);
  await chmod(join(at, 'etc', 'ro'), 0o444);
  await utimes(join(at, 'etc', 'a.conf'), 1_600_000_000.25, 1_600_000_000.75);
  await utimes(join(at, 'etc', 'sub', 'new'), EPOCH + 5000.5, EPOCH + 5000.5);
  await utimes(join(at, 'etc', 'sub'), EPOCH - 1.5, EPOCH - 1.5);
}

describe('LayerStore.adoptLayer', () => {
  it('keeps a changes directory as exactly the tree unpacking its layer gives', async () => {
    const work = join(dir, 'same');
    const changes = join(work, 'changes');
    await mkdir(changes, { recursive: true });
    await makeChanges(changes);
    const created = await createLayer({ changes, outputPath: join(work, 'blob'), sourceDateEpoch: EPOCH });
    const unpacked = await mkdtemp(join(work, 'unpacked-'));
    const result = await unpackLayer({
      source: join(work, 'blob'),
      target: unpacked,
      whiteoutMode: 'overlay',
    });
    expect(result.diffId).toBe(created.diffId);

    const store = await LayerStore.open(join(work, 'store'));
    expect(await store.adoptLayer(created.diffId, changes, { sourceDateEpoch: EPOCH })).toBe(true);
    const adopted = store.layerPath(created.diffId);
    await expect(lstat(changes)).rejects.toThrow();
    expect(await describeTree(adopted)).toEqual(await describeTree(unpacked));
    // The root: mkdtemp's mode, no overlay id.
    expect((await lstat(adopted)).mode & 0o7777).toBe(0o700);
    expect(await xattrsOf(adopted)).not.toContain('overlay');
    // The copy-up origin is gone, the application's xattr and the opaque marker stay.
    const conf = await xattrsOf(join(adopted, 'etc', 'a.conf'));
    expect(conf).toContain('user.app');
    expect(conf).not.toContain('origin');
    expect(await xattrsOf(join(adopted, 'opaque'))).toContain('overlay.opaque=0x79');
  });

  it('refuses what unpacking would not reproduce, leaving the directory to the caller', async () => {
    const work = join(dir, 'socket');
    const changes = join(work, 'changes');
    await mkdir(changes, { recursive: true });
    await writeFile(join(changes, 'file'), 'x');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(changes, 'sock'), resolve));
    try {
      const created = await createLayer({ changes, outputPath: join(work, 'blob') });
      const store = await LayerStore.open(join(work, 'store'));
      expect(await store.adoptLayer(created.diffId, changes)).toBe(false);
      expect((await readdir(changes)).sort()).toEqual(['file', 'sock']);
      await expect(lstat(store.layerPath(created.diffId))).rejects.toThrow();
    } finally {
      server.close();
    }
  });

  it('counts a layer that is already in the store as adopted and leaves the directory alone', async () => {
    const work = join(dir, 'present');
    const changes = join(work, 'changes');
    await mkdir(changes, { recursive: true });
    await writeFile(join(changes, 'file'), 'x');
    const created = await createLayer({ changes, outputPath: join(work, 'blob') });
    const store = await LayerStore.open(join(work, 'store'));
    await store.ensureLayer(created.diffId, async (target) => {
      await unpackLayer({ source: join(work, 'blob'), target, whiteoutMode: 'overlay' });
    });
    expect(await store.adoptLayer(created.diffId, changes)).toBe(true);
    expect(await readdir(changes)).toEqual(['file']);
  });
});
