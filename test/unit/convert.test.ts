// Tests for OCI <-> Docker v2s2 manifest and index conversion: media types, untouched bytes, refusals, digests.
import { describe, expect, it } from 'vitest';
import { convertImageManifest, convertIndex, formatOf } from '../../src/copy/convert.js';
import {
  type Descriptor,
  encodeManifest,
  type ImageIndex,
  type ImageManifest,
  MediaType,
  type RawManifest,
  sha256Digest,
} from '../../src/oci/index.js';
import { thrown } from '../support/thrown.js';

const config: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest('config'), size: 6 };
const layer = (mediaType: string, name: string): Descriptor => ({
  mediaType,
  digest: sha256Digest(name),
  size: name.length,
});

function raw(m: ImageManifest | ImageIndex): RawManifest {
  const bytes = encodeManifest(m);
  return { bytes, mediaType: m.mediaType as string, digest: sha256Digest(bytes) };
}

function ociImage(layers: Descriptor[], extra: Partial<ImageManifest> = {}): ImageManifest {
  return { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers, ...extra };
}

describe('formatOf', () => {
  it.each([
    [MediaType.ociManifest, 'oci'],
    [MediaType.ociIndex, 'oci'],
    [MediaType.dockerManifest, 'v2s2'],
    [MediaType.dockerManifestList, 'v2s2'],
  ])('%s → %s', (mediaType, want) => {
    expect(formatOf(mediaType)).toBe(want);
  });
});

