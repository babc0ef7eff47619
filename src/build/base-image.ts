/**
 * build/base-image: the images a build starts from or copies out of (FROM, COPY --from, `--build-context`
 * images), for one platform. An image is pulled with the copy engine into the store's OCI layout (only the
 * platform asked for) and read back from there; an index picks its platform's manifest. Images for the host
 * platform keep their plain name in the store, so `gantry run` and later builds find them; other platforms are
 * stored as `NAME@platform=os/arch`.
 */
import { readFile } from 'node:fs/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import {
  formatPlatform,
  hostPlatform,
  type ImageManifest,
  isIndex,
  type Platform,
  parseManifest,
  platformMatches,
} from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { PullPolicy } from '../run/index.js';
import type { LayerStore } from '../store/index.js';
import { openSource, parseTransportReference } from '../transports/index.js';
import { openOciLayoutDestination, openOciLayoutSource } from '../transports/oci-layout.js';
import type { ImageSource } from '../transports/types.js';
import type { Logger } from '../util/log.js';
import type { ImageConfig } from './config.js';
import type { StageState } from './types.js';

/** What names an image: a transport reference (registry name, `oci:DIR:REF`, ...) or an OCI layout entry. */
export type ImageSpec =
  | { kind: 'ref'; ref: string }
  | { kind: 'oci-layout'; dir: string; tag?: string; digest?: string };

export interface LoadImageOptions {
  store: LayerStore;
  registry: RegistryClient;
  logger: Logger;
  policy: PullPolicy;
  platform: Platform;
  /** Names the instruction or flag at fault in errors. */
  subject: string;
}

