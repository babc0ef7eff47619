/**
 * File transports (oci, oci-archive, docker-archive, dir) against real oracles: skopeo writes each format and
 * gantry's sources read it back hash-verified; gantry's destinations, driven by hand like the copy engine
 * would, write output that skopeo and umoci read. Also: abort, corrupt streams, hostile archives.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GantryError, isGantryError } from '../../src/errors/index.js';
import {
  type Descriptor,
  type ImageManifest,
  isIndex,
  MediaType,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../../src/oci/index.js';
import { openDirDestination, openDirSource } from '../../src/transports/dir.js';
import {
  openDockerArchiveDestination,
  openDockerArchiveSource,
} from '../../src/transports/docker-archive.js';
import { openOciArchiveDestination, openOciArchiveSource } from '../../src/transports/oci-archive.js';
import { openOciLayoutDestination, openOciLayoutSource } from '../../src/transports/oci-layout.js';
import type { ImageDestination, ImageSource } from '../../src/transports/types.js';
import { type FixtureImage, makeImageLayout, makeIndexLayout, skopeo } from '../harness/fixtures.js';
import { run } from '../harness/procs.js';

let work: string;
let image: FixtureImage; // OCI manifest, busybox + 2 layers
let dockerImage: FixtureImage; // Docker v2s2 manifest
let multi: FixtureImage; // OCI index, 2 platforms

const sk = (...args: string[]) => skopeo(['--insecure-policy', ...args]);
const path = (name: string) => join(work, name);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gantry-transport-test-'));
  image = await makeImageLayout({ dir: path('fx'), tag: 'v1', busybox: true });
  dockerImage = await makeImageLayout({ dir: path('fx-docker'), tag: 'v1', format: 'v2s2', seed: 2 });
  multi = await makeIndexLayout({
    dir: path('fx-multi'),
    tag: 'multi',
    platforms: ['linux/amd64', 'linux/arm64'],
  });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function hashStream(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

function imageManifest(raw: RawManifest): ImageManifest {
  const { manifest } = parseManifest(raw.bytes, raw.mediaType, 'test');
  if (isIndex(manifest)) throw new Error('expected an image manifest');
  return manifest;
}

/** Reads every manifest and blob reachable from the top manifest, checking each hashes to its descriptor. */
async function verifySource(src: ImageSource): Promise<RawManifest> {
  const top = await src.getManifest();
  expect(sha256Digest(top.bytes)).toBe(top.digest);
  const { manifest } = parseManifest(top.bytes, top.mediaType, 'test');
  const images = isIndex(manifest)
    ? await Promise.all(manifest.manifests.map((d) => src.getManifest(d.digest)))
    : [top];
  for (const raw of images) {
    expect(sha256Digest(raw.bytes)).toBe(raw.digest);
    const m = imageManifest(raw);
    for (const d of [m.config, ...m.layers]) {
      expect(await hashStream(await src.getBlob(d))).toEqual({ digest: d.digest, size: d.size });
    }
  }
  return top;
}

/** What the copy engine does, minus conversion: blobs, children, then the primary manifest; commit. */
async function copyByHand(src: ImageSource, dest: ImageDestination): Promise<RawManifest> {
  const top = await src.getManifest();
  const { manifest } = parseManifest(top.bytes, top.mediaType, 'test');
  const putImage = async (raw: RawManifest, primary: boolean) => {
    const m = imageManifest(raw);
    for (const d of [m.config, ...m.layers]) {
      if (!(await dest.hasBlob(d))) await dest.putBlob(d, (offset) => src.getBlob(d, { offset }));
    }
    await dest.putManifest(raw, { primary });
  };
  if (isIndex(manifest)) {
    for (const d of manifest.manifests) await putImage(await src.getManifest(d.digest), false);
    await dest.putManifest(top, { primary: true });
  } else {
    await putImage(top, true);
  }
  await dest.commit();
  return top;
}

