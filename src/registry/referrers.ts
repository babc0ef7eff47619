/**
 * registry/referrers: the pure part of OCI 1.1 referrers — the fallback tag schema (`sha256-<hex>` holding an
 * index of the manifests that name a subject) for registries without the referrers API. No I/O here.
 */
import {
  type Descriptor,
  digestAlgorithm,
  digestHex,
  type ImageIndex,
  isDigest,
  isIndex,
  type Manifest,
  MediaType,
  type RawManifest,
} from '../oci/index.js';

/** The fallback tag for a subject digest, e.g. `sha256-0123…`. */
export function referrersTag(subjectDigest: string): string {
  return `${digestAlgorithm(subjectDigest)}-${digestHex(subjectDigest)}`;
}

/** The subject a manifest points at, if any. */
export function subjectOf(manifest: Manifest): Descriptor | undefined {
  const subject = manifest.subject;
  return typeof subject === 'object' && subject !== null && isDigest(subject.digest) ? subject : undefined;
}

/** The descriptor a referrers listing shows for a manifest: its artifactType (or config type) and annotations. */
export function referrerDescriptor(raw: RawManifest, manifest: Manifest): Descriptor {
  const descriptor: Descriptor = { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
  // OCI 1.1: an image manifest without artifactType is listed under its config's media type.
  const artifactType = manifest.artifactType ?? (isIndex(manifest) ? undefined : manifest.config?.mediaType);
  if (artifactType) descriptor.artifactType = artifactType;
  if (manifest.annotations && Object.keys(manifest.annotations).length > 0)
    descriptor.annotations = manifest.annotations;
  return descriptor;
}

/** The fallback index with `descriptor` added (replacing an entry with the same digest); undefined if unchanged. */
export function withReferrer(
  existing: ImageIndex | undefined,
  descriptor: Descriptor,
): ImageIndex | undefined {
  const manifests = existing?.manifests ?? [];
  const same = manifests.find((d) => d.digest === descriptor.digest);
  if (same && JSON.stringify(same) === JSON.stringify(descriptor)) return undefined;
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [...manifests.filter((d) => d.digest !== descriptor.digest), descriptor],
  };
}

export function filterByArtifactType(
  descriptors: readonly Descriptor[],
  artifactType: string | undefined,
): Descriptor[] {
  return artifactType === undefined
    ? [...descriptors]
    : descriptors.filter((d) => d.artifactType === artifactType);
}
