/**
 * build/export: hands a built image to the copy engine as an ImageSource over its blobs on disk (cache and
 * store), so every output — the store (`-t`), registry, oci, oci-archive, docker-archive — goes through the
 * same transports and verification as `gantry copy`, and a registry only receives the blobs it lacks. A
 * multi-platform build is exported as an OCI index over its per-platform images.
 */
import { createReadStream } from 'node:fs';
import { link, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { LocalCache } from '../cache/local.js';
import { type CopyResult, copyImage } from '../copy/index.js';
import { GantryError } from '../errors/index.js';
import { type Descriptor, type ImageIndex, MediaType, type RawManifest, sha256Digest } from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { LayerStore } from '../store/index.js';
import { openDestination, parseTransportReference } from '../transports/index.js';
import { openOciLayoutDestination } from '../transports/oci-layout.js';
import type { ImageDestination, ImageSource } from '../transports/types.js';
import type { Logger } from '../util/log.js';
import type { BuildResult } from './types.js';

/** A multi-platform build: an OCI index over one built image per platform. */
export interface BuiltIndex {
  index: { bytes: Buffer; digest: string };
  images: readonly BuildResult[];
}

export type BuiltOutput = BuildResult | BuiltIndex;

export function isBuiltIndex(output: BuiltOutput): output is BuiltIndex {
  return 'images' in output;
}

/** The index over per-platform builds, each entry carrying the platform its config names. */
export function buildIndex(
  images: readonly BuildResult[],
  annotations?: Readonly<Record<string, string>>,
): BuiltIndex {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((r) => ({
      mediaType: MediaType.ociManifest,
      digest: r.manifest.digest,
      size: r.manifest.bytes.length,
      platform: {
        os: r.config.os,
        architecture: r.config.architecture,
        ...(r.config.variant ? { variant: r.config.variant } : {}),
      },
    })),
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { index: { bytes, digest: sha256Digest(bytes) }, images };
}

/** Each blob of the build (configs and layers) by digest: the file holding it (cache or store). */
function blobPaths(output: BuiltOutput, cache: LocalCache): Map<string, string> {
  const paths = new Map<string, string>();
  for (const result of isBuiltIndex(output) ? output.images : [output]) {
    paths.set(result.configDigest, cache.blobPath(result.configDigest));
    for (const l of result.layers) paths.set(l.digest, l.path);
  }
  return paths;
}

export function builtImageSource(output: BuiltOutput, cache: LocalCache): ImageSource {
  const images = isBuiltIndex(output) ? output.images : [output];
  const paths = blobPaths(output, cache);
  const manifests = new Map<string, RawManifest>();
  for (const result of images) {
    manifests.set(result.manifest.digest, {
      bytes: result.manifest.bytes,
      mediaType: MediaType.ociManifest,
      digest: result.manifest.digest,
    });
  }
  const top: RawManifest = isBuiltIndex(output)
    ? { bytes: output.index.bytes, mediaType: MediaType.ociIndex, digest: output.index.digest }
    : (manifests.get(output.manifest.digest) as RawManifest);
  manifests.set(top.digest, top);
  return {
    name: 'build',
    async getManifest(digest?: string) {
      const raw = manifests.get(digest ?? top.digest);
      if (!raw) {
        throw new GantryError('NOT_FOUND', `manifest ${digest} is not part of the build`, {
          subject: 'build',
        });
      }
      return raw;
    },
    async getBlob(descriptor: Descriptor, options?: { offset?: number }): Promise<Readable> {
      const path = paths.get(descriptor.digest);
      if (!path)
        throw new GantryError('NOT_FOUND', `blob ${descriptor.digest} is not part of the build`, {
          subject: 'build',
        });
      // Layers lazily imported from a --cache-from image are fetched only when a destination lacks them.
      if (path === cache.blobPath(descriptor.digest)) await cache.ensureBlob(descriptor.digest);
      return createReadStream(path, { start: options?.offset ?? 0 });
    },
    async listAttachments() {
      return [];
    },
    async close() {},
  };
}

export interface ExportOptions {
  /** Names in the local store (`-t`), usable by `gantry run` and as FROM in later builds. */
  tags?: readonly string[];
  /** Transport references (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`, registry names). */
  destinations?: readonly string[];
  format?: 'oci' | 'docker';
  store: LayerStore;
  cache: LocalCache;
  registry: RegistryClient;
  logger: Logger;
}

/**
 * Hard-links the build's blobs into the store's image layout, so that a `-t` copy finds them there and skips
 * them instead of copying and re-hashing each one: the cache verified them when it wrote them, and it lives in
 * the same store. A blob that cannot be linked (not fetched from --cache-from yet, another filesystem, a
 * filesystem without hard links) is left to the copy. Returns the links made.
 */
async function linkBlobs(output: BuiltOutput, o: ExportOptions): Promise<string[]> {
  const made: string[] = [];
  for (const [digest, path] of blobPaths(output, o.cache)) {
    const target = o.store.blobPath(digest);
    if (target === path) continue;
    await mkdir(dirname(target), { recursive: true });
    const linked = await link(path, target).then(
      () => true,
      () => false,
    );
    if (linked) made.push(target);
  }
  return made;
}

/** Copies the image to every tag and destination; returns the digest each one got. */
export async function exportImage(result: BuiltOutput, o: ExportOptions): Promise<Map<string, CopyResult>> {
  const out = new Map<string, CopyResult>();
  const targets: { name: string; open: () => Promise<ImageDestination> }[] = [
    ...(o.tags ?? []).map((tag) => ({
      name: tag,
      open: () => openOciLayoutDestination({ dir: o.store.imagesDir, ref: tag, name: `store:${tag}` }),
    })),
    ...(o.destinations ?? []).map((ref) => ({
      name: ref,
      open: () => openDestination(parseTransportReference(ref), { registry: o.registry }),
    })),
  ];
  const linked = (o.tags ?? []).length > 0 ? await linkBlobs(result, o) : [];
  try {
    for (const t of targets) {
      const source = builtImageSource(result, o.cache);
      const destination = await t.open();
      const copied = await copyImage(source, destination, {
        logger: o.logger,
        ...(isBuiltIndex(result) ? { all: true } : {}),
        ...(o.format === 'docker' ? { format: 'v2s2' as const } : {}),
      });
      out.set(t.name, copied);
    }
  } catch (err) {
    // Until a tag names them, the linked blobs are litter in the store's layout (a failed copy removes the
    // blobs it wrote itself too).
    const tagged = (o.tags ?? []).some((tag) => out.has(tag));
    if (!tagged) await Promise.all(linked.map((path) => rm(path, { force: true })));
    throw err;
  }
  return out;
}