describe('sources read what skopeo writes', () => {
  it('oci layout (image and index), including children by digest', async () => {
    const src = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'oci:fx:v1' });
    expect((await verifySource(src)).digest).toBe(image.digest);
    await src.close();
    const idx = await openOciLayoutSource({ dir: multi.layoutDir, name: 'oci:fx-multi' });
    const top = await verifySource(idx);
    expect(top.digest).toBe(multi.digest);
    expect(top.mediaType).toBe(MediaType.ociIndex);
    await idx.close();
  });

  it('dir (image and --all index)', async () => {
    await sk('copy', `oci:${image.layoutDir}:v1`, `dir:${path('sk-dir')}`);
    const src = await openDirSource({ dir: path('sk-dir'), name: 'dir' });
    expect((await verifySource(src)).digest).toBe(image.digest);
    await sk('copy', '--all', `oci:${multi.layoutDir}:multi`, `dir:${path('sk-dir-multi')}`);
    const idx = await openDirSource({ dir: path('sk-dir-multi'), name: 'dir' });
    expect((await verifySource(idx)).digest).toBe(multi.digest);
  });

  it('oci-archive, removing its extraction dir on close', async () => {
    await sk('copy', `oci:${image.layoutDir}:v1`, `oci-archive:${path('sk.oci.tar')}:t1`);
    const before = (await readdir(tmpdir())).filter((n) => n.startsWith('gantry-oci-archive-')).length;
    const src = await openOciArchiveSource({ file: path('sk.oci.tar'), ref: 't1', name: 'oci-archive' });
    expect((await verifySource(src)).digest).toBe(image.digest);
    await src.close();
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('gantry-oci-archive-')).length).toBe(before);
  });

  it('docker-archive: a v2s2 manifest of uncompressed layers named by diffID; by tag; with offsets', async () => {
    await sk('copy', `oci:${image.layoutDir}:v1`, `docker-archive:${path('sk.docker.tar')}:foo/bar:baz`);
    const src = await openDockerArchiveSource({
      file: path('sk.docker.tar'),
      ref: 'foo/bar:baz',
      name: 'da',
    });
    const top = await verifySource(src);
    expect(top.mediaType).toBe(MediaType.dockerManifest);
    const m = imageManifest(top);
    expect(m.config.digest).toBe(image.config.digest);
    const config = JSON.parse(
      (await readFile(join(image.layoutDir, 'blobs/sha256', image.config.digest.slice(7)))).toString(),
    );
    expect(m.layers.map((l) => l.digest)).toEqual(config.rootfs.diff_ids);
    expect(new Set(m.layers.map((l) => l.mediaType))).toEqual(
      new Set(['application/vnd.docker.image.rootfs.diff.tar']),
    );
    // Reading from an offset returns the tail of the layer.
    const layer = m.layers[0]!;
    const whole = await hashStream(await src.getBlob(layer, { offset: 0 }));
    const tail = await hashStream(await src.getBlob(layer, { offset: 1000 }));
    expect(tail.size).toBe(whole.size - 1000);
    await expect(
      openDockerArchiveSource({ file: path('sk.docker.tar'), ref: 'foo/bar:nope', name: 'da' }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('docker-archive with gzip-compressed layer members (other tools write these) decompresses on read', async () => {
    // Rebuild skopeo's archive with its layers gzipped in place, as some `docker save` producers do.
    const dir = path('gz-archive');
    await run('mkdir', ['-p', dir]);
    await run('tar', ['-xf', path('sk.docker.tar'), '-C', dir]);
    const items = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    for (const l of items[0].Layers as string[]) await run('gzip', ['-n', join(dir, l)]);
    items[0].Layers = items[0].Layers.map((l: string) => `${l}.gz`);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(items));
    const entries = (await readdir(dir)).filter((n) => n.endsWith('.json') || n.endsWith('.gz'));
    await run('tar', ['-cf', path('gz.docker.tar'), '-C', dir, ...entries]);
    const src = await openDockerArchiveSource({ file: path('gz.docker.tar'), name: 'da' });
    await verifySource(src);
  });
});

describe('destinations write what skopeo and umoci read', () => {
  it('oci layout: skopeo inspects it, umoci unpacks it, and an existing layout is updated', async () => {
    const src = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'src' });
    const out = path('out-oci');
    await copyByHand(src, await openOciLayoutDestination({ dir: out, ref: 'tag1', name: 'dest' }));
    await copyByHand(src, await openOciLayoutDestination({ dir: out, ref: 'tag2', name: 'dest' }));
    const multiSrc = await openOciLayoutSource({ dir: multi.layoutDir, name: 'src' });
    await copyByHand(multiSrc, await openOciLayoutDestination({ dir: out, ref: 'multi', name: 'dest' }));
    for (const [tag, digest] of [
      ['tag1', image.digest],
      ['tag2', image.digest],
      ['multi', multi.digest],
    ] as const) {
      const raw = (await sk('inspect', '--raw', `oci:${out}:${tag}`)).stdout;
      expect(sha256Digest(raw)).toBe(digest);
    }
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(3);
    expect(JSON.parse(await readFile(join(out, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    const bundle = path('bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${out}:tag1`, bundle], { timeoutMs: 120_000 });
    expect((await stat(join(bundle, 'rootfs/bin/busybox'))).isFile()).toBe(true);
    // Writing the same ref again replaces the entry (skopeo semantics) instead of adding one.
    await copyByHand(src, await openOciLayoutDestination({ dir: out, ref: 'tag1', name: 'dest' }));
    expect(JSON.parse(await readFile(join(out, 'index.json'), 'utf8')).manifests).toHaveLength(3);
  });

  it('oci-archive: skopeo copies out of it', async () => {
    const src = await openOciLayoutSource({ dir: multi.layoutDir, name: 'src' });
    const file = path('out.oci.tar');
    await copyByHand(src, await openOciArchiveDestination({ file, ref: 'm', name: 'dest' }));
    await sk('copy', '--all', `oci-archive:${file}:m`, `oci:${path('from-archive')}:m`);
    const index = JSON.parse(await readFile(join(path('from-archive'), 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(multi.digest);
    expect((await readdir(work)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('dir: same layout as skopeo writes, readable by skopeo, replaced on rewrite', async () => {
    const src = await openOciLayoutSource({ dir: multi.layoutDir, name: 'src' });
    const out = path('out-dir');
    await copyByHand(src, await openDirDestination({ dir: out, name: 'dest' }));
    await sk('copy', '--all', `oci:${multi.layoutDir}:multi`, `dir:${path('sk-dir-ref')}`);
    expect((await readdir(out)).sort()).toEqual((await readdir(path('sk-dir-ref'))).sort());
    expect(await readFile(join(out, 'version'), 'utf8')).toBe('Directory Transport Version: 1.1\n');
    await sk('copy', '--all', `dir:${out}`, `oci:${path('from-dir')}:x`);
    const single = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'src' });
    await copyByHand(single, await openDirDestination({ dir: out, name: 'dest' }));
    expect(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')).mediaType).toBe(
      MediaType.ociManifest,
    );
    expect((await readdir(out)).some((n) => n.endsWith('.manifest.json'))).toBe(false);
  });

  it('dir: refuses to overwrite a non-empty directory that is not a dir copy', async () => {
    const out = path('precious');
    await run('mkdir', ['-p', out]);
    await writeFile(join(out, 'notes.txt'), 'keep me');
    await expect(openDirDestination({ dir: out, name: 'dest' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('docker-archive: skopeo reads it; layout and legacy IDs match what skopeo writes', async () => {
    const src = await openOciLayoutSource({ dir: dockerImage.layoutDir, ref: 'v1', name: 'src' });
    const file = path('out.docker.tar');
    await copyByHand(src, await openDockerArchiveDestination({ file, ref: 'foo/bar:baz', name: 'dest' }));
    const info = JSON.parse((await sk('inspect', `docker-archive:${file}`)).stdout);
    expect(info.Layers).toHaveLength(dockerImage.layers.length);
    // skopeo 1.9 does not read v2s2 manifests from OCI layouts; give it the same image as a dir.
    await copyByHand(src, await openDirDestination({ dir: path('docker-dir'), name: 'dest' }));
    await sk('copy', `dir:${path('docker-dir')}`, `docker-archive:${path('sk-ref.docker.tar')}:foo/bar:baz`);
    // Symlink permission bits are meaningless (skopeo writes 0, tar-stream 0777); everything else must match.
    const listing = async (f: string) =>
      (await run('tar', ['-tvf', f])).stdout
        .split('\n')
        .map((l) => l.replace(/^l\S+/, 'l'))
        .sort();
    expect(await listing(file)).toEqual(await listing(path('sk-ref.docker.tar')));
    for (const member of ['manifest.json', 'repositories']) {
      const ours = (await run('tar', ['-xOf', file, member])).stdout;
      expect(ours).toBe((await run('tar', ['-xOf', path('sk-ref.docker.tar'), member])).stdout);
    }
    // Round trip through gantry's own source keeps the config digest.
    const back = await openDockerArchiveSource({ file, name: 'back' });
    const m = imageManifest(await verifySource(back));
    expect(m.config.digest).toBe(dockerImage.config.digest);
    await copyByHand(
      back,
      await openDockerArchiveDestination({ file: path('again.docker.tar'), name: 'dest' }),
    );
    await sk('inspect', `docker-archive:${path('again.docker.tar')}`);
  });

  it('docker-archive: rejects indexes and attachments', async () => {
    const dest = await openDockerArchiveDestination({ file: path('never.tar'), name: 'dest' });
    const idx = await openOciLayoutSource({ dir: multi.layoutDir, name: 'src' });
    await expect(dest.putManifest(await idx.getManifest(), { primary: true })).rejects.toMatchObject({
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    await dest.abort();
    expect(existsSync(path('never.tar'))).toBe(false);
  });
});

describe('failure handling', () => {
  it('abort leaves nothing behind, for every destination', async () => {
    const src = await openOciLayoutSource({ dir: dockerImage.layoutDir, ref: 'v1', name: 'src' });
    const m = imageManifest(await src.getManifest());
    const targets: [string, () => Promise<ImageDestination>][] = [
      [path('ab-oci'), () => openOciLayoutDestination({ dir: path('ab-oci'), ref: 'x', name: 'd' })],
      [path('ab.oci.tar'), () => openOciArchiveDestination({ file: path('ab.oci.tar'), name: 'd' })],
      [path('ab.docker.tar'), () => openDockerArchiveDestination({ file: path('ab.docker.tar'), name: 'd' })],
      [path('ab-dir'), () => openDirDestination({ dir: path('ab-dir'), name: 'd' })],
    ];
    for (const [target, open] of targets) {
      const dest = await open();
      for (const d of [m.config, ...m.layers]) await dest.putBlob(d, (offset) => src.getBlob(d, { offset }));
      await dest.abort();
      expect(existsSync(target), target).toBe(false);
    }
    expect((await readdir(work)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('a corrupted stream leaves no blob and no index entry', async () => {
    const out = path('corrupt-oci');
    const src = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'src' });
    await copyByHand(src, await openOciLayoutDestination({ dir: out, ref: 'good', name: 'd' }));
    const indexBefore = await readFile(join(out, 'index.json'), 'utf8');
    const bogus: Descriptor = {
      mediaType: MediaType.ociLayerGzip,
      digest: sha256Digest('the real content'),
      size: 16,
    };
    const dest = await openOciLayoutDestination({ dir: out, ref: 'bad', name: 'd' });
    const err = await dest
      .putBlob(bogus, async () => Readable.from([Buffer.from('the fake content')]))
      .catch((e: unknown) => e);
    expect(isGantryError(err, 'DIGEST_MISMATCH')).toBe(true);
    expect(await dest.hasBlob(bogus)).toBe(false);
    await dest.abort();
    expect(await readFile(join(out, 'index.json'), 'utf8')).toBe(indexBefore);
    expect((await readdir(join(out, 'blobs/sha256'))).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(existsSync(join(out, 'blobs/sha256', bogus.digest.slice(7)))).toBe(false);
    // A short stream is a size mismatch, also discarded; docker-archive layers too.
    const da = await openDockerArchiveDestination({ file: path('corrupt.docker.tar'), name: 'd' });
    const layer = image.layers[1]!;
    const short = await da
      .putBlob(layer, async () => Readable.from([Buffer.alloc(10)]))
      .catch((e: unknown) => e);
    expect(isGantryError(short)).toBe(true);
    expect(await da.hasBlob(layer)).toBe(false);
    await da.abort();
  });

  it('a stream that fails with a network error is resumed at its offset', async () => {
    const src = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'src' });
    const d = image.layers[1]!;
    const dest = await openOciLayoutDestination({ dir: path('resume-oci'), name: 'd' });
    const offsets: number[] = [];
    await dest.putBlob(d, async (offset) => {
      offsets.push(offset);
      const stream = await src.getBlob(d, { offset });
      if (offsets.length > 1) return stream;
      // First attempt: deliver 100 bytes, then fail like a dropped connection.
      return Readable.from(
        (async function* () {
          for await (const chunk of stream) {
            yield (chunk as Buffer).subarray(0, 100);
            stream.destroy();
            throw new GantryError('NETWORK', 'connection reset');
          }
        })(),
      );
    });
    expect(offsets).toEqual([0, 100]);
    expect(await dest.hasBlob(d)).toBe(true);
    await dest.abort();
  });

  it('hostile archive members are refused and nothing is written outside', async () => {
    const outside = `gantry-hostile-${randomBytes(4).toString('hex')}`;
    const members: (Partial<tar.Header> & { name: string })[] = [
      { name: `../${outside}`, size: 5 },
      { name: `blobs/../../${outside}`, size: 5 },
      { name: 'evil-link', type: 'symlink', linkname: `/tmp/${outside}` },
    ];
    for (const member of members) {
      const file = path(`hostile-${randomBytes(3).toString('hex')}.tar`);
      const pack = tar.pack();
      const done = pipeline(pack, createWriteStream(file));
      pack.entry({ name: 'oci-layout' }, '{"imageLayoutVersion":"1.0.0"}');
      if (member.type === 'symlink') pack.entry(member);
      else pack.entry(member, 'pwned');
      pack.finalize();
      await done;
      const err = await openOciArchiveSource({ file, name: 'oci-archive' }).catch((e: unknown) => e);
      expect(isGantryError(err, 'INVALID_ARGUMENT'), String(err)).toBe(true);
      expect(existsSync(join(tmpdir(), outside))).toBe(false);
    }
  });

  it('layout source: errors name the directory and ref; several images need a ref', async () => {
    await expect(openOciLayoutSource({ dir: image.layoutDir, ref: 'nope', name: 'src' })).rejects.toThrow(
      new RegExp(`nope.*${image.layoutDir}|${image.layoutDir}.*nope`),
    );
    await expect(openOciLayoutSource({ dir: path('out-oci'), name: 'src' })).rejects.toMatchObject({
      code: 'INVALID_REFERENCE',
    });
    await expect(openOciLayoutSource({ dir: path('missing'), name: 'src' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    // A manifest blob whose bytes changed on disk is reported, not served.
    const copy = path('tampered');
    await run('cp', ['-r', image.layoutDir, copy]);
    await writeFile(join(copy, 'blobs/sha256', image.digest.slice(7)), '{"schemaVersion":2}');
    const src = await openOciLayoutSource({ dir: copy, ref: 'v1', name: 'src' });
    await expect(src.getManifest()).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });
});

describe('attachments in an OCI layout', () => {
  it('tag-schema signatures and referrers are written and found again', async () => {
    const out = path('attach-oci');
    const src = await openOciLayoutSource({ dir: image.layoutDir, ref: 'v1', name: 'src' });
    const top = await copyByHand(src, await openOciLayoutDestination({ dir: out, ref: 'v1', name: 'd' }));
    const empty = Buffer.from('{}');
    const emptyDesc: Descriptor = { mediaType: MediaType.ociEmpty, digest: sha256Digest(empty), size: 2 };
    const artifact = (extra: Record<string, unknown>): RawManifest => {
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: emptyDesc,
          layers: [emptyDesc],
          ...extra,
        }),
      );
      return { bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) };
    };
    const sig = artifact({ annotations: { kind: 'sig' } });
    const referrer = artifact({
      artifactType: 'application/vnd.example.sbom',
      subject: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length },
    });
    const sigTag = `sha256-${top.digest.slice(7)}.sig`;
    const dest = await openOciLayoutDestination({ dir: out, ref: 'v1', name: 'd' });
    await dest.putBlob(emptyDesc, async () => Readable.from([empty]));
    await dest.putManifest(sig, { tag: sigTag });
    await dest.putManifest(referrer);
    await dest.commit();
    const again = await openOciLayoutSource({ dir: out, ref: 'v1', name: 'src' });
    const found = await again.listAttachments(top.digest);
    expect(found.find((a) => a.tag === sigTag)?.descriptor.digest).toBe(sig.digest);
    const ref = found.find((a) => a.tag === undefined);
    expect(ref?.descriptor).toMatchObject({
      digest: referrer.digest,
      artifactType: 'application/vnd.example.sbom',
    });
    expect(found).toHaveLength(2);
    // Without a ref the layout still resolves to the one image: attachments are not candidates.
    expect((await (await openOciLayoutSource({ dir: out, name: 'src' })).getManifest()).digest).toBe(
      top.digest,
    );
    await sk('inspect', `oci:${out}:v1`);
  });
});
