// createLayer against real tools: round trip through unpackLayer, `tar -tvf`, `gzip -dc | sha256sum`,
// zstd, umoci unpack of an OCI layout holding the layer, reproducibility, upperdir whiteouts and tree diffs.
import { createHash } from 'node:crypto';
import {
  link,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { createLayer, unpackLayer } from '../../src/layer/index.js';
import { run } from '../harness/procs.js';
import { sha256, snapshot, writeTar } from './layer-fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-layer-create-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A small tree with every kind of entry a layer holds, including names longer than ustar's 100 bytes. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'empty'), { mode: 0o700 });
  await writeFile(join(root, 'etc/hostname'), 'gantry\n');
  await writeFile(join(root, 'usr/bin/tool'), Buffer.alloc(3 * 1024 * 1024 + 17, 'tool '), { mode: 0o755 });
  await writeFile(join(root, 'usr/bin/suid'), 'x', { mode: 0o4711 });
  await link(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-hardlink'));
  await symlink('/usr/bin/tool', join(root, 'usr/bin/abs-link'));
  await symlink('../etc/hostname', join(root, 'usr/rel-link'));
  const deep = join(root, 'deep', 'a'.repeat(90), 'b'.repeat(90), 'c'.repeat(60));
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, `${'long-name-'.repeat(12)}.txt`), 'long\n');
  await symlink('x'.repeat(150), join(root, 'long-target-link'));
}