export interface LoadedImage {
  state: StageState;
  /** Digest of the platform's image manifest. */
  digest: string;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

function displayName(spec: ImageSpec): string {
  if (spec.kind === 'ref') return spec.ref;
  return `oci-layout://${spec.dir}${spec.tag ? `:${spec.tag}` : ''}${spec.digest ? `@${spec.digest}` : ''}`;
}

/** Opens an OCI layout entry by tag and/or digest (the digest must name an entry of index.json). */
async function openLayoutEntry(spec: Extract<ImageSpec, { kind: 'oci-layout' }>): Promise<ImageSource> {
  const name = displayName(spec);
  let ref = spec.tag;
  if (spec.digest !== undefined && ref === undefined) {
    const index = JSON.parse(await readFile(`${spec.dir}/index.json`, 'utf8').catch(() => '{}')) as {
      manifests?: { digest: string; annotations?: Record<string, string> }[];
    };
    const entries = (index.manifests ?? []).filter((m) => m.digest === spec.digest);
    if (entries.length === 0) {
      throw new GantryError('NOT_FOUND', `no entry ${spec.digest} in ${spec.dir}/index.json`, {
        subject: name,
      });
    }
    ref = entries.map((e) => e.annotations?.['org.opencontainers.image.ref.name']).find(Boolean);
  }
  const source = await openOciLayoutSource({ dir: spec.dir, ...(ref ? { ref } : {}), name });
  if (spec.digest !== undefined) {
    const top = await source.getManifest();
    if (top.digest !== spec.digest) {
      await source.close();
      throw new GantryError('DIGEST_MISMATCH', `${ref ?? 'the image'} is ${top.digest}, not ${spec.digest}`, {
        subject: name,
      });
    }
  }
  return source;
}

async function openStored(store: LayerStore, name: string): Promise<ImageSource | undefined> {
  try {
    return await openOciLayoutSource({ dir: store.imagesDir, ref: name, name: `store:${name}` });
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND') || isGantryError(err, 'INVALID_REFERENCE')) return undefined;
    throw err;
  }
}

interface StoredImage {
  digest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  /** The platform the image's config names. */
  platform: Platform;
}

/**
 * The platform's manifest of a stored image. An index must list the platform; a single image must be for it
 * when `strict`, else it answers whatever its platform (as BuildKit uses a single-platform base, warning).
 */
async function readForPlatform(
  source: ImageSource,
  store: LayerStore,
  platform: Platform,
  strict: boolean,
): Promise<StoredImage | undefined> {
  let raw = await source.getManifest();
  const top = parseManifest(raw.bytes, raw.mediaType, source.name).manifest;
  if (isIndex(top)) {
    const child = top.manifests.find((d) => platformMatches(platform, d.platform));
    if (!child) return undefined;
    raw = await source.getManifest(child.digest);
  }
  const manifest = parseManifest(raw.bytes, raw.mediaType, source.name).manifest as ImageManifest;
  if (manifest.config.size > MAX_CONFIG_BYTES) {
    throw new GantryError('MANIFEST_INVALID', `image config is ${manifest.config.size} bytes`, {
      subject: source.name,
    });
  }
  const config = JSON.parse(await readFile(store.blobPath(manifest.config.digest), 'utf8')) as ImageConfig;
  const own: Platform = {
    os: config.os,
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  if (strict && !isIndex(top) && !platformMatches(platform, own)) return undefined;
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

async function readStored(
  store: LayerStore,
  names: readonly string[],
  platform: Platform,
  strict: boolean,
): Promise<StoredImage | undefined> {
  for (const name of names) {
    const source = await openStored(store, name);
    if (!source) continue;
    try {
      const found = await readForPlatform(source, store, platform, strict);
      if (found) return found;
    } finally {
      await source.close();
    }
  }
  return undefined;
}

async function pull(spec: ImageSpec, storeName: string, o: LoadImageOptions): Promise<void> {
  const { copyImage } = await import('../copy/index.js');
  const source =
    spec.kind === 'ref'
      ? await openSource(parseTransportReference(spec.ref), { registry: o.registry })
      : await openLayoutEntry(spec);
  try {
    const destination = await openOciLayoutDestination({
      dir: o.store.imagesDir,
      ref: storeName,
      name: `store:${storeName}`,
    });
    const result = await copyImage(source, destination, {
      removeSignatures: true,
      platform: o.platform,
      logger: o.logger,
    });
    o.logger.info(`Pulled ${displayName(spec)} for ${formatPlatform(o.platform)} (${result.digest})`);
  } finally {
    await source.close();
  }
}

/**
 * The stage state of `spec`'s image for `o.platform`: from the store when `o.policy` allows, else pulled.
 * OCI layout entries are always copied again (cheaply: blobs the store has are skipped), since the layout
 * may have changed under the same tag.
 */
export async function loadImage(spec: ImageSpec, o: LoadImageOptions): Promise<LoadedImage> {
  const name = displayName(spec);
  const wanted = formatPlatform(o.platform);
  const host = platformMatches(hostPlatform(), o.platform) && !o.platform.variant;
  const storeName = host ? name : `${name}@platform=${wanted}`;
  const candidates = [...new Set([name, storeName])];
  const policy = spec.kind === 'oci-layout' ? 'always' : o.policy;
  let found = policy === 'always' ? undefined : await readStored(o.store, candidates, o.platform, true);
  if (!found && policy !== 'never') {
    try {
      await pull(spec, storeName, o);
      found = await readStored(o.store, [storeName], o.platform, false);
    } catch (err) {
      if (isGantryError(err, 'NO_MATCHING_PLATFORM')) {
        throw new GantryError('NO_MATCHING_PLATFORM', `${name} has no image for ${wanted}`, {
          subject: o.subject,
          cause: err,
        });
      }
      // A local image that cannot be pulled (say, built here with -t for another platform) is used as is.
      found = await readStored(o.store, candidates, o.platform, false);
      if (!found) throw err;
    }
  }
  if (!found && policy === 'never') found = await readStored(o.store, candidates, o.platform, false);
  if (!found) {
    throw new GantryError('NOT_FOUND', `image is not in the local store for ${wanted} (--pull never)`, {
      subject: name,
    });
  }
  if (!platformMatches(o.platform, found.platform)) {
    o.logger.warn(`${name} is an image for ${formatPlatform(found.platform)}, not ${wanted}: using it as is`);
  }
  const { manifest, config, digest } = found;
  const diffIds = config.rootfs?.diff_ids ?? [];
  return {
    digest,
    state: {
      config: { ...config, config: config.config ?? {}, history: config.history ?? [] },
      layers: manifest.layers.map((l, i) => ({
        digest: l.digest,
        diffId: diffIds[i] as string,
        size: l.size,
        mediaType: l.mediaType,
        path: o.store.blobPath(l.digest),
      })),
      key: digest,
    },
  };
}
