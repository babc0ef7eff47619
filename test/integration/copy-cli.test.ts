/**
 * `gantry copy` end to end, through the real CLI, against real registries, with skopeo and umoci as oracles:
 * what gantry writes they read, what they write gantry reads, and digests survive byte for byte.
 */
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, sha256Digest } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import {
  type FixtureImage,
  makeImageLayout,
  makeIndexLayout,
  pushFixture,
  skopeo,
} from '../harness/fixtures.js';
import { run } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let registry: TestRegistry;
let work: string;
let image: FixtureImage;
let index: FixtureImage;
let imageRef: string;
let indexRef: string;

async function skopeoDigest(ref: string): Promise<string> {
  const { stdout } = await skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
  return sha256Digest(Buffer.from(stdout));
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-copy-'));
  image = await makeImageLayout({
    dir: join(work, 'image'),
    tag: 'v1',
    busybox: true,
    layers: 3,
    layerSize: 256 * 1024,
  });
  index = await makeIndexLayout({
    dir: join(work, 'index'),
    tag: 'multi',
    platforms: ['linux/amd64', 'linux/arm64'],
  });
  imageRef = await pushFixture(image, registry, 'src/image:v1');
  indexRef = await pushFixture(index, registry, 'src/index:multi');
});

afterAll(async () => {
  await registry?.stop();
});

