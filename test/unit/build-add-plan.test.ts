// COPY planning for the sources build/add-* adds to: --parents (paths kept below the context or a /./ pivot,
// shared parents listed once, ignore rules), `toDir` when heredocs or URLs make several sources, and the
// `match` marker ADD uses to pick the archives it extracts.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planCopy } from '../../src/build/copy-plan.js';
import { createIgnoreMatcher } from '../../src/dockerfile/index.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gantry-add-plan-'));
  await mkdir(join(root, 'a', 'b'), { recursive: true });
  await writeFile(join(root, 'a', 'b', 'one.txt'), '1');
  await writeFile(join(root, 'a', 'b', 'two.txt'), '2');
  await writeFile(join(root, 'a', 'b', 'skip.log'), 's');
  await writeFile(join(root, 'top.txt'), 't');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dests = async (sources: string[], dest: string, extra: { ignore?: string[]; toDir?: boolean } = {}) =>
  (
    await planCopy({
      root,
      sources,
      dest,
      destIsDir: false,
      destExists: false,
      subject: 'Dockerfile:2',
      ...(extra.ignore ? { ignore: createIgnoreMatcher(extra.ignore) } : {}),
      ...(extra.toDir ? { toDir: true } : {}),
      parents: !extra.toDir,
    })
  ).map((e) => `${e.dest} ${e.type}${e.match ? ' match' : ''}`);

describe('planCopy --parents', () => {
  it('keeps paths below the context, listing shared parents once', async () => {
    expect(await dests(['a/b/one.txt', 'a/b/two.txt', 'top.txt'], '/out/')).toEqual([
      '/out/a dir',
      '/out/a/b dir',
      '/out/a/b/one.txt file match',
      '/out/a/b/two.txt file match',
      '/out/top.txt file match',
    ]);
  });

  it('keeps paths below a /./ pivot, with wildcards and ignore rules', async () => {
    expect(await dests(['a/./b/*'], '/out', { ignore: ['**/*.log'] })).toEqual([
      '/out/b dir',
      '/out/b/one.txt file match',
      '/out/b/two.txt file match',
    ]);
  });

  it('copies a directory match with its contents under its own path', async () => {
    expect(await dests(['a/b'], '/o/')).toEqual([
      '/o/a dir',
      '/o/a/b dir match',
      '/o/a/b/one.txt file',
      '/o/a/b/skip.log file',
      '/o/a/b/two.txt file',
    ]);
  });
});

describe('planCopy with other sources beside the files', () => {
  it('puts a single file into dest/ when toDir says there are several sources', async () => {
    expect(await dests(['top.txt'], '/etc/x', { toDir: true })).toEqual(['/etc/x/top.txt file match']);
  });
});
