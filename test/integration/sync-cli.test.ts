/**
 * `gantry sync` end to end against real registries: incremental re-runs, YAML selection (lists, regex, semver),
 * --delete-extraneous, --dry-run, --shard, --keep-going, and the air-gap bundle round trip with verification.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

interface Report {
  copied: number;
  upToDate: number;
  deleted: number;
  failed: number;
  items: { source: string; destination: string; action: string; digest?: string }[];
}

let src: TestRegistry;
let dst: TestRegistry;
let work: string;
const client = new RegistryClient({});
const TAGS = ['1.0.0', '1.1.0', '2.0.0', 'latest', 'edge'];

/** Tags of a destination repository; a repository that was never written has none. */
async function tagsOf(registry: TestRegistry, repository: string): Promise<string[]> {
  try {
    return (await client.listTags({ registry: registry.host, repository })).sort();
  } catch (err) {
    if (isGantryError(err, 'NOT_FOUND')) return [];
    throw err;
  }
}

async function syncJson(args: string[]): Promise<Report> {
  return JSON.parse((await gantryOk(['sync', '--json', ...args])).stdout) as Report;
}

beforeAll(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  work = await mkdtemp(join(tmpdir(), 'gantry-sync-'));
  for (const [i, tag] of TAGS.entries()) {
    const image = await makeImageLayout({
      dir: join(work, `img-${i}`),
      tag,
      layers: 2,
      layerSize: 16 * 1024,
      seed: i + 1,
    });
    await pushFixture(image, src, `lib/app:${tag}`);
  }
});

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
});