describe('registry to registry', () => {
  it('keeps the digest skopeo reports, and a second copy transfers nothing', async () => {
    const dest = `docker://${registry.host}/dst/image:v1`;
    const first = await gantryOk(['copy', '--json', `docker://${imageRef}`, dest]);
    const result = JSON.parse(first.stdout) as { digest: string; blobs: { copied: number; skipped: number } };
    expect(result.digest).toBe(image.digest);
    expect(await skopeoDigest(dest)).toBe(image.digest);
    // Same registry: every blob was mounted from the source repository, none uploaded.
    expect(result.blobs.copied).toBe(0);
    expect(result.blobs.skipped).toBe(image.layers.length + 1);

    const again = JSON.parse(
      (await gantryOk(['copy', '--json', `docker://${imageRef}`, dest])).stdout,
    ) as typeof result;
    expect(again.blobs.copied).toBe(0);
  });

  it('parallel copies sharing blobs into one new repository all land (distribution link race)', async () => {
    // distribution 2.8 rewrites blob links in place; concurrent mounts of the same blobs into one repository
    // made manifest PUTs fail with MANIFEST_BLOB_UNKNOWN until the client retried them.
    const tags = Array.from({ length: 10 }, (_, i) => `p${i}`);
    const results = await Promise.all(
      tags.map((tag) =>
        gantry(['copy', `docker://${imageRef}`, `docker://${registry.host}/dst/parallel:${tag}`]),
      ),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    for (const tag of tags)
      expect(await skopeoDigest(`docker://${registry.host}/dst/parallel:${tag}`)).toBe(image.digest);
  });

  it('copies every platform with --all, keeping the index digest', async () => {
    const dest = `docker://${registry.host}/dst/index:all`;
    await gantryOk(['copy', '--all', `docker://${indexRef}`, dest]);
    expect(await skopeoDigest(dest)).toBe(index.digest);
    for (const m of index.manifests ?? []) {
      expect(await skopeoDigest(`docker://${registry.host}/dst/index@${m.digest}`)).toBe(m.digest);
    }
  });

  it('copies one platform with --platform, and the host platform by default', async () => {
    const arm = (index.manifests ?? []).find((m) => m.platform?.architecture === 'arm64');
    const amd = (index.manifests ?? []).find((m) => m.platform?.architecture === 'amd64');
    await gantryOk([
      'copy',
      '--platform',
      'linux/arm64',
      `docker://${indexRef}`,
      `docker://${registry.host}/dst/index:arm`,
    ]);
    expect(await skopeoDigest(`docker://${registry.host}/dst/index:arm`)).toBe(arm?.digest);
    await gantryOk(['copy', `docker://${indexRef}`, `docker://${registry.host}/dst/index:host`]);
    expect(await skopeoDigest(`docker://${registry.host}/dst/index:host`)).toBe(amd?.digest);
  });

  it('names the platforms it has when the asked one is missing', async () => {
    const result = await gantry([
      'copy',
      '--platform',
      'linux/s390x',
      `docker://${indexRef}`,
      `docker://${registry.host}/dst/x:y`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('NO_MATCHING_PLATFORM');
    expect(result.stderr).toContain('linux/arm64');
  });

  it('converts to Docker v2s2 with --format and skopeo reads the result', async () => {
    const dest = `docker://${registry.host}/dst/v2s2:v1`;
    await gantryOk(['copy', '--format', 'v2s2', `docker://${imageRef}`, dest]);
    const { stdout } = await skopeo(['inspect', '--raw', '--tls-verify=false', dest]);
    const manifest = JSON.parse(stdout) as { mediaType: string; layers: { mediaType: string }[] };
    expect(manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(manifest.layers.every((l) => l.mediaType === MediaType.dockerLayerGzip)).toBe(true);
    // Skopeo can pull every blob of it back out.
    await skopeo(['copy', '--src-tls-verify=false', dest, `dir:${join(work, 'v2s2-dir')}`]);
  });

  it('carries cosign signature tags and OCI referrers along, unless --remove-signatures', async () => {
    const sigImage = await makeImageLayout({
      dir: join(work, 'sig'),
      tag: 'sig',
      layers: 1,
      layerSize: 64,
      seed: 99,
    });
    const sigTag = `${image.digest.replace(':', '-')}.sig`;
    await pushFixture(sigImage, registry, `src/image:${sigTag}`);
    // A referrer: an artifact manifest whose subject is the image, pushed with gantry's registry client, which
    // maintains the referrers fallback tag on registries without the referrers API (distribution 2.8).
    const client = new RegistryClient({});
    const src = { registry: registry.host, repository: 'src/image' };
    const emptyConfig = Buffer.from('{}');
    await client.uploadBlob(
      src,
      { mediaType: MediaType.ociEmpty, digest: sha256Digest(emptyConfig), size: 2 },
      async () => {
        const { Readable } = await import('node:stream');
        return Readable.from([emptyConfig]);
      },
    );
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: MediaType.ociEmpty, digest: sha256Digest(emptyConfig), size: 2 },
        layers: [{ mediaType: MediaType.ociEmpty, digest: sha256Digest(emptyConfig), size: 2 }],
        subject: {
          mediaType: image.mediaType,
          digest: image.digest,
          size: (await readFile(join(image.layoutDir, 'blobs', 'sha256', image.digest.slice(7)))).length,
        },
      }),
    );
    const referrerDigest = sha256Digest(referrer);
    await client.putManifest(src, referrerDigest, {
      bytes: referrer,
      mediaType: MediaType.ociManifest,
      digest: referrerDigest,
    });

    const dest = { registry: registry.host, repository: 'dst/signed' };
    const copied = JSON.parse(
      (await gantryOk(['copy', '--json', `docker://${imageRef}`, `docker://${registry.host}/dst/signed:v1`]))
        .stdout,
    ) as {
      attachments: number;
    };
    expect(copied.attachments).toBe(2);
    expect(await client.listTags(dest)).toContain(sigTag);
    expect((await client.listReferrers(dest, image.digest)).map((d) => d.digest)).toContain(referrerDigest);

    await gantryOk([
      'copy',
      '--remove-signatures',
      `docker://${imageRef}`,
      `docker://${registry.host}/dst/unsigned:v1`,
    ]);
    expect(await client.listTags({ registry: registry.host, repository: 'dst/unsigned' })).toEqual(['v1']);
  });
});

