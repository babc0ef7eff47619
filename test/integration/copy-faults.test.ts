/**
 * Fault tests for `gantry copy` through the real CLI: a registry killed mid-upload and restarted, a blob served
 * with the wrong content, 429 with Retry-After. Faults come from real process kills and the fault proxy.
 */
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { sha256Digest } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { type FixtureImage, makeImageLayout, pushFixture, skopeo } from '../harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let work: string;
let image: FixtureImage;
const client = new RegistryClient({});

async function tagsOf(registry: string, repository: string): Promise<string[]> {
  try {
    return await client.listTags({ registry, repository });
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND')) return [];
    throw err;
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gantry-faults-'));
  image = await makeImageLayout({
    dir: join(work, 'image'),
    tag: 'v1',
    layers: 3,
    layerSize: 24 * 1024 * 1024,
    seed: 3,
  });
});

afterAll(async () => {
  await client.close();
});

describe('destination registry killed mid-upload', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('the retried copy completes with the right digests', async () => {
    const dest = `docker://${registry.host}/killed/app:v1`;
    const copying = gantry(['copy', '-j', '1', '--retry-times', '8', `oci:${image.layoutDir}:v1`, dest]);
    // Kill the registry while a layer's bytes are streaming in (an upload session holds over 1 MiB), then restart it.
    const uploads = join(
      registry.dataDir,
      'storage',
      'docker',
      'registry',
      'v2',
      'repositories',
      'killed',
      'app',
      '_uploads',
    );
    const uploadBytes = async (): Promise<number> => {
      let largest = 0;
      for (const session of await readdir(uploads).catch(() => [] as string[])) {
        const size = await stat(join(uploads, session, 'data'))
          .then((s) => s.size)
          .catch(() => 0);
        largest = Math.max(largest, size);
      }
      return largest;
    };
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await uploadBytes()) < 1024 * 1024) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await registry.kill();
    await new Promise((r) => setTimeout(r, 1000));
    await registry.start();
    const result = await copying;
    expect(result.code, result.stderr).toBe(0);
    // The client saw the connection die and resumed or restarted the upload.
    expect(result.stderr).toMatch(/retrying|resuming|interrupted/);
    const { stdout } = await skopeo(['inspect', '--raw', '--tls-verify=false', dest]);
    expect(sha256Digest(Buffer.from(stdout))).toBe(image.digest);
    // Every layer reads back with its digest (skopeo verifies while copying out).
    await skopeo(['copy', '--src-tls-verify=false', dest, `oci:${join(work, 'readback')}:v1`]);
  });
});

describe('through the fault proxy', () => {
  let source: TestRegistry;
  let dest: TestRegistry;
  beforeAll(async () => {
    [source, dest] = await Promise.all([startRegistry(), startRegistry()]);
    const small = await makeImageLayout({
      dir: join(work, 'small'),
      tag: 'v1',
      layers: 2,
      layerSize: 128 * 1024,
      seed: 4,
    });
    await pushFixture(small, source, 'app/small:v1');
  });
  afterAll(async () => {
    await Promise.all([source?.stop(), dest?.stop()]);
  });

  it('a blob served with wrong content fails with DIGEST_MISMATCH and nothing is tagged', async () => {
    const proxy = await startFaultProxy(source, [
      {
        name: 'corrupt',
        action: 'corrupt-body',
        match: (r) => r.method === 'GET' && r.path.includes('/blobs/sha256:'),
      },
    ]);
    try {
      const result = await gantry([
        'copy',
        `docker://${proxy.host}/app/small:v1`,
        `docker://${dest.host}/corrupt/small:v1`,
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('DIGEST_MISMATCH');
      expect(result.stderr).toContain(`${proxy.host}/app/small:v1`);
      expect(proxy.hits('corrupt')).toBeGreaterThan(0);
      expect(await tagsOf(dest.host, 'corrupt/small')).toEqual([]);
      // The same failure into an OCI layout leaves no index entry and no stray blob files.
      const layout = join(work, 'corrupt-layout');
      const toLayout = await gantry(['copy', `docker://${proxy.host}/app/small:v1`, `oci:${layout}:v1`]);
      expect(toLayout.code).toBe(1);
      const blobs = await readdir(join(layout, 'blobs', 'sha256')).catch(() => []);
      expect(blobs.filter((f) => f.includes('tmp'))).toEqual([]);
      await expect(readdir(join(layout, 'index.json'))).rejects.toThrow();
    } finally {
      await proxy.stop();
    }
  });

  it('honours 429 Retry-After and then completes', async () => {
    const proxy = await startFaultProxy(source, [
      {
        name: 'limited',
        action: 'status',
        status: 429,
        headers: { 'Retry-After': '2' },
        times: 1,
        match: (r) => r.method === 'GET' && r.path.includes('/manifests/'),
      },
    ]);
    try {
      const started = Date.now();
      await gantryOk([
        'copy',
        `docker://${proxy.host}/app/small:v1`,
        `docker://${dest.host}/limited/small:v1`,
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(proxy.hits('limited')).toBe(1);
      expect(await tagsOf(dest.host, 'limited/small')).toEqual(['v1']);
    } finally {
      await proxy.stop();
    }
  });
});
