/**
 * sync/bundle: the air-gap bundle — an OCI image layout holding many images (ref name `repository:tag`) plus
 * `gantry-bundle.json`, the list of what it holds with digests. `verifyBundle` re-hashes every manifest and blob
 * an image needs before anything is pushed from the bundle, so a damaged transfer is caught before it is tagged.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { asGantryError, GantryError } from '../errors/index.js';
import { digestFile } from '../native/index.js';
import { digestAlgorithm, digestHex, isIndex, parseManifest } from '../oci/index.js';

export const BUNDLE_INDEX = 'gantry-bundle.json';

export interface BundleEntry {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
}

export interface BundleIndex {
  version: 1;
  images: BundleEntry[];
}

export function bundleRefName(entry: { repository: string; tag: string }): string {
  return `${entry.repository}:${entry.tag}`;
}

export async function readBundleIndex(dir: string, options: { mustExist: boolean }): Promise<BundleIndex> {
  const file = join(dir, BUNDLE_INDEX);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !options.mustExist)
      return { version: 1, images: [] };
    throw asGantryError(
      err,
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'IO',
      'cannot read bundle index',
      file,
    );
  }
  let value: BundleIndex;
  try {
    value = JSON.parse(text) as BundleIndex;
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'bundle index is not valid JSON', { subject: file, cause });
  }
  if (value.version !== 1 || !Array.isArray(value.images)) {
    throw new GantryError('MANIFEST_INVALID', 'bundle index has an unknown format (expected version 1)', {
      subject: file,
    });
  }
  return value;
}

/** Writes the bundle index atomically, merging `updates` over what is there (by repository:tag). */
export async function writeBundleIndex(dir: string, images: BundleEntry[]): Promise<void> {
  const sorted = [...images].sort((a, b) => bundleRefName(a).localeCompare(bundleRefName(b)));
  const file = join(dir, BUNDLE_INDEX);
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify({ version: 1, images: sorted } satisfies BundleIndex, null, 2)}\n`);
  await rename(temp, file);
}

/** Hashes a blob file: sha256 in the native addon (off the main thread, so blobs hash on every core at once). */
async function hashFile(path: string, algorithm: string): Promise<{ digest: string; size: number }> {
  const { size } = await stat(path);
  if (algorithm === 'sha256') return { digest: await digestFile(path), size };
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return { digest: `${algorithm}:${hash.digest('hex')}`, size };
}

/**
 * Verifies one image of the bundle: its manifest (and children, for an index) and every blob they reference
 * hash to their digests and have their sizes. `verified` carries digests already checked across images.
 */
export async function verifyBundleImage(
  dir: string,
  entry: BundleEntry,
  verified: Set<string>,
): Promise<void> {
  const subject = `${dir} (${bundleRefName(entry)})`;
  const blobPath = (digest: string): string => join(dir, 'blobs', digestAlgorithm(digest), digestHex(digest));
  const check = async (descriptor: { digest: string; size?: number }): Promise<void> => {
    if (verified.has(descriptor.digest)) return;
    let actual: { digest: string; size: number };
    try {
      actual = await hashFile(blobPath(descriptor.digest), digestAlgorithm(descriptor.digest));
    } catch (err) {
      throw asGantryError(err, 'NOT_FOUND', `bundle lacks blob ${descriptor.digest}`, subject);
    }
    if (actual.digest !== descriptor.digest) {
      throw new GantryError(
        'DIGEST_MISMATCH',
        `blob ${descriptor.digest} is damaged: it hashes to ${actual.digest}`,
        {
          subject,
        },
      );
    }
    if (descriptor.size !== undefined && actual.size !== descriptor.size) {
      throw new GantryError(
        'SIZE_MISMATCH',
        `blob ${descriptor.digest} is ${actual.size} bytes, expected ${descriptor.size}`,
        { subject },
      );
    }
    verified.add(descriptor.digest);
  };
  // Manifests first (they are small and name everything else), then every blob in parallel.
  const blobs: { digest: string; size: number }[] = [];
  const walk = async (descriptor: { digest: string; size?: number; mediaType: string }): Promise<void> => {
    await check(descriptor);
    const bytes = await readFile(blobPath(descriptor.digest));
    const { manifest } = parseManifest(bytes, descriptor.mediaType, subject);
    if (isIndex(manifest)) {
      for (const child of manifest.manifests) await walk(child);
    } else {
      blobs.push(manifest.config, ...manifest.layers);
    }
  };
  await walk({ digest: entry.digest, mediaType: entry.mediaType });
  const limit = pLimit(availableParallelism());
  await Promise.all(blobs.map((blob) => limit(() => check(blob))));
}
