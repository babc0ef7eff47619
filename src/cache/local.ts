/**
 * cache/local: the build cache on disk, under the store root shared with `gantry run` (`<store>/cache`):
 * `records/<hex>.json` (one per step key: its inputs and the layer it made), `by-parent/<hex>/<hex>` (which
 * keys followed a parent, for --explain-cache), `blobs/sha256/<hex>` (layer blobs) and `tmp/`. Every write is
 * a temporary file renamed into place, so concurrent builds and interrupted writes never expose half a record
 * or blob, and putting the same record twice is harmless. Record mtimes are the LRU clock for pruning.
 * Every build ends with a bounded prune, so that prune first only sums the blob sizes and reads the records
 * (the costly part on a long-lived cache) only when the blobs exceed the bound.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { asGantryError, GantryError } from '../errors/index.js';
import { assertDigest, digestHex } from '../oci/index.js';
import type { StepInputs } from './key.js';

export interface CachedLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

export interface CacheRecord {
  key: string;
  inputs: StepInputs;
  /** Absent for steps that changed nothing on disk. */
  layer?: CachedLayer;
}

/**
 * Blobs another place (a `--cache-from` image) can supply on demand: `get` finds a record whose blob is only
 * there, and `ensureBlob` fetches it into the cache the first time a step needs its bytes.
 */
export interface RemoteBlobs {
  has(digest: string): boolean;
  /** Writes the blob, digest-checked, to `file`. */
  fetch(digest: string, file: string): Promise<void>;
}

export interface PruneOptions {
  /** Remove every record (else only the least recently used beyond `maxBytes`). */
  all?: boolean;
  /** Keep blobs written less than this long ago, as a running build may not have recorded them yet. */
  graceMs?: number;
  maxBytes?: number;
}

export interface PruneResult {
  records: number;
  blobs: number;
  bytes: number;
}

/** 10 GiB unless GANTRY_CACHE_MAX_BYTES says otherwise. */
export function defaultCacheBound(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.GANTRY_CACHE_MAX_BYTES);
  return Number.isSafeInteger(value) && value > 0 ? value : 10 * 1024 ** 3;
}

const hexOf = (key: string) => digestHex(assertDigest(key, 'cache key'));

/** File operations in flight at once when scanning the cache: enough to keep libuv's threads busy. */
const SCAN_CONCURRENCY = 16;

/** `fn` over `items`, at most SCAN_CONCURRENCY at a time, results in order. */
function mapBounded<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(SCAN_CONCURRENCY);
  return Promise.all(items.map((item) => limit(() => fn(item))));
}

export class LocalCache {
  private readonly remotes: RemoteBlobs[] = [];
  private readonly fetching = new Map<string, Promise<string>>();
  private fetchedBlobs = 0;

  private constructor(readonly root: string) {}

  /** How many blobs this process fetched from remotes. */
  get fetched(): number {
    return this.fetchedBlobs;
  }

  /** Makes `remote`'s blobs count as available; they are fetched by `ensureBlob` when needed. */
  addRemote(remote: RemoteBlobs): void {
    this.remotes.push(remote);
  }

  /** Whether the blob is here or can be fetched from a remote. */
  async canGetBlob(digest: string): Promise<boolean> {
    return (await this.hasBlob(digest)) || this.remotes.some((r) => r.has(digest));
  }

  /** The blob's path, fetching it from a remote first when it is not here (once, however many ask). */
  async ensureBlob(digest: string): Promise<string> {
    if (await this.hasBlob(digest)) return this.blobPath(digest);
    let p = this.fetching.get(digest);
    if (!p) {
      p = this.fetchBlob(digest);
      this.fetching.set(digest, p);
      p.catch(() => this.fetching.delete(digest));
    }
    return p;
  }

  private async fetchBlob(digest: string): Promise<string> {
    const remote = this.remotes.find((r) => r.has(digest));
    if (!remote) throw new GantryError('NOT_FOUND', 'blob is not in the build cache', { subject: digest });
    const temp = this.tempPath('fetch');
    try {
      await remote.fetch(digest, temp);
      this.fetchedBlobs++;
      return await this.adoptBlob(temp, digest);
    } finally {
      await rm(temp, { force: true });
    }
  }

