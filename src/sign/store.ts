/**
 * sign/store: `RegistrySignatureStore`, the SignatureStore over gantry's registry client. It lays out cosign's
 * tag-schema manifests (`sha256-<hex>.sig|.att`: an OCI image manifest whose layers are payloads with signature
 * annotations) and sigstore bundle referrers (cosign specs/BUNDLE_SPEC.md) exactly as cosign does; the client's
 * putManifest keeps the referrers fallback tag on registries without the referrers API.
 */
import { Readable } from 'node:stream';
import type { SerializedBundle } from '@sigstore/bundle';
import { GantryError, isGantryError } from '../errors/index.js';
import {
  type Descriptor,
  encodeManifest,
  type ImageManifest,
  isIndex,
  MediaType,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import { type RegistryClient, referrersTag } from '../registry/index.js';
import { BUNDLE_MEDIA_TYPE, BundleAnnotation } from './constants.js';
import type {
  BundleManifestOptions,
  LegacyLayer,
  LegacySuffix,
  SignatureStore,
  SignedImage,
  StoredBundle,
} from './types.js';

/** Signature payloads, envelopes and bundles are small; an SBOM attestation may reach a few MiB. */
const PAYLOAD_LIMIT = 64 * 1024 * 1024;
/** Listing artifact types a bundle referrer may show (see listBundles). */
const MAYBE_BUNDLE = new Set([BUNDLE_MEDIA_TYPE, MediaType.ociEmpty, undefined]);
/** The OCI empty config `{}` bundle referrers use. */
const EMPTY_CONFIG = Buffer.from('{}');

/** cosign's tag for an image's signatures or attestations, e.g. `sha256-<hex>.sig`. */
export function legacyTag(digest: string, suffix: LegacySuffix): string {
  return `${referrersTag(digest)}.${suffix}`;
}

export class RegistrySignatureStore implements SignatureStore {
  constructor(private readonly client: RegistryClient) {}

  async readLegacy(image: SignedImage, suffix: LegacySuffix): Promise<LegacyLayer[]> {
    const manifest = await this.legacyManifest(image, suffix);
    if (!manifest) return [];
    const layers: LegacyLayer[] = [];
    for (const layer of manifest.layers) {
      layers.push({
        mediaType: layer.mediaType,
        content: await this.readBlob(image, layer),
        annotations: { ...layer.annotations },
      });
    }
    return layers;
  }

  async appendLegacy(
    image: SignedImage,
    suffix: LegacySuffix,
    layers: readonly LegacyLayer[],
  ): Promise<string> {
    const existing = (await this.legacyManifest(image, suffix))?.layers ?? [];
    const all = [...existing];
    for (const layer of layers) {
      const descriptor: Descriptor = {
        mediaType: layer.mediaType,
        size: layer.content.length,
        digest: sha256Digest(layer.content),
        annotations: { ...layer.annotations },
      };
      // cosign appends only signatures that are not there yet (same payload and annotations).
      if (all.some((d) => d.digest === descriptor.digest && sameAnnotations(d, descriptor))) continue;
      await this.putBlob(image, descriptor, layer.content);
      all.push(descriptor);
    }
    const config = signatureConfig(all);
    const configDescriptor: Descriptor = {
      mediaType: MediaType.ociConfig,
      size: config.length,
      digest: sha256Digest(config),
    };
    await this.putBlob(image, configDescriptor, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: configDescriptor,
      layers: all,
    };
    const raw = rawManifest(manifest);
    await this.client.putManifest(image.repo, legacyTag(image.descriptor.digest, suffix), raw);
    return raw.digest;
  }

  async listBundles(image: SignedImage): Promise<StoredBundle[]> {
    // Listed unfiltered: cosign's fallback-tag entries carry the config type (empty) as artifactType, since
    // go-containerregistry ignores the manifest's; the manifest decides.
    const referrers = await this.client.listReferrers(image.repo, image.descriptor.digest);
    const bundles: StoredBundle[] = [];
    for (const descriptor of referrers) {
      if (!MAYBE_BUNDLE.has(descriptor.artifactType)) continue;
      const raw = await this.client.getManifest(image.repo, descriptor.digest);
      const { manifest } = parseManifest(raw.bytes, raw.mediaType, `${image.repo.repository}@${raw.digest}`);
      if (isIndex(manifest) || manifest.artifactType !== BUNDLE_MEDIA_TYPE) continue;
      const layer = manifest.layers.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
      if (!layer) continue;
      const bytes = await this.readBlob(image, layer);
      let bundle: SerializedBundle;
      try {
        bundle = JSON.parse(bytes.toString('utf8')) as SerializedBundle;
      } catch (cause) {
        throw new GantryError('MANIFEST_INVALID', 'sigstore bundle is not valid JSON', {
          subject: `${image.repo.registry}/${image.repo.repository}@${layer.digest}`,
          cause,
        });
      }
      const listed: Descriptor = { ...descriptor, artifactType: BUNDLE_MEDIA_TYPE };
      if (manifest.annotations) listed.annotations = manifest.annotations;
      bundles.push({ descriptor: listed, bundle });
    }
    return bundles;
  }

  async putBundle(
    image: SignedImage,
    bundle: SerializedBundle,
    options: BundleManifestOptions,
  ): Promise<Descriptor> {
    const bytes = Buffer.from(JSON.stringify(bundle));
    const layer: Descriptor = {
      mediaType: BUNDLE_MEDIA_TYPE,
      size: bytes.length,
      digest: sha256Digest(bytes),
    };
    layer.annotations = { [BundleAnnotation.title]: `${referrersTag(layer.digest)}.sigstore.json` };
    await this.putBlob(image, layer, bytes);
    const config: Descriptor = {
      mediaType: MediaType.ociEmpty,
      size: EMPTY_CONFIG.length,
      digest: sha256Digest(EMPTY_CONFIG),
    };
    await this.putBlob(image, config, EMPTY_CONFIG);
    const annotations: Record<string, string> = {
      [BundleAnnotation.content]: options.content,
      [BundleAnnotation.created]: rfc3339Seconds(options.created ?? new Date()),
    };
    if (options.predicateType) annotations[BundleAnnotation.predicateType] = options.predicateType;
    const { mediaType, digest, size } = image.descriptor;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: BUNDLE_MEDIA_TYPE,
      config,
      layers: [layer],
      subject: { mediaType, digest, size },
      annotations,
    };
    const raw = rawManifest(manifest);
    await this.client.putManifest(image.repo, raw.digest, raw);
    return {
      mediaType: raw.mediaType,
      digest: raw.digest,
      size: raw.bytes.length,
      artifactType: BUNDLE_MEDIA_TYPE,
      annotations,
    };
  }

  private async legacyManifest(image: SignedImage, suffix: LegacySuffix): Promise<ImageManifest | undefined> {
    const tag = legacyTag(image.descriptor.digest, suffix);
    let raw: RawManifest;
    try {
      raw = await this.client.getManifest(image.repo, tag);
    } catch (err) {
      if (isGantryError(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
    const subject = `${image.repo.registry}/${image.repo.repository}:${tag}`;
    const { manifest } = parseManifest(raw.bytes, raw.mediaType, subject);
    if (isIndex(manifest))
      throw new GantryError('MANIFEST_INVALID', 'expected an image manifest', { subject });
    return manifest;
  }

  private async readBlob(image: SignedImage, descriptor: Descriptor): Promise<Buffer> {
    const subject = `${image.repo.registry}/${image.repo.repository}@${descriptor.digest}`;
    if (descriptor.size > PAYLOAD_LIMIT) {
      throw new GantryError('SIZE_MISMATCH', `signature blob larger than ${PAYLOAD_LIMIT} bytes`, {
        subject,
      });
    }
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of await this.client.getBlob(image.repo, descriptor)) {
      length += (chunk as Buffer).length;
      if (length > descriptor.size) break;
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) {
      throw new GantryError('DIGEST_MISMATCH', 'signature blob does not match its descriptor', { subject });
    }
    return bytes;
  }

  private async putBlob(image: SignedImage, descriptor: Descriptor, bytes: Buffer): Promise<void> {
    if (await this.client.hasBlob(image.repo, descriptor.digest)) return;
    await this.client.uploadBlob(image.repo, descriptor, async (offset) =>
      Readable.from([bytes.subarray(offset)]),
    );
  }
}

/**
 * The config go-containerregistry writes for cosign's signature images: empty platform, one history entry and
 * one diff_id per layer (signature layers are stored uncompressed, so diff_id = digest).
 */
export function signatureConfig(layers: readonly Descriptor[]): Buffer {
  const zeroTime = '0001-01-01T00:00:00Z';
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zeroTime,
      history: layers.map(() => ({ created: zeroTime })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

function rawManifest(manifest: ImageManifest): RawManifest {
  const bytes = encodeManifest(manifest);
  return { bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) };
}

function sameAnnotations(a: Descriptor, b: Descriptor): boolean {
  const left = a.annotations ?? {};
  const right = b.annotations ?? {};
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((k) => left[k] === right[k]);
}

/** RFC 3339 in UTC without fractions, as cosign formats `org.opencontainers.image.created`. */
function rfc3339Seconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