describe('registry to registry', () => {
  it('mirrors every tag, then a re-run moves nothing, then only the changed tag moves', async () => {
    const first = await syncJson([`docker://${src.host}/lib/app`, `docker://${dst.host}/mirror`]);
    expect(first.copied).toBe(TAGS.length);
    expect(await tagsOf(dst, 'mirror/lib/app')).toEqual([...TAGS].sort());

    const second = await syncJson([`docker://${src.host}/lib/app`, `docker://${dst.host}/mirror`]);
    expect(second.copied).toBe(0);
    expect(second.upToDate).toBe(TAGS.length);

    const changed = await makeImageLayout({
      dir: join(work, 'changed'),
      tag: 'edge',
      layers: 1,
      layerSize: 1024,
      seed: 77,
    });
    await pushFixture(changed, src, 'lib/app:edge');
    const third = await syncJson([`docker://${src.host}/lib/app`, `docker://${dst.host}/mirror`]);
    expect(third.copied).toBe(1);
    expect(third.items.find((i) => i.action === 'copy')?.digest).toBe(changed.digest);
  });

  it('with --state, a re-run asks the destination only for its tag list, and still repairs a lost tag', async () => {
    const proxy = await startFaultProxy(dst, []);
    const seen = proxy.requests;
    const state = join(work, 'sync-state.json');
    const args = ['--state', state, `docker://${src.host}/lib/app`, `docker://${proxy.host}/stated`];
    try {
      const first = await syncJson(args);
      expect(first.copied).toBe(TAGS.length);
      const recorded = JSON.parse(await readFile(state, 'utf8')) as {
        version: number;
        tags: Record<string, string>;
      };
      expect(recorded.version).toBe(1);
      for (const item of first.items) expect(recorded.tags[item.destination]).toBe(item.digest);

      seen.length = 0;
      const second = await syncJson(args);
      expect(second.upToDate).toBe(TAGS.length);
      expect(seen).toEqual(['GET /v2/stated/lib/app/tags/list']);

      // A tag lost in the destination behind the sync's back is noticed through the tag list and copied again.
      const lost = first.items.find((i) => i.destination.endsWith(':edge'));
      await client.deleteManifest({ registry: dst.host, repository: 'stated/lib/app' }, lost!.digest!);
      const third = await syncJson(args);
      expect(third.copied).toBe(1);
      expect(await tagsOf(dst, 'stated/lib/app')).toEqual([...TAGS].sort());
    } finally {
      await proxy.stop();
    }

    await writeFile(state, '{"version": 1, "tags": {"x": 42}}');
    const bad = await gantry(['sync', ...args]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(state);
    expect(bad.stderr).toContain('not a gantry sync state file');
    const bundle = await gantry([
      'sync',
      '--state',
      state,
      '--dest',
      'bundle',
      `docker://${src.host}/lib/app`,
      work,
    ]);
    expect(bundle.code).toBe(2);
    expect(bundle.stderr).toContain('--state needs a registry destination');
  });

  it('selects tags from YAML by list, regex and semver range', async () => {
    const yamlFile = join(work, 'sync.yaml');
    await writeFile(
      yamlFile,
      [
        `${src.host}:`,
        '  tls-verify: false',
        '  images:',
        '    lib/app: ["latest"]',
        '  images-by-tag-regex:',
        '    lib/app: ^edge$',
        '  images-by-semver:',
        '    lib/app: ">= 1.1.0 < 3"',
      ].join('\n'),
    );
    const report = await syncJson(['--src', 'yaml', yamlFile, `docker://${dst.host}/yaml`]);
    const tags = await tagsOf(dst, 'yaml/lib/app');
    expect(tags).toEqual(['1.1.0', '2.0.0', 'edge', 'latest']);
    expect(report.copied).toBe(4);
  });

  it('reports a bad YAML key with the file name', async () => {
    const yamlFile = join(work, 'bad.yaml');
    await writeFile(yamlFile, `${src.host}:\n  imagez:\n    lib/app: []\n`);
    const result = await gantry(['sync', '--src', 'yaml', yamlFile, `docker://${dst.host}/x`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(yamlFile);
    expect(result.stderr).toContain('imagez');
  });

  it('splits the work into disjoint shards that together cover everything', async () => {
    const one = await syncJson([
      '--dry-run',
      '--shard',
      '1/2',
      `docker://${src.host}/lib/app`,
      `docker://${dst.host}/shard`,
    ]);
    const two = await syncJson([
      '--dry-run',
      '--shard',
      '2/2',
      `docker://${src.host}/lib/app`,
      `docker://${dst.host}/shard`,
    ]);
    const a = one.items.map((i) => i.source);
    const b = two.items.map((i) => i.source);
    expect(a.filter((x) => b.includes(x))).toEqual([]);
    expect([...a, ...b].sort()).toEqual(TAGS.map((t) => `${src.host}/lib/app:${t}`).sort());
    // --dry-run wrote nothing.
    expect(await tagsOf(dst, 'shard/lib/app')).toEqual([]);
  });

  it('deletes destination tags the source no longer has with --delete-extraneous', async () => {
    await syncJson([`docker://${src.host}/lib/app`, `docker://${dst.host}/extra`]);
    const head = await client.headManifest({ registry: src.host, repository: 'lib/app' }, '1.0.0');
    await client.deleteManifest({ registry: src.host, repository: 'lib/app' }, head!.digest);
    const report = await syncJson([
      '--delete-extraneous',
      `docker://${src.host}/lib/app`,
      `docker://${dst.host}/extra`,
    ]);
    expect(report.deleted).toBe(1);
    expect(await tagsOf(dst, 'extra/lib/app')).not.toContain('1.0.0');
  });
});

describe('air-gap bundle', () => {
  it('syncs to a bundle and from the bundle into another registry with the same digests', async () => {
    const bundle = join(work, 'bundle');
    const out = await syncJson(['--dest', 'bundle', `docker://${src.host}/lib/app`, bundle]);
    expect(out.failed).toBe(0);
    const index = JSON.parse(await readFile(join(bundle, 'gantry-bundle.json'), 'utf8')) as {
      images: { repository: string; tag: string; digest: string }[];
    };
    expect(index.images.length).toBeGreaterThan(0);
    const back = await syncJson(['--src', 'bundle', bundle, `docker://${dst.host}/airgap`]);
    expect(back.failed).toBe(0);
    for (const entry of index.images) {
      const head = await client.headManifest(
        { registry: dst.host, repository: `airgap/${entry.repository}` },
        entry.tag,
      );
      expect(head?.digest).toBe(entry.digest);
    }
    // A re-run of the bundle into the registry moves nothing.
    expect((await syncJson(['--src', 'bundle', bundle, `docker://${dst.host}/airgap`])).copied).toBe(0);
  });

  it('refuses a damaged bundle before tagging anything', async () => {
    const bundle = join(work, 'damaged');
    await syncJson(['--dest', 'bundle', `docker://${src.host}/lib/app:latest`, bundle]);
    const blobs = join(bundle, 'blobs', 'sha256');
    // Damage the biggest blob (a layer), keeping its size.
    const files = await readdir(blobs);
    let biggest = files[0]!;
    let size = 0;
    for (const f of files) {
      const bytes = await readFile(join(blobs, f));
      if (bytes.length > size) [biggest, size] = [f, bytes.length];
    }
    const bytes = await readFile(join(blobs, biggest));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(join(blobs, biggest), bytes);
    const result = await gantry(['sync', '--src', 'bundle', bundle, `docker://${dst.host}/damaged`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DIGEST_MISMATCH');
    expect(await tagsOf(dst, 'damaged/lib/app')).toEqual([]);
  });
});
