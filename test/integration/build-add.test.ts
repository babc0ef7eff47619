// `gantry build` COPY/ADD sources beyond plain context files, through the CLI into OCI layouts unpacked with
// umoci: heredocs (several, `<<-`, quoted delimiters, --chmod/--chown), ADD of local tar archives (plain,
// gzip, bzip2, xz, zstd; --unpack=false; whiteouts kept as files; unsafe archives refused), ADD of HTTP(S)
// URLs (file name, mode 0600, Last-Modified, --checksum failing closed, cache keys), ADD of Git repositories
// served by `git daemon`, COPY --parents and --link.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeServerCerts } from '../harness/certs.js';
import { run, trackTempDir } from '../harness/procs.js';
import { gantry, gantryOk } from '../support/cli.js';

let base: string;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

/** A build context directory holding `files` (name to content) and the Dockerfile. */
async function context(dockerfile: string, files: Record<string, string | Buffer> = {}): Promise<string> {
  const dir = await fresh('ctx');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

interface Built {
  rootfs: string;
  stderr: string;
  layout: string;
}

/** Builds `ctx` into an OCI layout and unpacks the image with umoci. */
async function build(
  ctx: string,
  store: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Built> {
  const out = join(await fresh('out'), 'layout');
  const result = await gantryOk(
    [
      'build',
      '--timestamp',
      '2000000000',
      '--explain-cache',
      ...extra,
      '-o',
      `type=oci,dest=${out},name=t`,
      ctx,
    ],
    { env: { GANTRY_STORE: store, ...env } },
  );
  const dir = await fresh('unpack');
  await run('umoci', ['unpack', '--image', `${out}:t`, join(dir, 'b')]);
  return { rootfs: join(dir, 'b', 'rootfs'), stderr: result.stderr, layout: out };
}

/** The entry names of every layer of the layout's one image, read straight from the layer tars. */
async function layerNames(layout: string): Promise<string[]> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const names: string[] = [];
  for (const layer of manifest.layers as { digest: string }[]) {
    const { stdout } = await run('tar', ['-tzf', blob(layer.digest)]);
    names.push(...stdout.trim().split('\n'));
  }
  return names;
}

/** `path mode uid:gid size` for every entry below `root`. */
async function listing(root: string): Promise<string[]> {
  const { stdout } = await run('find', [root, '-mindepth', '1', '-printf', '%P %M %U:%G %s\n']);
  return stdout.trim().split('\n').sort();
}

function stepLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('['));
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-add-'));
  trackTempDir(base);
});

describe('COPY and ADD heredocs', () => {
  it('writes each heredoc as a file named after it, expanding unless quoted, with --chmod and --chown', async () => {
    const ctx = await context(
      [
        'FROM scratch',
        'ARG NAME=world',
        'COPY <<EOF /etc/greeting',
        'hello $NAME',
        'EOF',
        'COPY --chmod=0755 --chown=10:20 <<-"EOT" <<two /opt/',
        '\tliteral $NAME',
        '\tEOT',
        'second ${NAME}',
        'two',
        'ADD <<notes.txt /srv/',
        'added',
        'notes.txt',
        '',
      ].join('\n'),
    );
    const { rootfs } = await build(ctx, await fresh('store'));
    expect(await listing(rootfs)).toEqual([
      'etc drwxr-xr-x 0:0 4096',
      'etc/greeting -rw-r--r-- 0:0 12',
      'opt drwxr-xr-x 10:20 4096',
      'opt/EOT -rwxr-xr-x 10:20 14',
      'opt/two -rwxr-xr-x 10:20 13',
      'srv drwxr-xr-x 0:0 4096',
      'srv/notes.txt -rw-r--r-- 0:0 6',
    ]);
    expect(await readFile(join(rootfs, 'etc/greeting'), 'utf8')).toBe('hello world\n');
    expect(await readFile(join(rootfs, 'opt/EOT'), 'utf8')).toBe('literal $NAME\n');
    expect(await readFile(join(rootfs, 'opt/two'), 'utf8')).toBe('second world\n');
  });

  it('keys the step on the heredoc body: a changed body misses, the same body hits', async () => {
    const store = await fresh('store');
    const dockerfile = (body: string) => `FROM scratch\nCOPY <<EOF /a.txt\n${body}\nEOF\n`;
    await build(await context(dockerfile('one')), store);
    const again = await build(await context(dockerfile('one')), store);
    expect(stepLines(again.stderr).filter((l) => l.includes('CACHED COPY'))).toHaveLength(1);
    const changed = await build(await context(dockerfile('two')), store);
    expect(await readFile(join(changed.rootfs, 'a.txt'), 'utf8')).toBe('two\n');
  });
});