describe('createLayer', () => {
  let tree: string;
  beforeAll(async () => {
    tree = join(dir, 'tree');
    await makeTree(tree);
  });

  it('round-trips a tree through unpackLayer (paths, types, modes, links, content, hard links)', async () => {
    const blob = join(dir, 'rt.tar.gz');
    const created = await createLayer({ changes: tree, outputPath: blob });
    expect(created.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const out = join(dir, 'rt-out');
    await mkdir(out);
    const unpacked = await unpackLayer({ source: blob, target: out });
    expect(unpacked.skipped).toEqual([]);
    expect(unpacked.diffId).toBe(created.diffId);
    expect(await snapshot(out)).toEqual(await snapshot(tree));
    const [a, b] = await Promise.all([
      stat(join(out, 'usr/bin/tool')),
      stat(join(out, 'usr/bin/tool-hardlink')),
    ]);
    expect(a.ino).toBe(b.ino);
  });

  it('hashes in one pass: digest = sha256sum of the blob, diffID = gzip -dc | sha256sum; tar lists it', async () => {
    const blob = join(dir, 'hash.tar.gz');
    const created = await createLayer({ changes: tree, outputPath: blob, level: 9 });
    const bytes = await readFile(blob);
    expect(created.size).toBe(bytes.length);
    const sum = (await run('sha256sum', [blob])).stdout.split(' ')[0];
    expect(created.digest).toBe(`sha256:${sum}`);
    const diff = (await run('sh', ['-c', `gzip -dc '${blob}' | sha256sum`])).stdout.split(' ')[0];
    expect(created.diffId).toBe(`sha256:${diff}`);
    // `gzip -t` checks the CRC and length trailer of the parallel writer's single member.
    await run('gzip', ['-t', blob]);
    const listing = (await run('tar', ['-tvzf', blob])).stdout;
    expect(listing).toMatch(/^-rws--x--x 0\/0 +1 .* usr\/bin\/suid$/m);
    expect(listing).toMatch(/^hrwxr-xr-x .* usr\/bin\/tool-hardlink link to usr\/bin\/tool$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* usr\/bin\/abs-link -> \/usr\/bin\/tool$/m);
    expect(listing).toContain(`${'long-name-'.repeat(12)}.txt`);
    // Entries are sorted, parents first.
    const names = (await run('tar', ['-tzf', blob])).stdout.trim().split('\n');
    expect(names.slice(0, 4)).toEqual([
      'deep/',
      `deep/${'a'.repeat(90)}/`,
      expect.any(String),
      expect.any(String),
    ]);
    expect(names.indexOf('usr/')).toBeLessThan(names.indexOf('usr/bin/'));
  });

  it('writes zstd and uncompressed layers with the same diffID', async () => {
    const zst = await createLayer({ changes: tree, outputPath: join(dir, 'l.tar.zst'), compression: 'zstd' });
    const plain = await createLayer({ changes: tree, outputPath: join(dir, 'l.tar'), compression: 'none' });
    const gz = await createLayer({ changes: tree, outputPath: join(dir, 'l.tgz'), sourceDateEpoch: 2e9 });
    expect(zst.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(plain.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(plain.digest).toBe(plain.diffId);
    expect(zst.diffId).toBe(plain.diffId);
    expect(gz.diffId).toBe(plain.diffId);
    const diff = (await run('sh', ['-c', `zstd -dc '${join(dir, 'l.tar.zst')}' | sha256sum`])).stdout.split(
      ' ',
    )[0];
    expect(zst.diffId).toBe(`sha256:${diff}`);
    expect(zst.digest).toBe(sha256(await readFile(join(dir, 'l.tar.zst'))));
  });

  it('is reproducible with sourceDateEpoch: same bytes for the same tree built at different times', async () => {
    const other = join(dir, 'tree-again');
    await makeTree(other);
    await utimes(join(other, 'etc/hostname'), new Date(), new Date(Date.now() + 5000));
    const epoch = 1_600_000_000;
    const first = await createLayer({
      changes: tree,
      outputPath: join(dir, 'r1.tgz'),
      sourceDateEpoch: epoch,
    });
    const second = await createLayer({
      changes: other,
      outputPath: join(dir, 'r2.tgz'),
      sourceDateEpoch: epoch,
    });
    expect(second).toEqual(first);
    const listing = (await run('tar', ['--full-time', '-tvzf', join(dir, 'r1.tgz')])).stdout;
    expect(listing).toContain('2020-09-13 12:26:40');
  });

  it('compresses the same tree to the same gzip bytes every time (blocks spread over the worker threads)', async () => {
    // Varied, compressible text over several 1 MiB blocks: a compressor that kept state from its previous
    // block made the digest depend on which worker got which block.
    const varied = join(dir, 'varied');
    await mkdir(varied);
    const alphabet = 'abcdefgh \n';
    let counter = 0;
    for (let f = 0; f < 4; f++) {
      const text = Buffer.alloc(2_000_000);
      for (let i = 0; i < text.length; i += 32) {
        const random = createHash('sha256').update(String(counter++)).digest();
        for (let j = 0; j < 32 && i + j < text.length; j++)
          text[i + j] = alphabet.charCodeAt((random[j] as number) % alphabet.length);
      }
      await writeFile(join(varied, `part-${f}.txt`), text);
    }
    const digests = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const out = join(dir, `varied-${i}.tgz`);
      const created = await createLayer({ changes: varied, outputPath: out, sourceDateEpoch: 0 });
      digests.add(`${created.digest} ${created.diffId}`);
    }
    expect(digests.size).toBe(1);
    await run('gzip', ['-t', join(dir, 'varied-0.tgz')]);
  });

  it('turns overlay whiteouts and opaque directories into .wh. entries', async () => {
    // Overlay-mode unpacking writes real overlay whiteouts (0/0 devices, opaque xattrs): an upperdir.
    const upper = join(dir, 'upper');
    await mkdir(upper);
    await writeTar(join(dir, 'wh.tgz'), [
      { name: 'a/', type: 'directory' },
      { name: 'a/.wh.gone' },
      { name: 'b/', type: 'directory' },
      { name: 'b/.wh..wh..opq' },
      { name: 'b/new', content: 'new' },
    ]);
    await unpackLayer({ source: join(dir, 'wh.tgz'), target: upper, whiteoutMode: 'overlay' });
    const created = await createLayer({ changes: upper, outputPath: join(dir, 'wh-out.tgz') });
    const names = (await run('tar', ['-tzf', join(dir, 'wh-out.tgz')])).stdout.trim().split('\n');
    expect(names).toEqual(['a/', 'a/.wh.gone', 'b/', 'b/.wh..wh..opq', 'b/new']);
    expect(created.size).toBeGreaterThan(0);
  });

  it('diffs two trees: changed and new entries with their parents, deletions as whiteouts', async () => {
    const base = join(dir, 'base');
    const next = join(dir, 'next');
    await makeTree(base);
    await run('cp', ['-a', `${base}/.`, next]);
    await writeFile(join(next, 'etc/hostname'), 'changed\n');
    await writeFile(join(next, 'usr/bin/new'), 'new');
    await rm(join(next, 'deep'), { recursive: true });
    await rm(join(next, 'usr/rel-link'));
    const created = await createLayer({ changes: next, base, outputPath: join(dir, 'diff.tgz') });
    const names = (await run('tar', ['-tzf', join(dir, 'diff.tgz')])).stdout.trim().split('\n');
    expect(names).toEqual([
      '.wh.deep',
      'etc/',
      'etc/hostname',
      'usr/',
      'usr/.wh.rel-link',
      'usr/bin/',
      'usr/bin/new',
    ]);
    // Applying the diff on a copy of the base gives the new tree.
    const applied = join(dir, 'applied');
    await run('cp', ['-a', base, applied]);
    const result = await unpackLayer({ source: join(dir, 'diff.tgz'), target: applied });
    expect(result.diffId).toBe(created.diffId);
    expect(await snapshot(applied)).toEqual(await snapshot(next));
  });

  it('writes atomically and leaves nothing behind on failure', async () => {
    const out = join(dir, 'atomic', 'layer.tgz');
    await mkdir(join(dir, 'atomic'));
    const err = await createLayer({ changes: join(dir, 'missing'), outputPath: out }).catch(
      (e: unknown) => e,
    );
    expect(isGantryError(err, 'IO')).toBe(true);
    expect((await run('ls', ['-A', join(dir, 'atomic')])).stdout).toBe('');
    const bad = await createLayer({ changes: tree, outputPath: out, level: 12 }).catch((e: unknown) => e);
    expect(isGantryError(bad, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('makes layers umoci unpacks from an OCI layout', async () => {
    const layout = join(dir, 'layout');
    await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
    const tmpBlob = join(layout, 'blobs/layer.tmp');
    const layer = await createLayer({ changes: tree, outputPath: tmpBlob, sourceDateEpoch: 1_600_000_000 });
    await rename(tmpBlob, join(layout, 'blobs/sha256', layer.digest.slice(7)));
    const put = async (value: unknown): Promise<{ digest: string; size: number }> => {
      const bytes = Buffer.from(JSON.stringify(value));
      const digest = sha256(bytes);
      await writeFile(join(layout, 'blobs/sha256', digest.slice(7)), bytes);
      return { digest, size: bytes.length };
    };
    const config = await put({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    });
    const manifest = await put({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    });
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: { 'org.opencontainers.image.ref.name': 'latest' },
          },
        ],
      }),
    );
    const bundle = join(dir, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
    const rootfs = await snapshot(join(bundle, 'rootfs'));
    const expected = await snapshot(tree);
    for (const [path, entry] of Object.entries(expected)) expect(rootfs[path], path).toEqual(entry);
  });
});
