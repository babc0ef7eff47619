// Which files a COPY takes and where each lands: directory contents, files into `dest/`, wildcards, ignore rules,
// missing sources, and fingerprints that change with content and mode only.
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintEntries, planCopy } from '../../src/build/copy-plan.js';
import { createIgnoreMatcher } from '../../src/dockerfile/index.js';
import { isGantryError } from '../../src/errors/index.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gantry-copy-plan-'));
  await mkdir(join(root, 'src', 'sub'), { recursive: true });
  await writeFile(join(root, 'src', 'a.txt'), 'a');
  await writeFile(join(root, 'src', 'b.log'), 'b');
  await writeFile(join(root, 'src', 'sub', 'c.txt'), 'c');
  await writeFile(join(root, 'top.txt'), 'top');
  await symlink('top.txt', join(root, 'link'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const plan = async (
  sources: string[],
  dest: string,
  extra: { ignore?: string[]; destIsDir?: boolean } = {},
) =>
  (
    await planCopy({
      root,
      sources,
      dest,
      destIsDir: extra.destIsDir ?? false,
      destExists: false,
      subject: 'Dockerfile:2',
      ...(extra.ignore ? { ignore: createIgnoreMatcher(extra.ignore) } : {}),
    })
  ).map((e) => `${e.type} ${e.dest}`);

describe('planCopy', () => {
  it('copies a directory’s contents onto dest, which takes the directory’s metadata', async () => {
    expect(await plan(['src'], '/app')).toEqual([
      'dir /app',
      'file /app/a.txt',
      'file /app/b.log',
      'dir /app/sub',
      'file /app/sub/c.txt',
    ]);
  });

  it('puts a file at dest, or into dest/ for a trailing slash, several sources or an existing directory', async () => {
    expect(await plan(['top.txt'], '/etc/top')).toEqual(['file /etc/top']);
    expect(await plan(['top.txt'], '/etc/')).toEqual(['file /etc/top.txt']);
    expect(await plan(['top.txt'], '/etc', { destIsDir: true })).toEqual(['file /etc/top.txt']);
    expect(await plan(['top.txt', 'link'], '/x')).toEqual(['file /x/top.txt', 'symlink /x/link']);
  });

  it('expands wildcards and honours ignore rules with exceptions', async () => {
    expect(await plan(['src/*.txt'], '/w')).toEqual(['file /w/a.txt']);
    expect(await plan(['src'], '/app', { ignore: ['**/*.log', 'src/sub', '!src/sub/c.txt'] })).toEqual([
      'dir /app',
      'file /app/a.txt',
      'dir /app/sub',
      'file /app/sub/c.txt',
    ]);
  });

  it('fails with NOT_FOUND for a missing or ignored source, naming the step', async () => {
    for (const [sources, ignore] of [
      [['nope.txt'], []],
      [['top.txt'], ['top.txt']],
    ] as const) {
      const err = await plan([...sources], '/', { ignore: [...ignore] }).catch((e: unknown) => e);
      expect(isGantryError(err, 'NOT_FOUND')).toBe(true);
      expect((err as Error).message).toMatch(/^Dockerfile:2: /);
    }
  });
});

describe('fingerprintEntries', () => {
  it('changes with content and mode, per destination path', async () => {
    const entries = await planCopy({
      root,
      sources: ['top.txt'],
      dest: '/t',
      destIsDir: false,
      destExists: false,
      subject: 's',
    });
    const before = await fingerprintEntries(entries);
    await chmod(join(root, 'top.txt'), 0o600);
    const [moded] = await planCopy({
      root,
      sources: ['top.txt'],
      dest: '/t',
      destIsDir: false,
      destExists: false,
      subject: 's',
    });
    const afterMode = await fingerprintEntries(moded ? [moded] : []);
    await writeFile(join(root, 'top.txt'), 'changed');
    const afterContent = await fingerprintEntries(moded ? [moded] : []);
    expect(Object.keys(before)).toEqual(['/t']);
    expect(afterMode['/t']).not.toBe(before['/t']);
    expect(afterContent['/t']).not.toBe(afterMode['/t']);
  });
});