  static async open(storeRoot: string): Promise<LocalCache> {
    const cache = new LocalCache(join(storeRoot, 'cache'));
    try {
      for (const d of ['records', 'by-parent', 'blobs/sha256', 'tmp']) {
        await mkdir(join(cache.root, d), { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      throw asGantryError(err, 'IO', 'cannot create the build cache', cache.root);
    }
    return cache;
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  /** A fresh path under tmp/ for a file that will be renamed into the cache. */
  tempPath(prefix: string): string {
    return join(this.root, 'tmp', `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** Moves a finished blob file into place under its digest. */
  async adoptBlob(file: string, digest: string): Promise<string> {
    const target = this.blobPath(digest);
    await rename(file, target);
    return target;
  }

  async hasBlob(digest: string): Promise<boolean> {
    return stat(this.blobPath(digest)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** The record for `key` when its blob is here or a remote has it; touches it for LRU. */
  async get(key: string): Promise<CacheRecord | undefined> {
    const file = join(this.root, 'records', `${hexOf(key)}.json`);
    let record: CacheRecord;
    try {
      record = JSON.parse(await readFile(file, 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (record.key !== key) return undefined;
    if (record.layer && !(await this.canGetBlob(record.layer.digest))) return undefined;
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
    return record;
  }

  async put(record: CacheRecord): Promise<void> {
    const hex = hexOf(record.key);
    await writeAtomic(this, join(this.root, 'records', `${hex}.json`), JSON.stringify(record));
    const parentDir = join(this.root, 'by-parent', hexOf(record.inputs.parent));
    await mkdir(parentDir, { recursive: true });
    await writeFile(join(parentDir, hex), '');
  }

  /** The inputs of cached steps that followed `parent`, for explaining a miss. */
  async followers(parent: string): Promise<StepInputs[]> {
    const names = await readdir(join(this.root, 'by-parent', hexOf(parent))).catch(() => [] as string[]);
    const records = await mapBounded(names.slice(0, 50), (hex) => this.get(`sha256:${hex}`));
    return records.flatMap((record) => (record ? [record.inputs] : []));
  }

  /**
   * Removes records (all, or least recently used beyond the bound), blobs no record uses, and stale temp
   * files. A bounded prune whose blobs already fit within the bound only clears stale temp files: unused blobs
   * then wait for a prune that has to evict (or --all).
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    const result: PruneResult = { records: 0, blobs: 0, bytes: 0 };
    const grace = options.graceMs ?? 10 * 60 * 1000;
    const bound = options.all ? 0 : (options.maxBytes ?? defaultCacheBound());
    const blobs = await this.blobSizes();
    if (!options.all && blobs.reduce((sum, b) => sum + b.size, 0) <= bound) {
      await this.sweepTemp(grace);
      return result;
    }
    const recordsDir = join(this.root, 'records');
    const read = await mapBounded(await readdir(recordsDir), async (name) => {
      const file = join(recordsDir, name);
      try {
        const s = await stat(file);
        return { file, mtime: s.mtimeMs, record: JSON.parse(await readFile(file, 'utf8')) as CacheRecord };
      } catch {
        await rm(file, { force: true });
        return undefined;
      }
    });
    const records = read.filter((r) => r !== undefined).sort((a, b) => b.mtime - a.mtime);
    const kept = new Set<string>();
    const evicted: typeof records = [];
    let total = 0;
    for (const r of records) {
      const size = r.record.layer?.size ?? 0;
      if (!options.all && total + size <= bound) {
        total += size;
        if (r.record.layer) kept.add(r.record.layer.digest);
      } else evicted.push(r);
    }
    await mapBounded(evicted, async (r) => {
      await rm(r.file, { force: true });
      await rm(join(this.root, 'by-parent', hexOf(r.record.inputs.parent), hexOf(r.record.key)), {
        force: true,
      });
    });
    result.records = evicted.length;
    const now = Date.now();
    const unused = blobs.filter((b) => !kept.has(`sha256:${b.hex}`) && now - b.mtimeMs >= grace);
    await mapBounded(unused, (b) => rm(join(this.root, 'blobs', 'sha256', b.hex), { force: true }));
    result.blobs = unused.length;
    result.bytes = unused.reduce((sum, b) => sum + b.size, 0);
    await this.sweepTemp(grace);
    return result;
  }

  /** Every blob file with its size and mtime (a blob removed meanwhile is left out). */
  private async blobSizes(): Promise<{ hex: string; size: number; mtimeMs: number }[]> {
    const dir = join(this.root, 'blobs', 'sha256');
    const found = await mapBounded(await readdir(dir), async (hex) => {
      const s = await stat(join(dir, hex)).catch(() => undefined);
      return s ? { hex, size: s.size, mtimeMs: s.mtimeMs } : undefined;
    });
    return found.filter((b) => b !== undefined);
  }

  /** Removes leftovers of interrupted writes. */
  private async sweepTemp(grace: number): Promise<void> {
    const tmpDir = join(this.root, 'tmp');
    await mapBounded(await readdir(tmpDir), async (name) => {
      const s = await stat(join(tmpDir, name)).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs >= grace)
        await rm(join(tmpDir, name), { recursive: true, force: true });
    });
  }
}

async function writeAtomic(cache: LocalCache, file: string, data: string): Promise<void> {
  const temp = cache.tempPath('record');
  try {
    await writeFile(temp, data, { mode: 0o600 });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw new GantryError('IO', `cannot write cache record: ${(err as Error).message}`, {
      subject: file,
      cause: err,
    });
  }
}
