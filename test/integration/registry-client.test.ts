/** RegistryClient against a real docker-registry (distribution 2.8) without auth: blobs, manifests, tags, referrers. */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { type Descriptor, MediaType, type RawManifest, sha256Digest } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

let registry: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ retryBaseDelayMs: 50 });
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

function blob(size: number): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(bytes), size } };
}

/** A BlobOpener over a buffer, in 64 KiB reads, counting opens. */
function opener(bytes: Buffer, opens: number[] = []) {
  return async (offset: number) => {
    opens.push(offset);
    return Readable.from(
      (function* () {
        for (let i = offset; i < bytes.length; i += 65536)
          yield bytes.subarray(i, Math.min(i + 65536, bytes.length));
      })(),
    );
  };
}

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function manifestFor(
  config: Descriptor,
  layers: Descriptor[],
  extra: Record<string, unknown> = {},
): RawManifest {
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers, ...extra }),
  );
  return { bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) };
}

async function pushImage(repository: string, tag: string): Promise<RawManifest> {
  const repo = { registry: registry.host, repository };
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const configDesc = { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length };
  const layer = blob(1000);
  await client.uploadBlob(repo, configDesc, opener(config));
  await client.uploadBlob(repo, layer.descriptor, opener(layer.bytes));
  const manifest = manifestFor(configDesc, [layer.descriptor]);
  await client.putManifest(repo, tag, manifest);
  return manifest;
}

