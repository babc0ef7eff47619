/**
 * The smaller commands through the real CLI: manifest create/inspect/push (the per-architecture merge step),
 * inspect's skopeo fields, list-tags, delete, manifest-digest, --digestfile, and sync --keep-going.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, sha256Digest } from '../../src/oci/index.js';
import { type FixtureImage, makeImageLayout, pushFixture, skopeo } from '../harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let registry: TestRegistry;
let work: string;
let image: FixtureImage;
let ref: string;

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-misc-'));
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 2, layerSize: 32 * 1024 });
  ref = `docker://${await pushFixture(image, registry, 'misc/app:v1')}`;
});

afterAll(async () => {
  await registry?.stop();
});

describe('manifest create', () => {
  it('merges per-architecture images into one index that skopeo reads per platform', async () => {
    // Two "CI jobs" pushed one image each; the arm64 one is made by retagging a fixture's config platform.
    const amd = await makeImageLayout({
      dir: join(work, 'amd'),
      tag: 'amd',
      layers: 1,
      layerSize: 1024,
      seed: 11,
    });
    const amdRef = `docker://${await pushFixture(amd, registry, 'multi/app:amd64')}`;
    const arm = await makeImageLayout({
      dir: join(work, 'arm'),
      tag: 'arm',
      layers: 1,
      layerSize: 1024,
      seed: 12,
    });
    const armLayout = join(work, 'arm');
    // Rewrite the arm image's config to say arm64 (a real per-arch build would produce this).
    const armManifest = JSON.parse(
      await readFile(join(armLayout, 'blobs', 'sha256', arm.digest.slice(7)), 'utf8'),
    );
    const config = JSON.parse(
      await readFile(join(armLayout, 'blobs', 'sha256', armManifest.config.digest.slice(7)), 'utf8'),
    );
    config.architecture = 'arm64';
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256Digest(configBytes);
    await writeFile(join(armLayout, 'blobs', 'sha256', configDigest.slice(7)), configBytes);
    armManifest.config = { ...armManifest.config, digest: configDigest, size: configBytes.length };
    const manifestBytes = Buffer.from(JSON.stringify(armManifest));
    const manifestDigest = sha256Digest(manifestBytes);
    await writeFile(join(armLayout, 'blobs', 'sha256', manifestDigest.slice(7)), manifestBytes);
    await writeFile(
      join(armLayout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MediaType.ociManifest,
            digest: manifestDigest,
            size: manifestBytes.length,
            annotations: { 'org.opencontainers.image.ref.name': 'arm' },
          },
        ],
      }),
    );
    const armRef = `docker://${registry.host}/other/app:arm64`;
    await gantryOk(['copy', `oci:${armLayout}:arm`, armRef]);

    const target = `docker://${registry.host}/multi/app:latest`;
    const created = await gantryOk([
      'manifest',
      'create',
      '--annotation',
      'org.example=ci',
      target,
      amdRef,
      armRef,
    ]);
    const indexDigest = created.stdout.trim();
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', target])).stdout;
    expect(sha256Digest(Buffer.from(raw))).toBe(indexDigest);
    const index = JSON.parse(raw) as {
      manifests: { digest: string; platform: { architecture: string } }[];
      annotations: Record<string, string>;
    };
    expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    expect(index.annotations['org.example']).toBe('ci');
    const armInfo = JSON.parse(
      (await skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', target])).stdout,
    ) as { Digest: string; Architecture: string };
    expect(armInfo.Architecture).toBe('arm64');

    // manifest inspect shows it; manifest push copies the whole index elsewhere.
    const shown = JSON.parse((await gantryOk(['manifest', 'inspect', target])).stdout) as {
      manifests: unknown[];
    };
    expect(shown.manifests).toHaveLength(2);
    await gantryOk(['manifest', 'push', target, `oci:${join(work, 'pushed')}:multi`]);
    const pushed = (await skopeo(['inspect', '--raw', `oci:${join(work, 'pushed')}:multi`])).stdout;
    expect(sha256Digest(Buffer.from(pushed))).toBe(indexDigest);
  });

  it('refuses two images for the same platform', async () => {
    const other = await makeImageLayout({
      dir: join(work, 'dup'),
      tag: 'dup',
      layers: 1,
      layerSize: 1024,
      seed: 13,
    });
    const otherRef = `docker://${await pushFixture(other, registry, 'multi/dup:v1')}`;
    const result = await gantry([
      'manifest',
      'create',
      `docker://${registry.host}/multi/dup:list`,
      ref,
      otherRef,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('two images for platform');
  });
});

describe('inspect, list-tags, delete, manifest-digest, --digestfile', () => {
  it('inspect prints skopeo fields with the same values skopeo reports', async () => {
    const ours = JSON.parse((await gantryOk(['inspect', ref])).stdout) as Record<string, unknown>;
    const theirs = JSON.parse((await skopeo(['inspect', '--tls-verify=false', ref])).stdout) as Record<
      string,
      unknown
    >;
    for (const field of ['Name', 'Digest', 'RepoTags', 'Architecture', 'Os', 'Layers', 'Env', 'Labels']) {
      expect(ours[field], field).toEqual(theirs[field]);
    }
    const config = JSON.parse((await gantryOk(['inspect', '--config', ref])).stdout) as {
      rootfs: { diff_ids: string[] };
    };
    expect(config.rootfs.diff_ids).toHaveLength(image.layers.length);
    const raw = (await gantryOk(['inspect', '--raw', ref])).stdout;
    expect(sha256Digest(Buffer.from(raw))).toBe(image.digest);
  });

  it('copy --digestfile writes the digest; manifest-digest agrees; list-tags and delete work', async () => {
    const digestfile = join(work, 'digest.txt');
    await gantryOk(['copy', '--digestfile', digestfile, ref, `docker://${registry.host}/misc/copy:a`]);
    expect(await readFile(digestfile, 'utf8')).toBe(image.digest);
    await gantryOk(['copy', ref, `docker://${registry.host}/misc/copy:b`]);
    const manifestFile = join(work, 'manifest.json');
    await writeFile(manifestFile, (await gantryOk(['inspect', '--raw', ref])).stdout);
    expect((await gantryOk(['manifest-digest', manifestFile])).stdout.trim()).toBe(image.digest);

    const tags = JSON.parse(
      (await gantryOk(['list-tags', `docker://${registry.host}/misc/copy`])).stdout,
    ) as { Tags: string[] };
    expect(tags.Tags.sort()).toEqual(['a', 'b']);
    await gantryOk(['delete', `docker://${registry.host}/misc/copy:a`]);
    // Registries delete manifests, not tags: both tags on that manifest are gone.
    const missing = await gantry(['inspect', `docker://${registry.host}/misc/copy:b`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');
  });
});

describe('sync --keep-going', () => {
  it('copies what it can, reports each failure and exits non-zero', async () => {
    const yamlFile = join(work, 'keep-going.yaml');
    await writeFile(yamlFile, `${registry.host}:\n  images:\n    misc/app: ["v1", "does-not-exist"]\n`);
    const result = await gantry([
      'sync',
      '--json',
      '--keep-going',
      '--src',
      'yaml',
      yamlFile,
      `docker://${registry.host}/kg`,
    ]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      copied: number;
      failed: number;
      items: { source: string; action: string; error?: string }[];
    };
    expect(report.copied).toBe(1);
    expect(report.failed).toBe(1);
    const failure = report.items.find((i) => i.action === 'failed');
    expect(failure?.source).toContain('does-not-exist');
    expect(failure?.error).toContain('does-not-exist');
  });
});
