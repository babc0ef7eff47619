// unpackLayer against real tar blobs: hostile layers refused with nothing written outside the target,
// whiteouts and opaque directories applied, overlay-style whiteouts honoured by a real overlay mount.
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { unpackLayer } from '../../src/layer/index.js';
import { run } from '../harness/procs.js';
import { sha256, snapshot, type TarItem, writeTar } from './layer-fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-layer-unpack-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fresh(name: string): Promise<{ work: string; target: string; outside: string }> {
  const work = join(dir, name);
  const target = join(work, 'target');
  const outside = join(work, 'outside');
  await mkdir(target, { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret'), 'host secret\n');
  return { work, target, outside };
}

describe('unpackLayer refuses hostile layers', () => {
  const passwdBefore = { hash: '' };
  beforeAll(async () => {
    passwdBefore.hash = sha256(await readFile('/etc/passwd'));
  });

  const cases: [string, (outside: string) => TarItem[]][] = [
    ['a ../ path', () => [{ name: 'ok' }, { name: '../outside/evil', content: 'x' }]],
    ['a ../ path hidden in the middle', () => [{ name: 'a/../../outside/evil', content: 'x' }]],
    ['an absolute path', (outside) => [{ name: `${outside}/evil`, content: 'x' }]],
    [
      'a symlink to /etc followed by a file through it',
      () => [
        { name: 'etc', type: 'symlink', linkname: '/etc' },
        { name: 'etc/gantry-evil', content: 'x' },
      ],
    ],
    [
      'a relative symlink out of the target followed by a file through it',
      () => [
        { name: 'up', type: 'symlink', linkname: '../outside' },
        { name: 'up/evil', content: 'x' },
      ],
    ],
    [
      'a symlink to a directory outside followed by a directory and file below it',
      (outside) => [
        { name: 'd', type: 'symlink', linkname: outside },
        { name: 'd/sub/', type: 'directory' },
        { name: 'd/sub/evil', content: 'x' },
      ],
    ],
    [
      'a whiteout through a symlink to a host directory',
      (outside) => [{ name: 'd', type: 'symlink', linkname: outside }, { name: 'd/.wh.secret' }],
    ],
    [
      'an opaque marker through a symlink to a host directory',
      (outside) => [{ name: 'd', type: 'symlink', linkname: outside }, { name: 'd/.wh..wh..opq' }],
    ],
    ['a hard link to a host file', () => [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }]],
    [
      'a hard link out of the target by ..',
      () => [{ name: 'pw', type: 'link', linkname: '../outside/secret' }],
    ],
    [
      'a hard link through a symlink',
      () => [
        { name: 'l', type: 'symlink', linkname: '/etc' },
        { name: 'pw', type: 'link', linkname: 'l/passwd' },
      ],
    ],
  ];

  it.each(cases)('refuses %s and writes nothing outside', async (label, items) => {
    const { work, target, outside } = await fresh(label.replace(/\W+/g, '-'));
    const blob = join(work, 'layer.tar.gz');
    await writeTar(blob, items(outside));
    const err = await unpackLayer({ source: blob, target }).catch((e: unknown) => e);
    expect(isGantryError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/refused/);
    // The host side: nothing new next to the target, the secret untouched and unlinked, /etc unchanged.
    expect((await readdir(outside)).sort()).toEqual(['secret']);
    expect((await lstat(join(outside, 'secret'))).nlink).toBe(1);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('host secret\n');
    expect((await readdir(work)).sort()).toEqual(['layer.tar.gz', 'outside', 'target']);
    expect(existsSync('/etc/gantry-evil')).toBe(false);
    expect(sha256(await readFile('/etc/passwd'))).toBe(passwdBefore.hash);
    expect((await lstat('/etc/passwd')).nlink).toBe(1);
  });

  it('stops promptly on a hostile entry at the start of a large layer', async () => {
    const { work, target, outside } = await fresh('large');
    const blob = join(work, 'layer.tar.gz');
    // 32 MiB after the bad entry: more than the decompressor may queue, so it must be told to stop.
    await writeTar(blob, [
      { name: '../outside/evil', content: 'x' },
      { name: 'big', content: 'y'.repeat(32 << 20) },
    ]);
    const err = await unpackLayer({ source: blob, target }).catch((e: unknown) => e);
    expect(isGantryError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((await readdir(outside)).sort()).toEqual(['secret']);
  });

  it('keeps absolute symlinks as links without following them, and replaces a symlink by a file', async () => {
    const { work, target } = await fresh('absolute-symlink');
    const blob = join(work, 'layer.tar.gz');
    await writeTar(blob, [
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'passwd', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
    ]);
    const result = await unpackLayer({ source: blob, target });
    expect(result.entries).toBe(3);
    expect(await snapshot(target)).toMatchObject({
      bin: { type: 'dir' },
      'bin/sh': { type: 'symlink', link: '/bin/busybox' },
      passwd: { type: 'file', sha256: sha256('root:x:0:0::/root:/bin/sh\n').slice(7) },
    });
    expect(sha256(await readFile('/etc/passwd'))).toBe(passwdBefore.hash);
  });
});

describe('unpackLayer applies layers', () => {
  const lower: TarItem[] = [
    { name: 'a/', type: 'directory' },
    { name: 'a/keep', content: 'keep' },
    { name: 'a/gone', content: 'gone' },
    { name: 'a/gonedir/', type: 'directory' },
    { name: 'a/gonedir/x', content: 'x' },
    { name: 'b/', type: 'directory' },
    { name: 'b/old', content: 'old' },
    { name: 'b/olddir/', type: 'directory' },
    { name: 'b/olddir/y', content: 'y' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
    { name: 'ro/', type: 'directory', mode: 0o555 },
    { name: 'ro/file', content: 'ro', mode: 0o444 },
    { name: 'setuid', content: 's', mode: 0o4755, uid: 1000, gid: 1000 },
  ];
  const upper: TarItem[] = [
    { name: 'a/.wh.gone' },
    { name: 'a/.wh.gonedir' },
    // Same-layer entries before and after the opaque marker survive it; lower-layer ones do not.
    { name: 'b/before', content: 'before' },
    { name: 'b/.wh..wh..opq' },
    { name: 'b/olddir/new', content: 'new' },
    { name: 'ro/file2', content: 'ro2' },
  ];

  it('deletes whited-out paths and empties opaque directories, keeping this layer’s entries', async () => {
    const { work, target } = await fresh('apply');
    await writeTar(join(work, 'lower.tgz'), lower);
    await writeTar(join(work, 'upper.tar'), upper, { gzip: false });
    const first = await unpackLayer({
      source: join(work, 'lower.tgz'),
      target,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    });
    expect(first.skipped).toEqual([
      { path: 'dev/null', reason: expect.stringMatching(/device node 1:3 skipped/) },
    ]);
    const second = await unpackLayer({ source: join(work, 'upper.tar'), target });
    expect(second.entries).toBe(upper.length);
    const tree = await snapshot(target);
    expect(Object.keys(tree).sort()).toEqual(
      [
        'a',
        'a/keep',
        'b',
        'b/before',
        'b/olddir',
        'b/olddir/new',
        'dev',
        'ro',
        'ro/file',
        'ro/file2',
        'setuid',
      ].sort(),
    );
    expect(tree.ro).toMatchObject({ mode: 0o555 });
    expect(tree['ro/file']).toMatchObject({ mode: 0o444 });
    expect(tree.setuid).toMatchObject({ mode: 0o4755 });
    const st = await lstat(join(target, 'setuid'));
    expect([st.uid, st.gid, st.mtimeMs]).toEqual([1000, 1000, 1_700_000_000_000]);
  });

  it('reports the diffID of the uncompressed stream', async () => {
    const { work, target } = await fresh('diffid');
    await writeTar(join(work, 'l.tar'), lower, { gzip: false });
    await writeTar(join(work, 'l.tgz'), lower);
    const plain = await unpackLayer({ source: join(work, 'l.tar'), target });
    expect(plain.diffId).toBe(sha256(await readFile(join(work, 'l.tar'))));
    await rm(target, { recursive: true });
    await mkdir(target);
    expect((await unpackLayer({ source: join(work, 'l.tgz'), target })).diffId).toBe(plain.diffId);
  });

  it('refuses non-tar media types and corrupt blobs', async () => {
    const { work, target } = await fresh('corrupt');
    await writeFile(join(work, 'bad.tgz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    const encrypted = await unpackLayer({
      source: join(work, 'bad.tgz'),
      target,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
    }).catch((e: unknown) => e);
    expect(isGantryError(encrypted, 'UNSUPPORTED_MEDIA_TYPE')).toBe(true);
    const corrupt = await unpackLayer({ source: join(work, 'bad.tgz'), target }).catch((e: unknown) => e);
    expect(isGantryError(corrupt, 'INVALID_ARGUMENT')).toBe(true);
    const missing = await unpackLayer({ source: join(work, 'none.tgz'), target }).catch((e: unknown) => e);
    expect(isGantryError(missing, 'IO')).toBe(true);
    expect((missing as Error).message).toContain('none.tgz');
  });

  it('writes overlay whiteouts that a real overlay mount in a user namespace honours', async () => {
    const { work } = await fresh('overlay');
    const l1 = join(work, 'l1');
    const l2 = join(work, 'l2');
    const merged = join(work, 'merged');
    await Promise.all([mkdir(l1), mkdir(l2), mkdir(merged)]);
    await writeTar(join(work, 'lower.tgz'), lower);
    await writeTar(join(work, 'upper.tgz'), upper);
    await unpackLayer({ source: join(work, 'lower.tgz'), target: l1, whiteoutMode: 'overlay' });
    await unpackLayer({ source: join(work, 'upper.tgz'), target: l2, whiteoutMode: 'overlay' });
    const wh = await lstat(join(l2, 'a/gone'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    const script = `mount -t overlay overlay -o userxattr,lowerdir=${l2}:${l1} ${merged} && cd ${merged} && find . | sort`;
    const { stdout } = await run('unshare', ['-rm', 'sh', '-c', script]);
    expect(stdout.trim().split('\n')).toEqual([
      '.',
      './a',
      './a/keep',
      './b',
      './b/before',
      './b/olddir',
      './b/olddir/new',
      './dev',
      './ro',
      './ro/file',
      './ro/file2',
      './setuid',
    ]);
  });
});
