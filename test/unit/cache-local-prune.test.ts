// LocalCache pruning on a real directory: a bounded prune that fits only clears stale temp files (so the prune
// every build ends with reads no records), one over the bound evicts least recently used records and the blobs
// nobody uses any more, --all empties the cache; followers lists the steps cached after a parent.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalCache } from '../../src/cache/local.js';

const digest = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const PARENT = digest('parent');

let dir: string;
let cache: LocalCache;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-cache-prune-'));
  cache = await LocalCache.open(dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A record for step `name` whose layer blob holds `size` bytes, last used `ageSeconds` ago. */
async function step(name: string, size: number, ageSeconds: number): Promise<string> {
  const blob = digest(`blob:${name}`);
  await writeFile(cache.blobPath(blob), Buffer.alloc(size));
  const key = digest(`key:${name}`);
  await cache.put({
    key,
    inputs: { parent: PARENT, instruction: `RUN ${name}`, env: [], options: {} },
    layer: { digest: blob, diffId: blob, size, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
  });
  const then = new Date(Date.now() - ageSeconds * 1000);
  await utimes(join(cache.root, 'records', `${key.slice('sha256:'.length)}.json`), then, then);
  await utimes(cache.blobPath(blob), then, then);
  return key;
}

async function orphanBlob(name: string, ageSeconds: number): Promise<string> {
  const blob = digest(`orphan:${name}`);
  await writeFile(cache.blobPath(blob), Buffer.alloc(10));
  const then = new Date(Date.now() - ageSeconds * 1000);
  await utimes(cache.blobPath(blob), then, then);
  return blob;
}

const list = (sub: string) => readdir(join(cache.root, sub));

describe('LocalCache.prune', () => {
  it('within the bound keeps every record and blob and clears only stale temp files', async () => {
    await step('a', 100, 60);
    await orphanBlob('old', 3600);
    const stale = cache.tempPath('layer');
    await writeFile(stale, 'half a blob');
    const then = new Date(Date.now() - 3600_000);
    await utimes(stale, then, then);
    const fresh = cache.tempPath('layer');
    await writeFile(fresh, 'a blob being written');

    expect(await cache.prune({ maxBytes: 1000 })).toEqual({ records: 0, blobs: 0, bytes: 0 });
    expect(await list('records')).toHaveLength(1);
    expect(await list('blobs/sha256')).toHaveLength(2);
    expect(await list('tmp')).toEqual([fresh.split('/').at(-1)]);
  });

  it('over the bound evicts the least recently used records and unused blobs past the grace time', async () => {
    const oldest = await step('oldest', 400, 300);
    const middle = await step('middle', 400, 200);
    const newest = await step('newest', 400, 100);
    const orphan = await orphanBlob('old', 3600);
    const recent = await orphanBlob('recent', 0);

    const result = await cache.prune({ maxBytes: 900, graceMs: 60_000 });
    expect(result).toEqual({ records: 1, blobs: 2, bytes: 410 });
    expect(await cache.get(oldest)).toBeUndefined();
    expect(await cache.get(middle)).toBeDefined();
    expect(await cache.get(newest)).toBeDefined();
    expect(await cache.hasBlob(orphan)).toBe(false);
    expect(await cache.hasBlob(recent)).toBe(true);
    expect(await readdir(join(cache.root, 'by-parent', PARENT.slice('sha256:'.length)))).toHaveLength(2);
  });

  it('--all removes every record and blob', async () => {
    await step('a', 100, 10);
    await step('b', 100, 10);
    await orphanBlob('x', 0);
    expect(await cache.prune({ all: true, graceMs: 0 })).toEqual({ records: 2, blobs: 3, bytes: 210 });
    expect(await list('records')).toEqual([]);
    expect(await list('blobs/sha256')).toEqual([]);
  });
});

describe('LocalCache.followers', () => {
  it('lists the inputs of the steps cached after a parent', async () => {
    await step('a', 10, 10);
    await step('b', 10, 10);
    const followers = await cache.followers(PARENT);
    expect(followers.map((f) => f.instruction).sort()).toEqual(['RUN a', 'RUN b']);
    expect(await cache.followers(digest('other'))).toEqual([]);
  });
});
