/**
 * inspect: what `gantry inspect` reports about an image, in skopeo's JSON shape (Name, Digest, RepoTags,
 * Created, DockerVersion, Labels, Architecture, Os, Layers, LayersData, Env) so scripts written for skopeo keep
 * working. Reads manifests and the config blob through any ImageSource.
 */
import { GantryError } from '../errors/index.js';
import {
  hostPlatform,
  type ImageManifest,
  isIndex,
  type Platform,
  parseManifest,
  platformMatches,
  type RawManifest,
} from '../oci/index.js';
import type { ImageSource } from '../transports/types.js';
import { readVerified } from '../util/verify-stream.js';

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  docker_version?: string;
  config?: { Labels?: Record<string, string> | null; Env?: string[] | null; [key: string]: unknown };
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export interface InspectOutput {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Created?: string;
  DockerVersion: string;
  Labels: Record<string, string> | null;
  Architecture: string;
  Os: string;
  Variant?: string;
  Layers: string[];
  LayersData: {
    MIMEType: string;
    Digest: string;
    Size: number;
    Annotations: Record<string, string> | null;
  }[];
  Env: string[] | null;
}

/** Largest config blob we read into memory; configs are small JSON documents. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Resolves an index to the image for `platform` (default: the host's), returning the image manifest. */
export async function resolveImage(
  source: ImageSource,
  platform: Platform = hostPlatform(),
): Promise<{ top: RawManifest; image: RawManifest; manifest: ImageManifest }> {
  const top = await source.getManifest();
  const parsed = parseManifest(top.bytes, top.mediaType, source.name);
  if (!isIndex(parsed.manifest)) return { top, image: top, manifest: parsed.manifest };
  const child = parsed.manifest.manifests.find((d) => platformMatches(platform, d.platform));
  if (!child) {
    throw new GantryError(
      'NO_MATCHING_PLATFORM',
      'no image for this platform in the index; use --raw or --platform',
      {
        subject: source.name,
      },
    );
  }
  const image = await source.getManifest(child.digest);
  const { manifest } = parseManifest(image.bytes, image.mediaType, source.name);
  if (isIndex(manifest)) {
    throw new GantryError('MANIFEST_INVALID', 'index entry points at another index', {
      subject: source.name,
    });
  }
  return { top, image, manifest };
}

/** Reads and verifies an image's config blob. */
export async function readConfig(
  source: ImageSource,
  manifest: ImageManifest,
): Promise<{ bytes: Buffer; config: ImageConfig }> {
  const descriptor = manifest.config;
  if (descriptor.size > MAX_CONFIG_BYTES) {
    throw new GantryError(
      'MANIFEST_INVALID',
      `config blob is ${descriptor.size} bytes, larger than any real config`,
      {
        subject: source.name,
      },
    );
  }
  const bytes = await readVerified(await source.getBlob(descriptor), {
    digest: descriptor.digest,
    size: descriptor.size,
    subject: source.name,
  });
  try {
    return { bytes, config: JSON.parse(bytes.toString('utf8')) as ImageConfig };
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', `config ${descriptor.digest} is not valid JSON`, {
      subject: source.name,
      cause,
    });
  }
}

export function describeImage(options: {
  name: string;
  digest: string;
  tags: string[];
  manifest: ImageManifest;
  config: ImageConfig;
}): InspectOutput {
  const { config, manifest } = options;
  const out: InspectOutput = {
    Name: options.name,
    Digest: options.digest,
    RepoTags: options.tags,
    DockerVersion: config.docker_version ?? '',
    Labels: config.config?.Labels ?? null,
    Architecture: config.architecture ?? '',
    Os: config.os ?? '',
    Layers: manifest.layers.map((l) => l.digest),
    LayersData: manifest.layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      Annotations: l.annotations ?? null,
    })),
    Env: config.config?.Env ?? null,
  };
  if (config.created) out.Created = config.created;
  if (config.variant) out.Variant = config.variant;
  return out;
}