describe('files written by gantry are read by skopeo and umoci', () => {
  it.each([
    ['oci', (d: string) => `oci:${d}/layout:v1`],
    ['oci-archive', (d: string) => `oci-archive:${d}/image.tar:v1`],
    ['docker-archive', (d: string) => `docker-archive:${d}/docker.tar:example.com/image:v1`],
    ['dir', (d: string) => `dir:${d}/dir`],
  ])('%s', async (transport, target) => {
    const dir = await mkdtemp(join(work, `${transport}-`));
    const dest = target(dir);
    await gantryOk(['copy', `docker://${imageRef}`, dest]);
    const { stdout } = await skopeo(['inspect', dest]);
    const info = JSON.parse(stdout) as { Layers: string[]; Digest: string };
    expect(info.Layers).toHaveLength(image.layers.length);
    if (transport !== 'docker-archive') {
      // docker-archive stores uncompressed layers, so its manifest differs; all others keep the bytes.
      expect(info.Digest).toBe(image.digest);
      expect(info.Layers).toEqual(image.layers.map((l) => l.digest));
    }
    // And back: skopeo pushes what gantry wrote, and the registry accepts every blob.
    await skopeo([
      'copy',
      '--dest-tls-verify=false',
      dest,
      `docker://${registry.host}/roundtrip/${transport}:v1`,
    ]);
  });

  it('umoci unpacks an OCI layout gantry wrote, with the busybox binary in place', async () => {
    const dir = await mkdtemp(join(work, 'umoci-'));
    await gantryOk(['copy', `docker://${imageRef}`, `oci:${dir}/layout:v1`]);
    await run('umoci', ['unpack', '--rootless', '--image', `${dir}/layout:v1`, `${dir}/bundle`]);
    const busybox = await stat(join(dir, 'bundle', 'rootfs', 'bin', 'busybox'));
    expect(busybox.isFile()).toBe(true);
    expect(await readdir(join(dir, 'bundle'))).toContain('config.json');
  });
});

describe('files written by skopeo are read by gantry', () => {
  it.each([
    ['oci', (d: string) => `oci:${d}/layout:v1`],
    ['oci-archive', (d: string) => `oci-archive:${d}/image.tar:v1`],
    ['docker-archive', (d: string) => `docker-archive:${d}/docker.tar:example.com/image:v1`],
    ['dir', (d: string) => `dir:${d}/dir`],
  ])('%s', async (transport, target) => {
    const dir = await mkdtemp(join(work, `skopeo-${transport}-`));
    const src = target(dir);
    await skopeo(['copy', '--src-tls-verify=false', `docker://${imageRef}`, src]);
    const dest = `docker://${registry.host}/from-skopeo/${transport}:v1`;
    await gantryOk(['copy', src, dest]);
    const { stdout } = await skopeo(['inspect', '--raw', src]);
    if (transport === 'docker-archive') {
      // The archive holds uncompressed layers. skopeo labels them tar.gzip in the manifest it makes up on read;
      // gantry labels them honestly as tar, so the manifests differ but every layer digest is the same.
      const layerDigests = (raw: string) =>
        (JSON.parse(raw) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
      const written = (await skopeo(['inspect', '--raw', '--tls-verify=false', dest])).stdout;
      expect(layerDigests(written)).toEqual(layerDigests(stdout));
    } else {
      // Everything else is copied byte for byte: the digest is the one skopeo's file has.
      expect(await skopeoDigest(dest)).toBe(sha256Digest(Buffer.from(stdout)));
    }
  });
});

describe('errors', () => {
  it('rejects an unknown transport and a malformed reference with exit code 2', async () => {
    const bad = await gantry(['copy', 'docker-daemon:busybox', `docker://${registry.host}/x:y`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('docker-daemon');
    const malformed = await gantry(['copy', `docker://${registry.host}/UPPER:case`, `oci:${work}/x`]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('UPPER');
  });

  it('reports a missing image with the reference', async () => {
    const result = await gantry([
      'copy',
      `docker://${registry.host}/src/image:nope`,
      `oci:${work}/nothing:x`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${registry.host}/src/image:nope`);
    expect(result.stderr).toContain('NOT_FOUND');
  });
});
