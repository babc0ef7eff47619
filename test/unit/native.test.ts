// Checks the Rust addon's digestFile and digestFiles against node:crypto on edge-case file sizes.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { digestFile, digestFiles, platformTriple } from '../../src/native/index.js';

describe('native digestFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gantry-native-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // 3 MiB + 7 crosses several 1 MiB read chunks and ends on a partial one.
  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['3 MiB + 7', 3 * 1024 * 1024 + 7],
  ])('matches node:crypto for %s', async (_name, size) => {
    const file = join(dir, `f-${size}`);
    await writeFile(file, randomBytes(size));
    const expected = `sha256:${createHash('sha256')
      .update(await readFile(file))
      .digest('hex')}`;
    expect(await digestFile(file)).toBe(expected);
  });

  it('knows the empty-file digest', async () => {
    const file = join(dir, 'empty');
    await writeFile(file, '');
    expect(await digestFile(file)).toBe(
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('rejects a missing file with an IO GantryError naming the path', async () => {
    const missing = join(dir, 'does-not-exist');
    const err = await digestFile(missing).catch((e: unknown) => e);
    expect(isGantryError(err, 'IO')).toBe(true);
    expect((err as Error).message).toContain(missing);
  });

  it('digests many files in one call, in order, like node:crypto', async () => {
    const paths: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 300; i++) {
      const file = join(dir, `many-${i}`);
      const bytes = randomBytes(i === 7 ? 600 * 1024 + 3 : i * 13);
      await writeFile(file, bytes);
      paths.push(file);
      expected.push(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    }
    expect(await digestFiles(paths)).toEqual(expected);
    expect(await digestFiles([])).toEqual([]);
  });

  it('rejects a batch with a missing file, naming it', async () => {
    const present = join(dir, 'present');
    await writeFile(present, 'x');
    const missing = join(dir, 'missing-in-batch');
    const err = await digestFiles([present, missing, present]).catch((e: unknown) => e);
    expect(isGantryError(err, 'IO')).toBe(true);
    expect((err as Error).message).toContain(missing);
  });

  it('finds the addon under the file name napi build gives it for this platform', () => {
    expect(
      existsSync(join(import.meta.dirname, '../../native', `gantry-native.${platformTriple()}.node`)),
    ).toBe(true);
  });
});
