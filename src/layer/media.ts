/**
 * layer/media: which layer media types gantry can unpack and which one a created layer gets. Pure.
 */
import { GantryError } from '../errors/index.js';
import { MediaType } from '../oci/index.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

// Media types whose blobs are a tar stream, possibly compressed. The addon detects the compression from the
// blob's magic bytes, so a Docker "tar.gzip" layer that is really plain tar still unpacks.
const UNPACKABLE = new Set<string>([
  MediaType.ociLayerTar,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** Throws UNSUPPORTED_MEDIA_TYPE for blobs that are not (compressed) tar layers, e.g. encrypted layers. */
export function assertUnpackable(mediaType: string, subject: string): void {
  if (!UNPACKABLE.has(mediaType)) {
    throw new GantryError('UNSUPPORTED_MEDIA_TYPE', `cannot unpack a layer of media type ${mediaType}`, {
      subject,
    });
  }
}

export function layerMediaType(compression: LayerCompression): string {
  if (compression === 'gzip') return MediaType.ociLayerGzip;
  if (compression === 'zstd') return MediaType.ociLayerZstd;
  return MediaType.ociLayerTar;
}

const LEVELS: Record<LayerCompression, [number, number] | undefined> = {
  gzip: [1, 9],
  zstd: [1, 22],
  none: undefined,
};

/** Checks a compression level against the algorithm's range. */
export function assertLevel(compression: LayerCompression, level: number | undefined): void {
  if (level === undefined) return;
  const range = LEVELS[compression];
  if (!range || !Number.isInteger(level) || level < range[0] || level > range[1]) {
    const allowed = range ? `an integer from ${range[0]} to ${range[1]}` : 'not set for uncompressed layers';
    throw new GantryError('INVALID_ARGUMENT', `compression level ${level} must be ${allowed}`, {
      subject: `${compression} level`,
    });
  }
}