describe('RegistryClient on a plain registry', () => {
  it('pings the registry over HTTP after HTTPS fails to handshake', async () => {
    await expect(client.ping(registry.host)).resolves.toBeUndefined();
  });

  it('asks anonymously without pinging /v2/ first, and pings first when it has credentials', async () => {
    const manifest = await pushImage('guess/app', 'v1');
    const proxy = await startFaultProxy(registry, []);
    const seen = proxy.requests;
    const anonymous = new RegistryClient();
    const withCredentials = new RegistryClient({
      credentials: async () => ({ kind: 'basic', username: 'user', password: 'secret' }),
    });
    try {
      const repo = { registry: proxy.host, repository: 'guess/app' };
      expect((await anonymous.headManifest(repo, 'v1'))?.digest).toBe(manifest.digest);
      expect((await anonymous.headManifest(repo, 'v1'))?.digest).toBe(manifest.digest);
      expect(seen).toEqual(['HEAD /v2/guess/app/manifests/v1', 'HEAD /v2/guess/app/manifests/v1']);
      seen.length = 0;
      expect((await withCredentials.headManifest(repo, 'v1'))?.digest).toBe(manifest.digest);
      expect(seen).toEqual(['GET /v2/', 'HEAD /v2/guess/app/manifests/v1']);
    } finally {
      await Promise.all([anonymous.close(), withCredentials.close()]);
      await proxy.stop();
    }
  });

  it('uploads monolithically and streams the blob back, also from an offset', async () => {
    const repo = { registry: registry.host, repository: 'mono/app' };
    const { bytes, descriptor } = blob(3 * 1024 * 1024 + 17);
    const opens: number[] = [];
    expect(await client.hasBlob(repo, descriptor.digest)).toBe(false);
    await client.uploadBlob(repo, descriptor, opener(bytes, opens));
    expect(opens).toEqual([0]);
    expect(await client.hasBlob(repo, descriptor.digest)).toBe(true);
    expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
    const tail = await client.getBlob(repo, descriptor, { offset: 1_000_000 });
    expect(await sha256(tail)).toBe(sha256Digest(bytes.subarray(1_000_000)));
  });

  it('reaches a registry that asks for no credentials even when looking them up fails', async () => {
    const manifest = await pushImage('guess/helper', 'v1');
    const broken = new RegistryClient({
      credentials: async () => {
        throw new Error('docker-credential-desktop not found on PATH');
      },
    });
    try {
      const head = await broken.headManifest({ registry: registry.host, repository: 'guess/helper' }, 'v1');
      expect(head?.digest).toBe(manifest.digest);
    } finally {
      await broken.close();
    }
  });

  it('does not time out a download whose reader pauses longer than the idle timeout', async () => {
    const repo = { registry: registry.host, repository: 'plain/paused' };
    const { bytes, descriptor } = blob(8 << 20);
    await client.uploadBlob(repo, descriptor, opener(bytes));
    const notes: string[] = [];
    const note = (message: string) => notes.push(message);
    const impatient = new RegistryClient({
      requestTimeoutMs: 300,
      logger: { info: note, warn: note, debug: note },
    });
    try {
      const stream = await impatient.getBlob(repo, descriptor);
      const hash = createHash('sha256');
      let paused = false;
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        if (!paused) {
          paused = true;
          await new Promise((resolve) => setTimeout(resolve, 1200));
        }
      }
      expect(`sha256:${hash.digest('hex')}`).toBe(descriptor.digest);
      expect(notes.filter((n) => n.includes('interrupted'))).toEqual([]);
    } finally {
      await impatient.close();
    }
  });

  it('uploads in chunks', async () => {
    const repo = { registry: registry.host, repository: 'chunked/app' };
    const { bytes, descriptor } = blob(2_500_000);
    await client.uploadBlob(repo, descriptor, opener(bytes), { chunkSize: 1024 * 1024 });
    expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
  });

  it('uploads an empty blob', async () => {
    const repo = { registry: registry.host, repository: 'empty/app' };
    const { bytes, descriptor } = blob(0);
    await client.uploadBlob(repo, descriptor, opener(bytes));
    expect(await client.hasBlob(repo, descriptor.digest)).toBe(true);
  });

  it('maps the registry DIGEST_INVALID to DIGEST_MISMATCH', async () => {
    const repo = { registry: registry.host, repository: 'bad/app' };
    const { bytes, descriptor } = blob(5000);
    const wrong = { ...descriptor, digest: sha256Digest(Buffer.from('something else')) };
    await expect(client.uploadBlob(repo, wrong, opener(bytes))).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    expect(await client.hasBlob(repo, wrong.digest)).toBe(false);
  });

  it('rethrows a source stream error unchanged', async () => {
    const repo = { registry: registry.host, repository: 'bad/source' };
    const { descriptor } = blob(300_000);
    const sourceError = new Error('source says no');
    const failing = async () =>
      Readable.from(
        (async function* () {
          yield randomBytes(100_000);
          throw sourceError;
        })(),
      );
    await expect(client.uploadBlob(repo, descriptor, failing)).rejects.toBe(sourceError);
    await expect(client.uploadBlob(repo, descriptor, failing, { chunkSize: 65536 })).rejects.toBe(
      sourceError,
    );
  });

  it('mounts a blob across repositories and reports false when it cannot', async () => {
    const from = { registry: registry.host, repository: 'mount/source' };
    const to = { registry: registry.host, repository: 'mount/target' };
    const { bytes, descriptor } = blob(10_000);
    await client.uploadBlob(from, descriptor, opener(bytes));
    expect(await client.mountBlob(to, descriptor.digest, from.repository)).toBe(true);
    expect(await client.hasBlob(to, descriptor.digest)).toBe(true);
    const missing = sha256Digest(Buffer.from('not there'));
    expect(await client.mountBlob(to, missing, from.repository)).toBe(false);
  });

  it('puts, gets, heads and deletes manifests', async () => {
    const repo = { registry: registry.host, repository: 'manifests/app' };
    const manifest = await pushImage(repo.repository, 'v1');
    const byTag = await client.getManifest(repo, 'v1');
    expect(byTag).toEqual(manifest);
    expect(await client.getManifest(repo, manifest.digest)).toEqual(manifest);
    expect(await client.headManifest(repo, 'v1')).toEqual({
      digest: manifest.digest,
      mediaType: MediaType.ociManifest,
      size: manifest.bytes.length,
    });
    await client.deleteManifest(repo, manifest.digest);
    expect(await client.headManifest(repo, 'v1')).toBeUndefined();
    const err = await client.getManifest(repo, 'v1').catch((e: unknown) => e);
    expect(isGantryError(err, 'NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain(`${registry.host}/manifests/app:v1`);
  });

  it('lists tags across pages', async () => {
    const repository = 'tags/app';
    const manifest = await pushImage(repository, 't0');
    const repo = { registry: registry.host, repository };
    for (const tag of ['t1', 't2', 't3', 't4']) await client.putManifest(repo, tag, manifest);
    expect((await client.listTags(repo, { pageSize: 2 })).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect((await client.listTags(repo)).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
    await expect(client.listTags({ registry: registry.host, repository: 'no/such' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('maintains and reads the referrers fallback tag', async () => {
    const repository = 'referrers/app';
    const repo = { registry: registry.host, repository };
    const image = await pushImage(repository, 'latest');
    expect(await client.listReferrers(repo, image.digest)).toEqual([]);
    const empty = Buffer.from('{}');
    const emptyDesc = { mediaType: MediaType.ociEmpty, digest: sha256Digest(empty), size: 2 };
    await client.uploadBlob(repo, emptyDesc, opener(empty));
    const subject = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };
    const sbom = manifestFor(emptyDesc, [emptyDesc], {
      artifactType: 'application/spdx+json',
      subject,
      annotations: { 'org.example': 'sbom' },
    });
    const sig = manifestFor(emptyDesc, [emptyDesc], {
      artifactType: 'application/vnd.dev.cosign.sig',
      subject,
    });
    await client.putManifest(repo, sbom.digest, sbom);
    await client.putManifest(repo, sig.digest, sig);
    await client.putManifest(repo, sig.digest, sig); // pushing again must not duplicate the entry
    const all = await client.listReferrers(repo, image.digest);
    expect(all).toEqual([
      {
        mediaType: MediaType.ociManifest,
        digest: sbom.digest,
        size: sbom.bytes.length,
        artifactType: 'application/spdx+json',
        annotations: { 'org.example': 'sbom' },
      },
      {
        mediaType: MediaType.ociManifest,
        digest: sig.digest,
        size: sig.bytes.length,
        artifactType: 'application/vnd.dev.cosign.sig',
      },
    ]);
    const sboms = await client.listReferrers(repo, image.digest, { artifactType: 'application/spdx+json' });
    expect(sboms.map((d) => d.digest)).toEqual([sbom.digest]);
    const fallback = await client.getManifest(repo, `sha256-${image.digest.slice(7)}`);
    expect(fallback.mediaType).toBe(MediaType.ociIndex);
  });
});
