// The pure and file-level pieces of ADD's sources: compression sniffing, tar header recognition, archive
// detection and safe extraction (whiteouts kept, hard links, owners, refusals), URL file names and
// redaction, Git source forms and fragments.
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractArchive, isArchive, isTarHeader, sniffCompression } from '../../src/build/add-archive.js';
import { isGitSource, parseGitSource } from '../../src/build/add-git.js';
import { redactUrl, urlFileName } from '../../src/build/add-http.js';
import type { Owner } from '../../src/build/copy-stage.js';
import { isGantryError } from '../../src/errors/index.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-add-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Entry = {
  name: string;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'fifo';
  body?: string;
  linkname?: string;
  uid?: number;
  gid?: number;
  mode?: number;
};

function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = tarPack();
  for (const { body, ...header } of entries) p.entry({ mode: 0o644, ...header }, body ?? '');
  p.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    p.on('data', (c: Buffer) => chunks.push(c));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

let n = 0;
async function extract(archive: Buffer, owner?: Owner) {
  const file = join(dir, `a${n}.tar`);
  const target = join(dir, `t${n++}`);
  await writeFile(file, archive);
  await mkdir(target);
  const owners = new Map<string, Owner>();
  const result = await extractArchive({
    archive: file,
    name: 'a.tar',
    target,
    owners,
    subject: 'Dockerfile:3',
    ...(owner ? { owner } : {}),
  });
  return { target, owners, result };
}