describe('convertImageManifest', () => {
  const layerCases: [string, string][] = [
    [MediaType.ociLayerGzip, MediaType.dockerLayerGzip],
    [MediaType.dockerLayerGzip, MediaType.dockerLayerGzip],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', MediaType.dockerForeignLayerGzip],
    [MediaType.ociLayerTar, 'application/vnd.docker.image.rootfs.diff.tar'],
  ];
  it.each(layerCases)('OCI → v2s2 maps layer %s to %s', (from, to) => {
    const m = ociImage([layer(from, 'l1')]);
    const out = convertImageManifest(raw(m), m, 'v2s2', 'src');
    expect(out.mediaType).toBe(MediaType.dockerManifest);
    expect(out.digest).toBe(sha256Digest(out.bytes));
    const parsed = JSON.parse(out.bytes.toString()) as ImageManifest;
    expect(parsed.mediaType).toBe(MediaType.dockerManifest);
    expect(parsed.config).toEqual({ ...config, mediaType: MediaType.dockerConfig });
    expect(parsed.layers).toEqual([{ ...layer(from, 'l1'), mediaType: to }]);
  });

  it('v2s2 → OCI maps config and layers, keeping digests, sizes and urls', () => {
    const foreign = { ...layer(MediaType.dockerForeignLayerGzip, 'f'), urls: ['https://example.com/f'] };
    const m: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { ...config, mediaType: MediaType.dockerConfig },
      layers: [
        layer(MediaType.dockerLayerGzip, 'a'),
        layer('application/vnd.docker.image.rootfs.diff.tar', 'b'),
        foreign,
      ],
    };
    const out = convertImageManifest(raw(m), m, 'oci', 'src');
    expect(out.mediaType).toBe(MediaType.ociManifest);
    expect(out.digest).toBe(sha256Digest(out.bytes));
    const parsed = JSON.parse(out.bytes.toString()) as ImageManifest;
    expect(parsed.config.mediaType).toBe(MediaType.ociConfig);
    expect(parsed.layers.map((l) => l.mediaType)).toEqual([
      MediaType.ociLayerGzip,
      MediaType.ociLayerTar,
      'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    ]);
    expect(parsed.layers.map((l) => [l.digest, l.size])).toEqual(m.layers.map((l) => [l.digest, l.size]));
    expect(parsed.layers[2]?.urls).toEqual(['https://example.com/f']);
  });

  it('OCI → v2s2 → OCI gives back an equivalent OCI manifest', () => {
    const m = ociImage([layer(MediaType.ociLayerGzip, 'a')]);
    const docker = convertImageManifest(raw(m), m, 'v2s2', 'src');
    const back = convertImageManifest(docker, JSON.parse(docker.bytes.toString()), 'oci', 'src');
    expect(JSON.parse(back.bytes.toString())).toEqual(m);
  });

  it.each([
    ['oci', ociImage([layer(MediaType.ociLayerZstd, 'z')])],
    [
      'v2s2',
      {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { ...config, mediaType: MediaType.dockerConfig },
        layers: [layer(MediaType.dockerLayerGzip, 'a')],
      } as ImageManifest,
    ],
  ] as const)('returns the same bytes when already %s', (to, m) => {
    // Whitespace that compact re-encoding would drop proves the original bytes are kept.
    const bytes = Buffer.from(JSON.stringify(m, null, 2));
    const input = { bytes, mediaType: m.mediaType as string, digest: sha256Digest(bytes) };
    expect(convertImageManifest(input, m, to, 'src')).toBe(input);
  });

  it('refuses a zstd layer for v2s2, naming the layer and the source', () => {
    const m = ociImage([layer(MediaType.ociLayerGzip, 'ok'), layer(MediaType.ociLayerZstd, 'zst')]);
    const err = thrown(() => convertImageManifest(raw(m), m, 'v2s2', 'oci:/tmp/x:v1'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(err.subject).toBe('oci:/tmp/x:v1');
    expect(err.message).toContain('oci:/tmp/x:v1');
    expect(err.message).toContain(sha256Digest('zst'));
    expect(err.message).toContain(MediaType.ociLayerZstd);
  });

  it.each([
    ['subject', { subject: { mediaType: MediaType.ociManifest, digest: sha256Digest('s'), size: 1 } }],
    ['artifactType', { artifactType: 'application/vnd.example.sbom' }],
  ] as const)('refuses an artifact with %s for v2s2', (_what, extra) => {
    const m = ociImage([layer(MediaType.ociLayerGzip, 'a')], extra);
    const err = thrown(() => convertImageManifest(raw(m), m, 'v2s2', 'docker://r/a:sig'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(err.subject).toBe('docker://r/a:sig');
    expect(err.message).toContain('docker://r/a:sig');
  });

  it('refuses an OCI manifest whose config is not an image config for v2s2', () => {
    const m = ociImage([layer(MediaType.ociLayerTar, 'a')], {
      config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: sha256Digest('h'), size: 1 },
    });
    const err = thrown(() => convertImageManifest(raw(m), m, 'v2s2', 'oci:/charts'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(err.message).toContain('application/vnd.cncf.helm.config.v1+json');
    expect(err.message).toContain('oci:/charts');
  });
});

describe('convertIndex', () => {
  const child = (mediaType: string, name: string, arch: string): Descriptor => ({
    mediaType,
    digest: sha256Digest(name),
    size: 100,
    platform: { os: 'linux', architecture: arch },
  });
  const ociIndex: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [child(MediaType.ociManifest, 'amd', 'amd64'), child(MediaType.ociManifest, 'arm', 'arm64')],
    annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
  };

  it('OCI → v2s2 points at the converted children and drops annotations', () => {
    const children = new Map(
      ociIndex.manifests.map((d) => [
        d.digest,
        { ...d, mediaType: MediaType.dockerManifest, digest: sha256Digest(`${d.digest}-docker`), size: 99 },
      ]),
    );
    const out = convertIndex(raw(ociIndex), ociIndex, 'v2s2', children);
    expect(out.mediaType).toBe(MediaType.dockerManifestList);
    expect(out.digest).toBe(sha256Digest(out.bytes));
    const parsed = JSON.parse(out.bytes.toString()) as ImageIndex;
    expect(parsed).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: ociIndex.manifests.map((d) => children.get(d.digest)),
    });
  });

  it('v2s2 → OCI keeps child order and platforms', () => {
    const list: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: [
        child(MediaType.dockerManifest, 'a', 'amd64'),
        child(MediaType.dockerManifest, 'b', 's390x'),
      ],
    };
    const children = new Map(
      list.manifests.map((d) => [
        d.digest,
        { ...d, mediaType: MediaType.ociManifest, digest: sha256Digest(`${d.digest}o`) },
      ]),
    );
    const out = convertIndex(raw(list), list, 'oci', children);
    const parsed = JSON.parse(out.bytes.toString()) as ImageIndex;
    expect(out.mediaType).toBe(MediaType.ociIndex);
    expect(out.digest).toBe(sha256Digest(out.bytes));
    expect(parsed.manifests.map((d) => d.platform?.architecture)).toEqual(['amd64', 's390x']);
    expect(parsed.manifests.map((d) => d.mediaType)).toEqual([MediaType.ociManifest, MediaType.ociManifest]);
  });

  it('returns the same bytes when the format matches and no child changed', () => {
    const bytes = Buffer.from(JSON.stringify(ociIndex, null, 2));
    const input = { bytes, mediaType: MediaType.ociIndex, digest: sha256Digest(bytes) };
    const same = new Map(ociIndex.manifests.map((d) => [d.digest, d]));
    expect(convertIndex(input, ociIndex, 'oci', same)).toBe(input);
    // Children that were not (re)written leave their entries as they are.
    expect(convertIndex(input, ociIndex, 'oci', new Map())).toBe(input);
  });

  it('rewrites a same-format index when a child digest changed', () => {
    const first = ociIndex.manifests[0] as Descriptor;
    const changed = new Map([[first.digest, { ...first, digest: sha256Digest('new'), size: 7 }]]);
    const out = convertIndex(raw(ociIndex), ociIndex, 'oci', changed);
    const parsed = JSON.parse(out.bytes.toString()) as ImageIndex;
    expect(parsed.manifests[0]?.digest).toBe(sha256Digest('new'));
    expect(parsed.manifests[1]).toEqual(ociIndex.manifests[1]);
    expect(parsed.annotations).toEqual(ociIndex.annotations);
    expect(out.digest).toBe(sha256Digest(out.bytes));
  });
});
