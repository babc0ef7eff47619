/**
 * manifest: assembles a multi-platform index from per-platform images — the merge step after per-architecture
 * CI jobs. Each source image (or every image of a source index) is copied into the target by digest, its
 * platform read from its config, and the index is written last under the target's name.
 */
import { copyImage } from '../copy/index.js';
import { GantryError } from '../errors/index.js';
import { readConfig } from '../inspect/index.js';
import {
  type Descriptor,
  encodeManifest,
  formatPlatform,
  type ImageIndex,
  type ImageManifest,
  isIndex,
  MediaType,
  type Platform,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import type { ImageDestination, ImageSource } from '../transports/types.js';
import type { Logger } from '../util/log.js';

export interface CreateIndexOptions {
  sources: ImageSource[];
  /** Opens a fresh destination handle; one is used per copied image and one for the index. */
  openDestination: () => Promise<ImageDestination>;
  /** Index format; default OCI unless every source is a Docker manifest (then a Docker manifest list). */
  format?: 'oci' | 'v2s2';
  annotations?: Record<string, string>;
  concurrency?: number;
  logger?: Logger;
}

async function platformEntries(source: ImageSource): Promise<{ descriptor: Descriptor; copyAll: boolean }[]> {
  const top = await source.getManifest();
  const { manifest, mediaType } = parseManifest(top.bytes, top.mediaType, source.name);
  if (isIndex(manifest)) {
    return manifest.manifests.map((descriptor) => ({ descriptor, copyAll: true }));
  }
  const { config } = await readConfig(source, manifest as ImageManifest);
  if (!config.os || !config.architecture) {
    throw new GantryError(
      'MANIFEST_INVALID',
      'image config lacks os/architecture, so it cannot join an index',
      {
        subject: source.name,
      },
    );
  }
  const platform: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) platform.variant = config.variant;
  return [
    { descriptor: { mediaType, digest: top.digest, size: top.bytes.length, platform }, copyAll: false },
  ];
}

/** Builds the index bytes (pure): rejects two images for one platform, which no runtime could choose between. */
export function buildIndex(
  descriptors: Descriptor[],
  options: { format: 'oci' | 'v2s2'; annotations?: Record<string, string> },
): RawManifest {
  const seen = new Map<string, string>();
  for (const d of descriptors) {
    const key = d.platform ? formatPlatform(d.platform) : `unknown:${d.digest}`;
    const other = seen.get(key);
    if (other && other !== d.digest) {
      throw new GantryError('INVALID_ARGUMENT', `two images for platform ${key}: ${other} and ${d.digest}`);
    }
    seen.set(key, d.digest);
  }
  const unique = descriptors.filter((d, i) => descriptors.findIndex((e) => e.digest === d.digest) === i);
  const mediaType = options.format === 'v2s2' ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index: ImageIndex = { schemaVersion: 2, mediaType, manifests: unique };
  if (options.annotations && Object.keys(options.annotations).length > 0) {
    if (options.format === 'v2s2') {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'Docker manifest lists cannot carry annotations; use --format oci',
      );
    }
    index.annotations = options.annotations;
  }
  const bytes = encodeManifest(index);
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}

export async function createIndex(options: CreateIndexOptions): Promise<RawManifest> {
  const descriptors: Descriptor[] = [];
  for (const source of options.sources) {
    const entries = await platformEntries(source);
    for (const { descriptor } of entries) descriptors.push(descriptor);
    // Children go in by digest only; the index written below is what gets the target's tag.
    await copyImage(source, await options.openDestination(), {
      all: entries[0]?.copyAll ?? false,
      untagged: true,
      removeSignatures: true,
      concurrency: options.concurrency,
      logger: options.logger,
    });
  }
  const format =
    options.format ?? (descriptors.every((d) => d.mediaType === MediaType.dockerManifest) ? 'v2s2' : 'oci');
  if (format === 'v2s2' && descriptors.some((d) => d.mediaType !== MediaType.dockerManifest)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      'a Docker manifest list can only hold Docker v2s2 images; use --format oci',
    );
  }
  const index = buildIndex(descriptors, { format, annotations: options.annotations });
  const destination = await options.openDestination();
  try {
    await destination.putManifest(index, { primary: true });
    await destination.commit();
  } catch (err) {
    await destination.abort();
    throw err;
  }
  return index;
}