describe('archive detection', () => {
  it('sniffs gzip, bzip2, xz and zstd magic bytes', () => {
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(sniffCompression(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(sniffCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(sniffCompression(Buffer.from('hello'))).toBe('none');
  });

  it('recognises a tar header by its checksum', async () => {
    const tar = await tarOf([{ name: 'x', body: 'y' }]);
    expect(isTarHeader(tar.subarray(0, 512))).toBe(true);
    const broken = Buffer.from(tar.subarray(0, 512));
    broken[0] = (broken[0] as number) ^ 1;
    expect(isTarHeader(broken)).toBe(false);
    expect(isTarHeader(Buffer.alloc(512))).toBe(false);
  });

  it('tells archives (plain or compressed) from other files', async () => {
    const tar = await tarOf([{ name: 'x', body: 'y' }]);
    const cases: [string, Buffer, boolean][] = [
      ['plain.tar', tar, true],
      ['gz.tgz', gzipSync(tar), true],
      ['text.tar', Buffer.from('just text, named like a tar\n'.repeat(40)), false],
      ['gz-text.gz', gzipSync(Buffer.from('compressed text')), false],
      ['empty.tar', Buffer.alloc(0), false],
    ];
    for (const [name, content, expected] of cases) {
      await writeFile(join(dir, name), content);
      expect([name, await isArchive(join(dir, name), 'Dockerfile:1')]).toEqual([name, expected]);
    }
  });
});

describe('extractArchive', () => {
  it('writes files, directories, symlinks and hard links with their owners; whiteouts stay files', async () => {
    const { target, owners, result } = await extract(
      await tarOf([
        { name: 'd/', type: 'directory', mode: 0o550, uid: 5, gid: 6 },
        { name: 'd/f.txt', body: 'f', mode: 0o640, uid: 5, gid: 6 },
        { name: 'd/.wh.gone', body: '' },
        { name: 'd/.wh..wh..opq', body: '' },
        { name: '/abs.txt', body: 'rooted at the target' },
        { name: 'l', type: 'symlink', linkname: 'd/f.txt' },
        { name: 'h', type: 'link', linkname: 'd/f.txt' },
        { name: 'p', type: 'fifo' },
      ]),
    );
    expect((await readdir(join(target, 'd'))).sort()).toEqual(['.wh..wh..opq', '.wh.gone', 'f.txt']);
    // A read-only directory still received its entries, and has its mode in the end.
    expect((await stat(join(target, 'd'))).mode & 0o7777).toBe(0o550);
    expect((await stat(join(target, 'd/f.txt'))).mode & 0o7777).toBe(0o640);
    expect(await readFile(join(target, 'abs.txt'), 'utf8')).toBe('rooted at the target');
    expect(await readlink(join(target, 'l'))).toBe('d/f.txt');
    expect((await stat(join(target, 'h'))).ino).toBe((await stat(join(target, 'd/f.txt'))).ino);
    expect(owners.get(join(target, 'd/f.txt'))).toEqual({ uid: 5, gid: 6 });
    expect(result.skipped).toEqual([{ path: 'p', reason: 'fifo entries are not extracted' }]);
  });

  it('gives every entry the --chown owner', async () => {
    const { target, owners } = await extract(await tarOf([{ name: 'x', body: 'x', uid: 9, gid: 9 }]), {
      uid: 1,
      gid: 2,
    });
    expect(owners.get(join(target, 'x'))).toEqual({ uid: 1, gid: 2 });
  });

  it.each<[string, Entry[], string]>([
    ['..', [{ name: 'a/../../x', body: 'x' }], 'leaves the destination'],
    ['a symlink out', [{ name: 's', type: 'symlink', linkname: 'a/../../..' }], 'outside the destination'],
    [
      'a write through a symlink',
      [
        { name: 's', type: 'symlink', linkname: '/' },
        { name: 's/x', body: 'x' },
      ],
      'through a symlink',
    ],
    [
      'a hard link through a symlink',
      [
        { name: 's', type: 'symlink', linkname: '/etc' },
        { name: 'h', type: 'link', linkname: 's/passwd' },
      ],
      'through a symlink',
    ],
    ['a hard link to nothing', [{ name: 'h', type: 'link', linkname: 'missing' }], 'not an earlier file'],
  ])('refuses %s, naming the archive and entry', async (_what, entries, message) => {
    const err = await extract(await tarOf(entries)).catch((e: unknown) => e);
    expect(isGantryError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toContain('Dockerfile:3: archive a.tar entry');
    expect((err as Error).message).toContain(message);
  });
});

describe('URL sources', () => {
  it('names the file after the last path segment, or __unnamed__', () => {
    expect(urlFileName('https://example.com/a/b/tool.tar.gz?x=1')).toBe('tool.tar.gz');
    expect(urlFileName('https://example.com/a/b%20c.txt')).toBe('b c.txt');
    expect(urlFileName('https://example.com/')).toBe('__unnamed__');
    expect(urlFileName('https://example.com')).toBe('__unnamed__');
    expect(urlFileName('https://example.com/bad%zz')).toBe('__unnamed__');
    expect(urlFileName('https://example.com/a/..')).toBe('__unnamed__');
  });

  it('redacts user info', () => {
    expect(redactUrl('https://alice:s3cret@example.com/x')).toBe('https://***@example.com/x');
    expect(redactUrl('https://token@example.com/x')).toBe('https://***@example.com/x');
    expect(redactUrl('https://example.com/x@y')).toBe('https://example.com/x@y');
  });
});

describe('Git sources', () => {
  it('recognises the forms BuildKit treats as Git', () => {
    expect(isGitSource('git@github.com:org/repo.git')).toBe(true);
    expect(isGitSource('git://host/repo')).toBe(true);
    expect(isGitSource('ssh://git@host/repo')).toBe(true);
    expect(isGitSource('https://host/org/repo.git#main')).toBe(true);
    expect(isGitSource('https://host/org/file.tar.gz')).toBe(false);
    expect(isGitSource('local/dir')).toBe(false);
  });

  it('splits the #ref:subdir fragment', () => {
    expect(parseGitSource('https://h/r.git')).toEqual({ remote: 'https://h/r.git' });
    expect(parseGitSource('https://h/r.git#v1')).toEqual({ remote: 'https://h/r.git', ref: 'v1' });
    expect(parseGitSource('git@h:r.git#main:docs/site')).toEqual({
      remote: 'git@h:r.git',
      ref: 'main',
      subdir: 'docs/site',
    });
    expect(parseGitSource('https://h/r.git#:sub')).toEqual({ remote: 'https://h/r.git', subdir: 'sub' });
  });

  it('reads the query keys BuildKit reads, refusing conflicts and unknown keys', () => {
    expect(parseGitSource('https://h/r.git?tag=v1&subdir=docs&keep-git-dir=true')).toEqual({
      remote: 'https://h/r.git',
      ref: 'refs/tags/v1',
      subdir: 'docs',
      keepGitDir: true,
    });
    expect(parseGitSource('https://h/r.git?branch=main&commit=abc123')).toEqual({
      remote: 'https://h/r.git',
      ref: 'refs/heads/main',
      checksum: 'abc123',
    });
    expect(isGitSource('https://h/r.git?ref=main')).toBe(true);
    expect(() => parseGitSource('https://h/r.git?ref=a#b')).toThrow('ref conflicts: b vs a');
    expect(() => parseGitSource('https://h/r.git?tag=a&branch=b')).toThrow('branch conflicts with tag');
    expect(() => parseGitSource('https://h/r.git?depth=1')).toThrow('unexpected query "depth"');
    expect(() => parseGitSource('https://u:pw@h/r.git?keep-git-dir=maybe')).toThrow(
      'https://***@h/r.git?keep-git-dir=maybe: invalid keep-git-dir value: "maybe"',
    );
  });
});

describe('redaction of tool messages', () => {
  it('replaces user info anywhere in a message', () => {
    expect(redactUrl("fatal: unable to access 'https://tok3n@h/r.git/': 403")).toBe(
      "fatal: unable to access 'https://***@h/r.git/': 403",
    );
  });
});