/** A tar (via tar-stream) of the given entries, for archives `tar` would refuse to write. */
function tarOf(
  entries: {
    name: string;
    type?: 'file' | 'symlink' | 'link' | 'directory';
    body?: string;
    linkname?: string;
    mode?: number;
    uid?: number;
    gid?: number;
  }[],
): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) {
    const { body, ...header } = e;
    p.entry({ mode: 0o644, mtime: new Date(1_000_000_000_000), ...header }, body ?? '');
  }
  p.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    p.on('data', (c: Buffer) => chunks.push(c));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

describe('ADD of local tar archives', () => {
  it('extracts plain, gzip, bzip2, xz and zstd tars into dest, keeps them with --unpack=false or COPY', async () => {
    const tree = await fresh('tree');
    for (const kind of ['plain', 'gz', 'bz', 'xz', 'zst']) {
      await mkdir(join(tree, kind, 'sub'), { recursive: true });
      await writeFile(join(tree, kind, `${kind}.txt`), `${kind}\n`);
      await writeFile(join(tree, kind, 'sub', '.wh.ghost'), '');
      await symlink(`${kind}.txt`, join(tree, kind, 'link'));
    }
    const ctx = await context(
      [
        'FROM scratch',
        'ADD plain.tar /plain',
        'ADD gz.tar.gz bz.tar.bz2 xz.tar.xz zst.tar.zst /multi/',
        'ADD --unpack=false plain.tar /kept/',
        'COPY plain.tar /copied/',
        'ADD --chown=7:8 --chmod=0600 owned.tgz /owned/',
        '',
      ].join('\n'),
    );
    const tar = (out: string, kind: string, ...z: string[]) =>
      run('tar', [
        '-C',
        join(tree, kind),
        '--owner=5',
        '--group=6',
        '--numeric-owner',
        ...z,
        '-cf',
        join(ctx, out),
        '.',
      ]);
    await tar('plain.tar', 'plain');
    await tar('gz.tar.gz', 'gz', '-z');
    await tar('bz.tar.bz2', 'bz', '-j');
    await tar('xz.tar.xz', 'xz', '-J');
    await tar('zst.tar.zst', 'zst', '--zstd');
    await writeFile(join(ctx, 'owned.tgz'), await readFile(join(ctx, 'gz.tar.gz')));
    const { rootfs, layout } = await build(ctx, await fresh('store'));
    // Whiteout names in an ADDed archive are plain files; the layer carries them as written (and a reader
    // of the image, umoci here, then takes them for whiteouts, as it would with BuildKit's layer).
    expect(await layerNames(layout)).toEqual(
      expect.arrayContaining(['plain/sub/.wh.ghost', 'multi/sub/.wh.ghost']),
    );
    const all = await listing(rootfs);
    const size = (await readFile(join(ctx, 'plain.tar'))).length;
    expect(all.filter((l) => l.startsWith('plain'))).toEqual([
      'plain drwxr-xr-x 5:6 4096',
      'plain/link lrwxrwxrwx 5:6 9',
      'plain/plain.txt -rw-r--r-- 5:6 6',
      'plain/sub drwxr-xr-x 5:6 4096',
    ]);
    for (const kind of ['gz', 'bz', 'xz', 'zst']) {
      expect(all).toContain(`multi/${kind}.txt -rw-r--r-- 5:6 ${kind.length + 1}`);
    }
    expect(all).toContain(`kept/plain.tar -rw-r--r-- 0:0 ${size}`);
    expect(all).toContain(`copied/plain.tar -rw-r--r-- 0:0 ${size}`);
    // --chown applies to every entry; --chmod does not apply to unpacked entries (BuildKit).
    expect(all.filter((l) => l.startsWith('owned'))).toEqual([
      'owned drwxr-xr-x 7:8 4096',
      'owned/gz.txt -rw-r--r-- 7:8 3',
      'owned/link lrwxrwxrwx 7:8 6',
      'owned/sub drwxr-xr-x 7:8 4096',
    ]);
  });

  it.each([
    ['a name with ..', [{ name: '../evil', body: 'x' }], 'leaves the destination'],
    [
      'a symlink out',
      [{ name: 'up', type: 'symlink' as const, linkname: '../../etc' }],
      'outside the destination',
    ],
    [
      'a write through a symlink',
      [
        { name: 'l', type: 'symlink' as const, linkname: '/etc' },
        { name: 'l/passwd', body: 'x' },
      ],
      'through a symlink',
    ],
    [
      'a hard link out',
      [{ name: 'h', type: 'link' as const, linkname: '../../etc/passwd' }],
      'leaves the destination',
    ],
  ])('refuses an archive with %s, naming the Dockerfile line', async (_what, entries, message) => {
    const ctx = await context('FROM scratch\nCOPY <<EOF /ok\nok\nEOF\nADD bad.tar /dst/\n', {
      'bad.tar': await tarOf(entries),
    });
    const out = join(await fresh('out'), 'layout');
    const result = await gantry(['build', '-o', `type=oci,dest=${out},name=t`, ctx], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Dockerfile:5');
    expect(result.stderr).toContain('bad.tar');
    expect(result.stderr).toContain(message);
  });
});
