// Tests for manifest parsing (type detection, schema1 refusal, descriptor validation) and platform matching.
import { describe, expect, it } from 'vitest';
import {
  assertDigest,
  digestAlgorithm,
  digestHex,
  formatPlatform,
  isDigest,
  MediaType,
  type Platform,
  parseManifest,
  parsePlatform,
  platformMatches,
  sha256Digest,
} from '../../src/oci/index.js';
import { thrown } from '../support/thrown.js';

const desc = (mediaType: string) => ({ mediaType, digest: sha256Digest(mediaType), size: 3 });
const image = { schemaVersion: 2, config: desc(MediaType.ociConfig), layers: [desc(MediaType.ociLayerGzip)] };
const index = { schemaVersion: 2, manifests: [desc(MediaType.ociManifest)] };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('parseManifest: media type detection', () => {
  const cases: [string, unknown, string | undefined, string][] = [
    [
      'declared OCI manifest',
      { ...image, mediaType: MediaType.ociManifest },
      undefined,
      MediaType.ociManifest,
    ],
    [
      'declared wins over reported',
      { ...image, mediaType: MediaType.dockerManifest },
      MediaType.ociManifest,
      MediaType.dockerManifest,
    ],
    [
      'reported with parameters',
      image,
      `${MediaType.dockerManifest}; charset=utf-8`,
      MediaType.dockerManifest,
    ],
    ['no type, has config', image, undefined, MediaType.ociManifest],
    ['no type, has manifests', index, undefined, MediaType.ociIndex],
    ['generic JSON type, has manifests', index, 'application/json', MediaType.ociIndex],
    ['octet-stream, image', image, 'application/octet-stream', MediaType.ociManifest],
    [
      'declared Docker list',
      { ...index, mediaType: MediaType.dockerManifestList },
      undefined,
      MediaType.dockerManifestList,
    ],
    [
      'artifact manifest type with config',
      { ...image, mediaType: 'application/vnd.example+json' },
      undefined,
      'application/vnd.example+json',
    ],
  ];
  it.each(cases)('%s', (_name, value, reported, want) => {
    const { manifest, mediaType } = parseManifest(json(value), reported, 'src');
    expect(mediaType).toBe(want);
    expect(manifest).toEqual(value);
  });
});

describe('parseManifest: bad inputs', () => {
  const cases: [string, Buffer, string | undefined, string, string][] = [
    [
      'schemaVersion 1',
      json({ schemaVersion: 1, name: 'a', fsLayers: [] }),
      undefined,
      'UNSUPPORTED_MEDIA_TYPE',
      'schema 1',
    ],
    [
      'declared schema1',
      json({ ...image, mediaType: MediaType.dockerSchema1 }),
      undefined,
      'UNSUPPORTED_MEDIA_TYPE',
      'schema 1',
    ],
    [
      'reported signed schema1',
      json({ name: 'a' }),
      MediaType.dockerSchema1Signed,
      'UNSUPPORTED_MEDIA_TYPE',
      'schema 1',
    ],
    ['not JSON', Buffer.from('{nope'), undefined, 'MANIFEST_INVALID', 'not valid JSON'],
    ['JSON null', Buffer.from('null'), undefined, 'MANIFEST_INVALID', 'not a JSON object'],
    ['a JSON string', Buffer.from('"x"'), undefined, 'MANIFEST_INVALID', 'not a JSON object'],
    [
      'index without manifests',
      json({ schemaVersion: 2, mediaType: MediaType.ociIndex }),
      undefined,
      'MANIFEST_INVALID',
      '"manifests"',
    ],
    [
      'manifest without layers',
      json({ schemaVersion: 2, config: desc(MediaType.ociConfig) }),
      undefined,
      'MANIFEST_INVALID',
      '"layers"',
    ],
    [
      'manifest without config',
      json({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }),
      undefined,
      'MANIFEST_INVALID',
      'invalid descriptor',
    ],
    [
      'unknown type without config',
      json({ schemaVersion: 2, mediaType: 'text/plain' }),
      undefined,
      'UNSUPPORTED_MEDIA_TYPE',
      'text/plain',
    ],
    [
      'short digest',
      json({ ...image, layers: [{ ...desc('x'), digest: 'sha256:abc' }] }),
      undefined,
      'MANIFEST_INVALID',
      'sha256:abc',
    ],
    [
      'negative size',
      json({ ...image, layers: [{ ...desc('x'), size: -1 }] }),
      undefined,
      'MANIFEST_INVALID',
      'invalid descriptor',
    ],
    [
      'fractional size',
      json({ ...image, layers: [{ ...desc('x'), size: 1.5 }] }),
      undefined,
      'MANIFEST_INVALID',
      '1.5',
    ],
    [
      'size as string',
      json({ ...image, config: { ...desc('x'), size: '3' } }),
      undefined,
      'MANIFEST_INVALID',
      'invalid descriptor',
    ],
    [
      'missing mediaType',
      json({ ...index, manifests: [{ digest: sha256Digest('a'), size: 1 }] }),
      undefined,
      'MANIFEST_INVALID',
      'invalid descriptor',
    ],
    [
      'null layer',
      json({ ...image, layers: [null] }),
      undefined,
      'MANIFEST_INVALID',
      'invalid descriptor null',
    ],
  ];
  it.each(cases)('rejects %s', (_name, bytes, reported, code, fragment) => {
    const err = thrown(() => parseManifest(bytes, reported, 'docker://r.io/app:v1'));
    expect(err.code).toBe(code);
    expect(err.subject).toBe('docker://r.io/app:v1');
    expect(err.message).toContain('docker://r.io/app:v1');
    expect(err.message).toContain(fragment);
  });
});

