/**
 * layer: unpacking layer blobs into directories and creating layer blobs from directories, over the Rust
 * addon (native/src/layer), or for changes a rootless container wrote, the same writer in the gantry-sandbox
 * helper inside a user namespace (./userns.ts). Heavy work runs on libuv's pool; this module validates options
 * and maps failures to GantryError. See docs/layer-io.md.
 */
import { GantryError, isGantryError } from '../errors/index.js';
import { loadNative } from '../native/index.js';
import type { IdMaps } from '../sandbox/spec.js';
import { assertLevel, assertUnpackable, type LayerCompression, layerMediaType } from './media.js';
import { createLayerInNamespace } from './userns.js';

export type { LayerCompression } from './media.js';
export { assertUnpackable, layerMediaType } from './media.js';

export interface UnpackLayerOptions {
  /** Path of the layer blob. */
  source: string;
  /** The descriptor's media type; when given, non-tar layers (e.g. encrypted) are refused up front. */
  mediaType?: string;
  /** Existing directory to unpack into (layers are unpacked in order into one directory in `apply` mode). */
  target: string;
  /** `apply` (default): whiteouts delete; `overlay`: write overlayfs whiteouts for per-layer lowerdirs. */
  whiteoutMode?: 'apply' | 'overlay';
}

export interface UnpackLayerResult {
  /** Tar entries read (whiteouts included). */
  entries: number;
  /** Entries, or parts of entries (an xattr), that were not reproduced, with why. */
  skipped: { path: string; reason: string }[];
  /** sha256 of the uncompressed tar stream, to check against the image config's rootfs.diff_ids. */
  diffId: string;
  /** Entries whose uid/gid could not be set (no root, ids not mapped) and were recorded in `user.gantry.owner`. */
  ownersRecorded: number;
}

/**
 * Unpacks one layer blob (tar, tar+gzip or tar+zstd, detected from its magic bytes) into `target`.
 * Refuses (GantryError INVALID_ARGUMENT, naming the entry) anything that would write outside `target`:
 * absolute names, `..`, writes through symlinks, hard links leaving the target. A refused layer leaves the
 * entries before the bad one in `target`; callers unpack into scratch space and discard it on failure.
 */
export async function unpackLayer(options: UnpackLayerOptions): Promise<UnpackLayerResult> {
  if (options.mediaType !== undefined) assertUnpackable(options.mediaType, options.source);
  const native = loadNative();
  try {
    return await native.unpackLayer({
      source: options.source,
      target: options.target,
      whiteoutMode: options.whiteoutMode,
    });
  } catch (err) {
    throw nativeError(err, 'cannot unpack layer', options.source);
  }
}

export interface CreateLayerOptions {
  /** Directory of changes (an overlay upperdir), or the new tree when `base` is given. */
  changes: string;
  /** Base tree: the layer holds what differs between `base` and `changes`. */
  base?: string;
  /** Where the blob is written (atomically: a temporary file renamed into place). */
  outputPath: string;
  /** Default gzip. */
  compression?: LayerCompression;
  /** gzip 1–9 (default 6), zstd 1–22 (default 3). */
  level?: number;
  /** Clamp entry mtimes to this time (seconds since the epoch) for reproducible layers. */
  sourceDateEpoch?: number;
  /**
   * Owners to write for these entries instead of what the files say: how a caller that cannot chown (not
   * root; and symlinks take no xattrs) gives entries their owners. Paths are relative to `changes`.
   */
  owners?: readonly LayerOwner[];
  /**
   * Create the layer inside a user namespace (through the gantry-sandbox helper), for changes a rootless
   * container wrote: files then show the ids the container gave them, and every file is readable whatever
   * its mode. The blob is the same as without (one writer, native/src/layer).
   */
  userNamespace?: LayerUserNamespace;
}

export interface LayerUserNamespace {
  /** The container's id maps. */
  idMaps: IdMaps;
  /** Scratch path where the helper's spec is written (removed afterwards). */
  specFile: string;
}

export interface LayerOwner {
  /** Relative to `changes` (a leading `/` is allowed). */
  path: string;
  uid: number;
  gid: number;
}

export interface CreatedLayer {
  /** sha256 of the blob as written. */
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Blob size in bytes. */
  size: number;
  mediaType: string;
}

/** Turns a directory of changes (or a two-tree difference) into a compressed, hashed layer blob. */
export async function createLayer(options: CreateLayerOptions): Promise<CreatedLayer> {
  const compression = options.compression ?? 'gzip';
  assertLevel(compression, options.level);
  const epoch = options.sourceDateEpoch;
  if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) {
    throw new GantryError('INVALID_ARGUMENT', `sourceDateEpoch ${epoch} must be a non-negative integer`, {
      subject: 'sourceDateEpoch',
    });
  }
  for (const o of options.owners ?? []) {
    if (![o.uid, o.gid].every((id) => Number.isInteger(id) && id >= 0 && id <= 0xffffffff)) {
      throw new GantryError('INVALID_ARGUMENT', `owner ${o.uid}:${o.gid} is not a pair of 32-bit ids`, {
        subject: o.path,
      });
    }
  }
  const request = {
    changes: options.changes,
    base: options.base,
    outputPath: options.outputPath,
    compression,
    level: options.level,
    sourceDateEpoch: epoch,
    owners: options.owners,
  };
  try {
    const ns = options.userNamespace;
    const created = ns
      ? await createLayerInNamespace({ ...request, idMaps: ns.idMaps }, ns.specFile)
      : await loadNative().createLayer(request);
    return { ...created, mediaType: layerMediaType(compression) };
  } catch (err) {
    throw nativeError(err, 'cannot create layer', options.changes);
  }
}

/** The addon rejects bad input (refused or corrupt layers, bad options) with code InvalidArg; the rest is I/O. */
function nativeError(err: unknown, what: string, subject: string): GantryError {
  if (isGantryError(err)) return err;
  const detail = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code === 'InvalidArg' ? 'INVALID_ARGUMENT' : 'IO';
  return new GantryError(code, `${what}: ${detail}`, { subject, cause: err });
}
