/**
 * copy/convert: pure manifest conversion between OCI and Docker v2s2 media types (`--format`). The config and
 * layer bytes are unchanged (both formats share them); only media types in manifests differ, so converted
 * manifests get new digests and index entries are rewritten to point at the converted children.
 */
import { GantryError } from '../errors/index.js';
import {
  type Descriptor,
  encodeManifest,
  type ImageIndex,
  type ImageManifest,
  MediaType,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';

export type ManifestFormat = 'oci' | 'v2s2';

const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

// Docker v2s2 has gzip and uncompressed layer types (as in containers/image), but no zstd.
const LAYER_TO_DOCKER: Record<string, string> = {
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayerTar]: DOCKER_LAYER_TAR,
  [DOCKER_LAYER_TAR]: DOCKER_LAYER_TAR,
  [MediaType.dockerLayerGzip]: MediaType.dockerLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': MediaType.dockerForeignLayerGzip,
  [MediaType.dockerForeignLayerGzip]: MediaType.dockerForeignLayerGzip,
};

const LAYER_TO_OCI: Record<string, string> = {
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.dockerForeignLayerGzip]: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  [DOCKER_LAYER_TAR]: MediaType.ociLayerTar,
};

/** The format a manifest media type belongs to. */
export function formatOf(mediaType: string): ManifestFormat {
  return mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList
    ? 'v2s2'
    : 'oci';
}

function convertLayer(layer: Descriptor, to: ManifestFormat, subject: string): Descriptor {
  const table = to === 'v2s2' ? LAYER_TO_DOCKER : LAYER_TO_OCI;
  const mediaType = table[layer.mediaType] ?? (to === 'oci' ? layer.mediaType : undefined);
  if (!mediaType) {
    throw new GantryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `layer ${layer.digest} of type ${layer.mediaType} cannot be stored in a Docker v2s2 image (only gzip or uncompressed tar layers can)`,
      { subject },
    );
  }
  return { ...layer, mediaType };
}

/** Converts an image manifest; returns the original bytes untouched when it already has the format. */
export function convertImageManifest(
  raw: RawManifest,
  manifest: ImageManifest,
  to: ManifestFormat,
  subject: string,
): RawManifest {
  if (formatOf(raw.mediaType) === to) return raw;
  if (to === 'v2s2' && (manifest.subject || manifest.artifactType)) {
    throw new GantryError(
      'UNSUPPORTED_MEDIA_TYPE',
      'OCI artifacts (with subject or artifactType) cannot be converted to Docker v2s2',
      { subject },
    );
  }
  // A Docker image config is the OCI image config; any other config type (Helm charts, WASM, …) is an artifact.
  const sourceConfigType = manifest.config.mediaType;
  if (
    to === 'v2s2' &&
    sourceConfigType !== MediaType.ociConfig &&
    sourceConfigType !== MediaType.dockerConfig
  ) {
    throw new GantryError(
      'UNSUPPORTED_MEDIA_TYPE',
      `config of type ${sourceConfigType} is not an image config, so it cannot be converted to Docker v2s2`,
      { subject },
    );
  }
  const mediaType = to === 'v2s2' ? MediaType.dockerManifest : MediaType.ociManifest;
  const configType =
    to === 'v2s2'
      ? MediaType.dockerConfig
      : manifest.config.mediaType === MediaType.dockerConfig
        ? MediaType.ociConfig
        : manifest.config.mediaType;
  const converted: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: { ...manifest.config, mediaType: configType },
    layers: manifest.layers.map((layer) => convertLayer(layer, to, subject)),
  };
  if (to === 'oci' && manifest.annotations) converted.annotations = manifest.annotations;
  const bytes = encodeManifest(converted);
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}

/** Converts an index whose children were converted: `children` maps old child digests to new descriptors. */
export function convertIndex(
  raw: RawManifest,
  index: ImageIndex,
  to: ManifestFormat,
  children: Map<string, Descriptor>,
): RawManifest {
  // A child absent from `children` was not rewritten, so it keeps its entry as it is.
  const changed = index.manifests.some((d) => {
    const converted = children.get(d.digest);
    return converted !== undefined && converted.digest !== d.digest;
  });
  if (formatOf(raw.mediaType) === to && !changed) return raw;
  const mediaType = to === 'v2s2' ? MediaType.dockerManifestList : MediaType.ociIndex;
  const converted: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: index.manifests.map((d) => children.get(d.digest) ?? d),
  };
  if (to === 'oci' && index.annotations) converted.annotations = index.annotations;
  const bytes = encodeManifest(converted);
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}
