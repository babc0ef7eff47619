/**
 * transports/oci-archive: the `oci-archive:FILE[:REF]` transport — a tar of an OCI layout. Reading extracts the
 * tar (streaming, refusing hostile member names) into a private temp dir and serves it with the layout source;
 * writing builds a layout in a temp dir and tars it to FILE atomically on commit. An existing FILE is replaced,
 * as skopeo does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractTarSafely, membersOfDirectory, writeTarAtomic } from './file-util.js';
import { openOciLayoutDestination, openOciLayoutSource } from './oci-layout.js';
import type { ImageDestination, ImageSource } from './types.js';

function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'gantry-oci-archive-'));
}

export async function openOciArchiveSource(opts: {
  file: string;
  ref?: string;
  name: string;
}): Promise<ImageSource> {
  const dir = await makeTempDir();
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await extractTarSafely(opts.file, dir, opts.name);
    return await openOciLayoutSource({ dir, ref: opts.ref, name: opts.name, onClose: cleanup });
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export async function openOciArchiveDestination(opts: {
  file: string;
  ref?: string;
  name: string;
}): Promise<ImageDestination> {
  const dir = await makeTempDir();
  const layout = await openOciLayoutDestination({ dir, ref: opts.ref, name: opts.name });
  const cleanup = () => rm(dir, { recursive: true, force: true });
  return {
    name: opts.name,
    supportedManifestTypes: layout.supportedManifestTypes,
    hasBlob: (descriptor, options) => layout.hasBlob(descriptor, options),
    putBlob: (descriptor, open) => layout.putBlob(descriptor, open),
    putManifest: (manifest, options) => layout.putManifest(manifest, options),
    async commit() {
      try {
        await layout.commit();
        await writeTarAtomic(opts.file, await membersOfDirectory(dir), opts.name);
      } finally {
        await cleanup();
      }
    },
    async abort() {
      await layout.abort();
      await cleanup();
    },
  };
}
