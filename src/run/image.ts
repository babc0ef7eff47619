/**
 * run/image: makes an image available in the local store — pulled with the copy engine into the store's OCI
 * layout under the name it was asked for — and reads its manifest and config back from there. The copy
 * engine, the transports and the registry client load only when an image is pulled: a run from the store
 * starts without them.
 */
import { readFile } from 'node:fs/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import { hostPlatform, type ImageManifest, isIndex, parseManifest, platformMatches } from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { LayerStore } from '../store/index.js';
import { openOciLayoutDestination, openOciLayoutSource } from '../transports/oci-layout.js';
import type { ImageSource } from '../transports/types.js';
import type { Logger } from '../util/log.js';
import type { ImageRuntimeConfig } from './config.js';

export type PullPolicy = 'always' | 'missing' | 'never';

/** Makes the registry client for a pull; called only when something is pulled. */
export type RegistryFactory = () => Promise<RegistryClient>;

/** The parts of an OCI image config `gantry run` reads. */
export interface ImageConfigFile {
  config?: ImageRuntimeConfig;
  rootfs?: { diff_ids?: string[] };
}

export interface StoredImage {
  digest: string;
  manifest: ImageManifest;
  config: ImageConfigFile;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

async function openStored(store: LayerStore, name: string): Promise<ImageSource | undefined> {
  try {
    return await openOciLayoutSource({ dir: store.imagesDir, ref: name, name: `store:${name}` });
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND') || isGantryError(err, 'INVALID_REFERENCE')) return undefined;
    throw err;
  }
}

async function pull(
  store: LayerStore,
  name: string,
  registry: RegistryFactory,
  logger: Logger,
): Promise<void> {
  const [{ copyImage }, { openSource, parseTransportReference }] = await Promise.all([
    import('../copy/index.js'),
    import('../transports/index.js'),
  ]);
  const source = await openSource(parseTransportReference(name), { registry: await registry() });
  try {
    const destination = await openOciLayoutDestination({
      dir: store.imagesDir,
      ref: name,
      name: `store:${name}`,
    });
    const result = await copyImage(source, destination, { removeSignatures: true, logger });
    logger.info(`Pulled ${name} (${result.digest})`);
  } finally {
    await source.close();
  }
}

async function readImage(source: ImageSource, store: LayerStore): Promise<StoredImage> {
  let raw = await source.getManifest();
  const top = parseManifest(raw.bytes, raw.mediaType, source.name).manifest;
  if (isIndex(top)) {
    const want = hostPlatform();
    const child = top.manifests.find((d) => platformMatches(want, d.platform));
    if (!child)
      throw new GantryError('NO_MATCHING_PLATFORM', `no image for ${want.os}/${want.architecture}`, {
        subject: source.name,
      });
    raw = await source.getManifest(child.digest);
  }
  const manifest = parseManifest(raw.bytes, raw.mediaType, source.name).manifest as ImageManifest;
  if (manifest.config.size > MAX_CONFIG_BYTES) {
    throw new GantryError('MANIFEST_INVALID', `image config is ${manifest.config.size} bytes`, {
      subject: source.name,
    });
  }
  // The layout source verified the manifest; the config blob was digest-checked when it was pulled.
  const config = JSON.parse(
    await readFile(store.blobPath(manifest.config.digest), 'utf8'),
  ) as ImageConfigFile;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new GantryError(
      'MANIFEST_INVALID',
      `the config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      {
        subject: source.name,
      },
    );
  }
  return { digest: raw.digest, manifest, config };
}

/** Pulls `name` (a transport reference: registry, oci:, oci-archive:, ...) into the store as `policy` says. */
export async function ensureImage(
  store: LayerStore,
  name: string,
  o: { policy: PullPolicy; registry: RegistryFactory; logger: Logger },
): Promise<StoredImage> {
  let stored = o.policy === 'always' ? undefined : await openStored(store, name);
  if (!stored) {
    if (o.policy === 'never')
      throw new GantryError('NOT_FOUND', 'image is not in the local store (--pull never)', { subject: name });
    await pull(store, name, o.registry, o.logger);
    stored = await openStored(store, name);
    if (!stored)
      throw new GantryError('INTERNAL', 'pulled image is missing from the store', { subject: name });
  }
  try {
    return await readImage(stored, store);
  } finally {
    await stored.close();
  }
}
