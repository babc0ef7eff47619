/**
 * build/lower: an image's filesystem as the builder sees it — each layer unpacked once into the store (overlay
 * whiteouts, shared with `gantry run`) and looked up top-down without merging, plus a flattened copy for
 * COPY --from. Lookups never follow symlinks out of a layer directory.
 */
import { lstat, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GantryError } from '../errors/index.js';
import { unpackLayer } from '../layer/index.js';
import type { LayerStore } from '../store/index.js';

export interface BuiltLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  /** The blob on disk (store or cache). */
  path: string;
}

/** Unpacked directories of `layers`, base first, unpacking the ones the store lacks. */
export async function layerDirs(store: LayerStore, layers: readonly BuiltLayer[]): Promise<string[]> {
  return Promise.all(
    layers.map((layer) =>
      store.ensureLayer(layer.diffId, async (target) => {
        const result = await unpackLayer({
          source: layer.path,
          mediaType: layer.mediaType,
          target,
          whiteoutMode: 'overlay',
        });
        if (result.diffId !== layer.diffId) {
          throw new GantryError(
            'DIGEST_MISMATCH',
            `layer unpacks to ${result.diffId}, expected ${layer.diffId}`,
            {
              subject: layer.digest,
            },
          );
        }
      }),
    ),
  );
}

/** The topmost layer's entry for an absolute image path: undefined when absent or whited out. */
export async function lookup(dirs: readonly string[], path: string) {
  for (const dir of [...dirs].reverse()) {
    const s = await lstat(join(dir, path)).catch(() => undefined);
    if (!s) continue;
    // overlayfs whiteout: a 0/0 character device hides the path in lower layers.
    if (s.isCharacterDevice() && s.rdev === 0) return undefined;
    return s;
  }
  return undefined;
}

/** A small file's text from the image (e.g. /etc/passwd), or undefined. */
export async function readImageText(dirs: readonly string[], path: string): Promise<string | undefined> {
  const s = await lookup(dirs, path);
  if (!s?.isFile() || s.size > 4 * 1024 * 1024) return undefined;
  for (const dir of [...dirs].reverse()) {
    const here = await lstat(join(dir, path)).catch(() => undefined);
    if (here?.isFile()) return readFile(join(dir, path), 'utf8');
  }
  return undefined;
}

/** Unpacks `layers` in order into one fresh directory under `scratchRoot` (whiteouts applied). */
export async function flatten(scratchRoot: string, layers: readonly BuiltLayer[]): Promise<string> {
  const dir = await mkdtemp(join(scratchRoot, 'flat-'));
  for (const layer of layers) {
    await unpackLayer({ source: layer.path, mediaType: layer.mediaType, target: dir, whiteoutMode: 'apply' });
  }
  return dir;
}
