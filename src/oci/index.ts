/**
 * oci: the value model shared by every transport — media types, descriptors, manifests, indexes, platforms and
 * digests. Pure functions only: nothing here does I/O.
 */
import { createHash } from 'node:crypto';
import { GantryError } from '../errors/index.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Every manifest type gantry can read, in order of preference, for Accept headers. */
export const ACCEPTED_MANIFEST_TYPES: readonly string[] = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
];

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type Manifest = ImageManifest | ImageIndex;

/** A manifest as stored: its exact bytes (digests cover bytes, not JSON values), type and digest. */
export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isImageManifestType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function assertDigest(value: string, subject?: string): string {
  if (!isDigest(value)) {
    throw new GantryError('INVALID_REFERENCE', `not a valid digest: ${JSON.stringify(value)}`, { subject });
  }
  return value;
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Hex part of a digest, e.g. for blob paths in an OCI layout. */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestAlgorithm(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

/**
 * Determines a manifest's media type from its bytes, falling back to the type a server or file reported.
 * Rejects Docker schema1 with a clear error: it is deprecated and cannot carry content-addressed configs.
 */
export function parseManifest(
  bytes: Buffer,
  reportedType: string | undefined,
  subject: string,
): {
  manifest: Manifest;
  mediaType: string;
} {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'manifest is not valid JSON', { subject, cause });
  }
  if (typeof value !== 'object' || value === null) {
    throw new GantryError('MANIFEST_INVALID', 'manifest is not a JSON object', { subject });
  }
  const obj = value as Record<string, unknown>;
  const declared = typeof obj.mediaType === 'string' ? obj.mediaType : undefined;
  const reported = reportedType?.split(';')[0]?.trim();
  if (
    obj.schemaVersion === 1 ||
    declared === MediaType.dockerSchema1 ||
    declared === MediaType.dockerSchema1Signed ||
    reported === MediaType.dockerSchema1 ||
    reported === MediaType.dockerSchema1Signed
  ) {
    throw new GantryError(
      'UNSUPPORTED_MEDIA_TYPE',
      'Docker schema 1 manifests are not supported (deprecated since 2017); rebuild or re-push the image with a current tool',
      { subject },
    );
  }
  let mediaType = declared ?? reported;
  if (!mediaType || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
    mediaType = Array.isArray(obj.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  }
  if (isIndexType(mediaType)) {
    if (!Array.isArray(obj.manifests)) {
      throw new GantryError('MANIFEST_INVALID', 'index has no "manifests" array', { subject });
    }
    for (const d of obj.manifests) validateDescriptor(d, subject);
  } else if (isImageManifestType(mediaType) || obj.config !== undefined) {
    validateDescriptor(obj.config, subject);
    if (!Array.isArray(obj.layers)) {
      throw new GantryError('MANIFEST_INVALID', 'manifest has no "layers" array', { subject });
    }
    for (const d of obj.layers) validateDescriptor(d, subject);
  } else {
    throw new GantryError('UNSUPPORTED_MEDIA_TYPE', `unsupported manifest media type ${mediaType}`, {
      subject,
    });
  }
  return { manifest: obj as unknown as Manifest, mediaType };
}

function validateDescriptor(value: unknown, subject: string): asserts value is Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.digest !== 'string' ||
    !isDigest(d.digest) ||
    typeof d.size !== 'number' ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0 ||
    typeof d.mediaType !== 'string'
  ) {
    throw new GantryError('MANIFEST_INVALID', `invalid descriptor ${JSON.stringify(value)}`, { subject });
  }
}

export function isIndex(m: Manifest): m is ImageIndex {
  return Array.isArray((m as ImageIndex).manifests);
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `platform must be os/arch[/variant], got ${JSON.stringify(text)}`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Default variants as containerd normalises them, so linux/arm64 matches linux/arm64/v8. */
function normalizedVariant(p: Platform): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  if (p.architecture === 'arm') return 'v7';
  return undefined;
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  return want.variant === undefined || normalizedVariant(want) === normalizedVariant(have);
}

/** The platform of the machine gantry runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  return { os: 'linux', architecture: archMap[process.arch] ?? process.arch };
}

/** Serialises a manifest the way registries and skopeo expect to read it (compact JSON). */
export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m));
}
