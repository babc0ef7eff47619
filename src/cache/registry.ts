/**
 * cache/registry: `--cache-to` / `--cache-from`. The cache of one build is a plain OCI image manifest under a
 * tag (so it works on registries without OCI 1.1 referrers or artifactType support): its config blob is JSON
 * holding the step records, its layers are the layer blobs those records name. Exporting goes through the copy
 * engine (a registry receives only blobs it lacks); importing writes the records into the local cache and
 * fetches each layer blob (digest-checked) only when the build needs it. Format: docs/cache-format.md.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { copyImage } from '../copy/index.js';
import { GantryError, isGantryError } from '../errors/index.js';
import {
  type Descriptor,
  type ImageManifest,
  MediaType,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import { openDestination, openSource, parseTransportReference } from '../transports/index.js';
import type { ImageSource } from '../transports/types.js';
import type { Logger } from '../util/log.js';
import type { CacheRecord, LocalCache } from './local.js';

export const CACHE_CONFIG_TYPE = 'application/vnd.gantry.build-cache.config.v1+json';
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

interface CacheConfig {
  version: 1;
  records: CacheRecord[];
}

/** Pushes the records (and their layer blobs) to `ref` as one cache manifest. */
export async function exportCache(
  records: readonly CacheRecord[],
  ref: string,
  o: { cache: LocalCache; registry: RegistryClient; logger: Logger },
): Promise<string> {
  const config: CacheConfig = { version: 1, records: [...records] };
  const configBytes = Buffer.from(JSON.stringify(config));
  const layers = new Map<string, Descriptor>();
  for (const r of records) {
    if (r.layer)
      layers.set(r.layer.digest, {
        mediaType: r.layer.mediaType,
        digest: r.layer.digest,
        size: r.layer.size,
      });
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: sha256Digest(configBytes), size: configBytes.length },
    layers: [...layers.values()],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const raw: RawManifest = { bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) };
  const source: ImageSource = {
    name: 'build cache',
    getManifest: async () => raw,
    getBlob: async (d: Descriptor, options?: { offset?: number }): Promise<Readable> => {
      if (d.digest === manifest.config.digest) {
        const { Readable } = await import('node:stream');
        return Readable.from([configBytes.subarray(options?.offset ?? 0)]);
      }
      // A layer imported lazily from a --cache-from image is fetched only if the destination lacks it.
      return createReadStream(await o.cache.ensureBlob(d.digest), { start: options?.offset ?? 0 });
    },
    listAttachments: async () => [],
    close: async () => undefined,
  };
  const destination = await openDestination(parseTransportReference(ref), { registry: o.registry });
  const result = await copyImage(source, destination, { logger: o.logger });
  return result.digest;
}

async function readAll(stream: Readable, limit: number, subject: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new GantryError('MANIFEST_INVALID', 'cache config is too large', { subject });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A `--cache-from` image whose records are in the local cache and whose layers are fetched on demand. */
export interface ImportedCache {
  /** Step records imported. */
  records: number;
  /** Layer blobs the cache image offers. */
  layers: number;
  /** Closes the connection to the cache image; later fetches fail. */
  close(): Promise<void>;
}

/**
 * Imports the cache at `ref` into the local cache: the step records now, each layer only when a step needs
 * its bytes (a later miss builds on it, a COPY --from reads it, or an output holds it), through
 * `LocalCache.ensureBlob`. A missing cache is not an error (the first build of a branch has none).
 */
export async function importCache(
  ref: string,
  o: { cache: LocalCache; registry: RegistryClient; logger: Logger },
): Promise<ImportedCache> {
  let source: ImageSource;
  let raw: RawManifest;
  try {
    source = await openSource(parseTransportReference(ref), { registry: o.registry });
    raw = await source.getManifest();
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND')) {
      o.logger.info(`no build cache at ${ref} yet`);
      return { records: 0, layers: 0, close: async () => undefined };
    }
    throw err;
  }
  try {
    const manifest = parseManifest(raw.bytes, raw.mediaType, ref).manifest as ImageManifest;
    if (manifest.config?.mediaType !== CACHE_CONFIG_TYPE) {
      throw new GantryError('MANIFEST_INVALID', 'not a gantry build cache', { subject: ref });
    }
    const configBytes = await readAll(await source.getBlob(manifest.config), MAX_CONFIG_BYTES, ref);
    if (sha256Digest(configBytes) !== manifest.config.digest) {
      throw new GantryError('DIGEST_MISMATCH', 'cache config does not match its digest', { subject: ref });
    }
    const config = JSON.parse(configBytes.toString('utf8')) as CacheConfig;
    const layers = new Map(manifest.layers.map((l) => [l.digest, l]));
    const open = source;
    o.cache.addRemote({
      has: (digest) => layers.has(digest),
      fetch: (digest, file) => fetchVerified(open, layers.get(digest) as Descriptor, file),
    });
    for (const record of config.records) await o.cache.put(record);
    return { records: config.records.length, layers: layers.size, close: () => open.close() };
  } catch (err) {
    await source.close();
    throw err;
  }
}

/** Streams one blob to `file`, failing unless it hashes to its digest. */
async function fetchVerified(source: ImageSource, layer: Descriptor, file: string): Promise<void> {
  const hash = createHash('sha256');
  const stream = await source.getBlob(layer);
  stream.on('data', (c: Buffer) => hash.update(c));
  await pipeline(stream, createWriteStream(file));
  if (`sha256:${hash.digest('hex')}` !== layer.digest) {
    throw new GantryError('DIGEST_MISMATCH', 'cache layer does not match its digest', {
      subject: layer.digest,
    });
  }
}