describe('digests', () => {
  it.each([
    [sha256Digest('x'), true],
    [`sha512:${'a'.repeat(128)}`, true],
    [`sha256:${'a'.repeat(63)}`, false],
    [`sha256:${'A'.repeat(64)}`, false],
    [`sha384:${'a'.repeat(96)}`, false],
    ['', false],
  ])('isDigest(%s) = %s', (value, want) => {
    expect(isDigest(value)).toBe(want);
  });

  it('splits and asserts digests', () => {
    const d = sha256Digest('');
    expect(d).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestAlgorithm(d)).toBe('sha256');
    expect(digestHex(d)).toBe(d.slice(7));
    expect(assertDigest(d)).toBe(d);
    const err = thrown(() => assertDigest('sha256:zz', 'blob.json'));
    expect(err.code).toBe('INVALID_REFERENCE');
    expect(err.message).toBe('blob.json: not a valid digest: "sha256:zz"');
  });
});

describe('parsePlatform / formatPlatform', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
  ])('%s', (text, want) => {
    expect(parsePlatform(text)).toEqual(want);
    expect(formatPlatform(want)).toBe(text);
  });

  it.each(['linux', 'linux/', '/amd64', 'linux//v7', 'linux/arm/v7/extra', ''])(
    'rejects %j naming it',
    (text) => {
      const err = thrown(() => parsePlatform(text));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toContain(JSON.stringify(text));
    },
  );
});

describe('platformMatches', () => {
  const p = (text: string): Platform => parsePlatform(text);
  const cases: [string, Platform | undefined, boolean][] = [
    ['linux/amd64', p('linux/amd64'), true],
    ['linux/amd64', p('linux/arm64'), false],
    ['linux/amd64', p('windows/amd64'), false],
    ['linux/amd64', undefined, false],
    // arm64 without a variant is arm64/v8, both ways.
    ['linux/arm64', p('linux/arm64/v8'), true],
    ['linux/arm64/v8', p('linux/arm64'), true],
    ['linux/arm64/v8', p('linux/arm64/v8'), true],
    ['linux/arm/v7', p('linux/arm'), true],
    ['linux/arm/v6', p('linux/arm'), false],
    ['linux/arm/v6', p('linux/arm/v7'), false],
    // No wanted variant accepts any variant.
    ['linux/arm', p('linux/arm/v6'), true],
    ['linux/amd64/v3', p('linux/amd64'), false],
  ];
  it.each(cases)('want %s, have %j → %s', (want, have, expected) => {
    expect(platformMatches(p(want), have)).toBe(expected);
  });
});
