/**
 * run/image: makes an image available in the local store — pulled with the copy engine into the store's OCI
 * layout under the name it was asked for — and reads its manifest and config back from there. The copy
 * engine, the transports and the registry client load only when an image is pulled: a run from the store
 * starts without them.
 */
import { readFile } from 'node:fs/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import {
  hostPlatform,
  type ImageManifest,
  isIndex,
  type Platform,
  parseManifest,
  platformMatches,
} from '../oci/index.js';
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
  os?: string;
  architecture?: string;
  variant?: string;
  config?: ImageRuntimeConfig;
  rootfs?: { diff_ids?: string[] };
}

export interface StoredImage<Config extends ImageConfigFile = ImageConfigFile> {
  digest: string;
  manifest: ImageManifest;
  config: Config;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** An image of the store's OCI layout by the name it was stored under, or undefined. */
export async function openStoredImage(store: LayerStore, name: string): Promise<ImageSource | undefined> {
  try {
    return await openOciLayoutSource({ dir: store.imagesDir, ref: name, name: `store:${name}` });
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND') || isGantryError(err, 'INVALID_REFERENCE')) return undefined;
    throw err;
  }
}

/** Copies `source` (the given platform's image of an index, or the host's) into the store as `storeName`. */
export async function pullIntoStore(
  store: LayerStore,
  source: ImageSource,
  storeName: string,
  o: { platform?: Platform; logger: Logger },
): Promise<string> {
  const { copyImage } = await import('../copy/index.js');
  const destination = await openOciLayoutDestination({
    dir: store.imagesDir,
    ref: storeName,
    name: `store:${storeName}`,
  });
  const result = await copyImage(source, destination, {
    removeSignatures: true,
    ...(o.platform ? { platform: o.platform } : {}),
    logger: o.logger,
  });
  return result.digest;
}

/**
 * The platform's image manifest and config of a stored image. An index must list the platform (else
 * undefined); a single image must be for it when `strict`, else it is returned whatever its platform.
 */
export async function readStoredImage<Config extends ImageConfigFile = ImageConfigFile>(
  source: ImageSource,
  store: LayerStore,
  o: { platform: Platform; strict: boolean },
): Promise<(StoredImage<Config> & { platform: Platform }) | undefined> {
  let raw = await source.getManifest();
  const top = parseManifest(raw.bytes, raw.mediaType, source.name).manifest;
  if (isIndex(top)) {
    const child = top.manifests.find((d) => platformMatches(o.platform, d.platform));
    if (!child) return undefined;
    raw = await source.getManifest(child.digest);
  }
  const manifest = parseManifest(raw.bytes, raw.mediaType, source.name).manifest as ImageManifest;
  if (manifest.config.size > MAX_CONFIG_BYTES) {
    throw new GantryError('MANIFEST_INVALID', `image config is ${manifest.config.size} bytes`, {
      subject: source.name,
    });
  }
  // The layout source verified the manifest; the config blob was digest-checked when it was pulled.
  const config = JSON.parse(await readFile(store.blobPath(manifest.config.digest), 'utf8')) as Config;
  const own: Platform = {
    os: config.os ?? '',
    architecture: config.architecture ?? '',
    ...(config.variant ? { variant: config.variant } : {}),
  };
  if (o.strict && !isIndex(top) && !platformMatches(o.platform, own)) return undefined;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new GantryError(
      'MANIFEST_INVALID',
      `the config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      { subject: source.name },
    );
  }
  return { digest: raw.digest, manifest, config, platform: own };
}

/** Pulls `name` (a transport reference: registry, oci:, oci-archive:, ...) into the store as `policy` says. */
export async function ensureImage(
  store: LayerStore,
  name: string,
  o: { policy: PullPolicy; registry: RegistryFactory; logger: Logger },
): Promise<StoredImage> {
  let stored = o.policy === 'always' ? undefined : await openStoredImage(store, name);
  if (!stored) {
    if (o.policy === 'never')
      throw new GantryError('NOT_FOUND', 'image is not in the local store (--pull never)', { subject: name });
    const { openSource, parseTransportReference } = await import('../transports/index.js');
    const source = await openSource(parseTransportReference(name), { registry: await o.registry() });
    try {
      const digest = await pullIntoStore(store, source, name, { logger: o.logger });
      o.logger.info(`Pulled ${name} (${digest})`);
    } finally {
      await source.close();
    }
    stored = await openStoredImage(store, name);
    if (!stored)
      throw new GantryError('INTERNAL', 'pulled image is missing from the store', { subject: name });
  }
  try {
    const platform = hostPlatform();
    const image = await readStoredImage(stored, store, { platform, strict: false });
    if (!image)
      throw new GantryError('NO_MATCHING_PLATFORM', `no image for ${platform.os}/${platform.architecture}`, {
        subject: stored.name,
      });
    return image;
  } finally {
    await stored.close();
  }
}
