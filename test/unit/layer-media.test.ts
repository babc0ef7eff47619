// Layer media types and compression levels: what unpackLayer accepts and what createLayer reports.
import { describe, expect, it } from 'vitest';
import { assertLevel, assertUnpackable, layerMediaType } from '../../src/layer/media.js';
import { thrown } from '../support/thrown.js';

describe('layer media types', () => {
  it.each([
    'application/vnd.oci.image.layer.v1.tar',
    'application/vnd.oci.image.layer.v1.tar+gzip',
    'application/vnd.oci.image.layer.v1.tar+zstd',
    'application/vnd.docker.image.rootfs.diff.tar.gzip',
    'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ])('unpacks %s', (mediaType) => {
    expect(() => assertUnpackable(mediaType, 'blob')).not.toThrow();
  });

  it.each([
    'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
    'application/vnd.oci.image.config.v1+json',
    'application/octet-stream',
  ])('refuses %s naming the blob', (mediaType) => {
    const err = thrown(() => assertUnpackable(mediaType, '/store/blob'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(err.subject).toBe('/store/blob');
  });

  it.each([
    ['gzip', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
    ['none', 'application/vnd.oci.image.layer.v1.tar'],
  ] as const)('names %s layers %s', (compression, mediaType) => {
    expect(layerMediaType(compression)).toBe(mediaType);
  });
});

describe('compression levels', () => {
  it.each([
    ['gzip', 1],
    ['gzip', 9],
    ['zstd', 19],
    ['zstd', 22],
    ['none', undefined],
  ] as const)('accepts %s level %s', (compression, level) => {
    expect(() => assertLevel(compression, level)).not.toThrow();
  });

  it.each([
    ['gzip', 0],
    ['gzip', 10],
    ['gzip', 6.5],
    ['zstd', 23],
    ['none', 1],
  ] as const)('refuses %s level %s', (compression, level) => {
    expect(thrown(() => assertLevel(compression, level)).code).toBe('INVALID_ARGUMENT');
  });
});
