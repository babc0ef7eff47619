/**
 * build/base-image: the images a build starts from or copies out of (FROM, COPY --from, `--build-context`
 * images), for one platform. An image is pulled with the copy engine into the store's OCI layout (only the
 * platform asked for) and read back from there; an index picks its platform's manifest. Images for the host
 * platform keep their plain name in the store, so `gantry run` and later builds find them; other platforms are
 * stored as `NAME@platform=os/arch`.
 */
import { readFile } from 'node:fs/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import { formatPlatform, hostPlatform, type Platform, platformMatches } from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import { openStoredImage, pullIntoStore, readStoredImage, type StoredImage } from '../run/image.js';
import type { PullPolicy } from '../run/index.js';
import type { LayerStore } from '../store/index.js';
import { openSource, parseTransportReference } from '../transports/index.js';
import { openOciLayoutSource } from '../transports/oci-layout.js';
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

async function readStored(
  store: LayerStore,
  names: readonly string[],
  platform: Platform,
  strict: boolean,
): Promise<(StoredImage<ImageConfig> & { platform: Platform }) | undefined> {
  for (const name of names) {
    const source = await openStoredImage(store, name);
    if (!source) continue;
    try {
      const found = await readStoredImage<ImageConfig>(source, store, { platform, strict });
      if (found) return found;
    } finally {
      await source.close();
    }
  }
  return undefined;
}

async function pull(spec: ImageSpec, storeName: string, o: LoadImageOptions): Promise<void> {
  const source =
    spec.kind === 'ref'
      ? await openSource(parseTransportReference(spec.ref), { registry: o.registry })
      : await openLayoutEntry(spec);
  try {
    const digest = await pullIntoStore(o.store, source, storeName, {
      platform: o.platform,
      logger: o.logger,
    });
    o.logger.info(`Pulled ${displayName(spec)} for ${formatPlatform(o.platform)} (${digest})`);
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
