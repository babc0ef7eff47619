// Tests for buildIndex, the pure step of `manifest create`: platform conflicts, dedup, formats, annotations.
import { describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/manifest/index.js';
import { type Descriptor, type ImageIndex, MediaType, sha256Digest } from '../../src/oci/index.js';
import { thrown } from '../support/thrown.js';

const image = (name: string, platform?: string): Descriptor => {
  const d: Descriptor = { mediaType: MediaType.ociManifest, digest: sha256Digest(name), size: 500 };
  if (platform) {
    const [os, architecture, variant] = platform.split('/') as [string, string, string?];
    d.platform = variant ? { os, architecture, variant } : { os, architecture };
  }
  return d;
};

describe('buildIndex', () => {
  it('builds an OCI index whose digest is the sha256 of its bytes', () => {
    const ds = [image('amd', 'linux/amd64'), image('arm', 'linux/arm64/v8')];
    const out = buildIndex(ds, { format: 'oci' });
    expect(out.mediaType).toBe(MediaType.ociIndex);
    expect(out.digest).toBe(sha256Digest(out.bytes));
    expect(JSON.parse(out.bytes.toString())).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: ds,
    });
  });

  it('builds a Docker manifest list for v2s2', () => {
    const ds = [{ ...image('amd', 'linux/amd64'), mediaType: MediaType.dockerManifest }];
    const out = buildIndex(ds, { format: 'v2s2' });
    expect(out.mediaType).toBe(MediaType.dockerManifestList);
    expect((JSON.parse(out.bytes.toString()) as ImageIndex).mediaType).toBe(MediaType.dockerManifestList);
  });

  it('keeps one entry when the same image is given twice, in first-seen order', () => {
    const ds = [image('arm', 'linux/arm64'), image('amd', 'linux/amd64'), image('arm', 'linux/arm64')];
    const parsed = JSON.parse(buildIndex(ds, { format: 'oci' }).bytes.toString()) as ImageIndex;
    expect(parsed.manifests.map((d) => d.digest)).toEqual([sha256Digest('arm'), sha256Digest('amd')]);
  });

  it('allows several images without a platform', () => {
    const parsed = JSON.parse(
      buildIndex([image('a'), image('b')], { format: 'oci' }).bytes.toString(),
    ) as ImageIndex;
    expect(parsed.manifests).toHaveLength(2);
  });

  it.each([
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
  ])('rejects two different images for %s, naming both digests', (a, b) => {
    const err = thrown(() => buildIndex([image('one', a), image('two', b)], { format: 'oci' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(a);
    expect(err.message).toContain(sha256Digest('one'));
    expect(err.message).toContain(sha256Digest('two'));
  });

  it('treats different variants as different platforms', () => {
    const ds = [image('v6', 'linux/arm/v6'), image('v7', 'linux/arm/v7')];
    expect(
      (JSON.parse(buildIndex(ds, { format: 'oci' }).bytes.toString()) as ImageIndex).manifests,
    ).toHaveLength(2);
  });

  it('writes annotations into an OCI index and omits empty ones', () => {
    const annotations = { 'org.opencontainers.image.source': 'https://example.com/repo' };
    const withA = JSON.parse(
      buildIndex([image('a', 'linux/amd64')], { format: 'oci', annotations }).bytes.toString(),
    );
    expect(withA.annotations).toEqual(annotations);
    const without = JSON.parse(
      buildIndex([image('a', 'linux/amd64')], { format: 'oci', annotations: {} }).bytes.toString(),
    );
    expect(without).not.toHaveProperty('annotations');
    // Empty annotations on a Docker list are not an error: there is nothing to lose.
    expect(buildIndex([image('a', 'linux/amd64')], { format: 'v2s2', annotations: {} }).mediaType).toBe(
      MediaType.dockerManifestList,
    );
  });

  it('rejects annotations on a Docker manifest list', () => {
    const err = thrown(() =>
      buildIndex([image('a', 'linux/amd64')], { format: 'v2s2', annotations: { a: 'b' } }),
    );
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('annotations');
    expect(err.message).toContain('--format oci');
  });
});
