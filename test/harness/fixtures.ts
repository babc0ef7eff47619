/**
 * harness/fixtures: test images made at test time with plain Node code (tar-stream, node:zlib, node:crypto),
 * independent of gantry's own code, written as OCI image layouts. Layer content comes from a seeded
 * AES-CTR keystream, so the same options always give the same digests. Layers are streamed to disk.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { type Pack, type Header as TarHeader, pack as tarPack } from 'tar-stream';
import type { Descriptor, Platform } from '../../src/oci/index.js';
import { run } from './procs.js';
import type { TestRegistry } from './registry.js';

export interface FixtureImage {
  layoutDir: string;
  tag: string;
  /** Digest of the top manifest (the index for makeIndexLayout). */
  digest: string;
  mediaType: string;
  /** Every layer, in order; for an index, all platforms' layers one platform after the other. */
  layers: Descriptor[];
  /** The image config; for an index, the first platform's. */
  config: Descriptor;
  /** For an index: the per-platform manifest descriptors, with `platform` set. */
  manifests?: Descriptor[];
}

export interface ImageLayoutOptions {
  dir: string;
  tag?: string;
  /** Random-data layers (default 2), after the busybox layer when `busybox` is set. */
  layers?: number;
  /** Bytes of random file content per layer (default 4096). */
  layerSize?: number;
  seed?: number;
  /** Add a first layer holding /bin/busybox (from busybox-static) and /bin/sh etc. symlinks. */
  busybox?: boolean;
  format?: 'oci' | 'v2s2';
}

export interface IndexLayoutOptions {
  dir: string;
  tag?: string;
  /** 'os/arch[/variant]', e.g. 'linux/amd64'. Each platform gets its own (different) layers. */
  platforms: string[];
  layerSize?: number;
  seed?: number;
}

const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};
const REF_NAME = 'org.opencontainers.image.ref.name';
const EPOCH = new Date(0);
const BUSYBOX_PATH = '/bin/busybox';
const BUSYBOX_LINKS = [
  'sh',
  'ls',
  'cat',
  'echo',
  'true',
  'false',
  'mkdir',
  'rm',
  'cp',
  'env',
  'sleep',
  'touch',
];

export async function makeImageLayout(opts: ImageLayoutOptions): Promise<FixtureImage> {
  const tag = opts.tag ?? 'latest';
  await initLayout(opts.dir);
  const image = await writeImage(opts.dir, {
    platform: { os: 'linux', architecture: ociArch(process.arch) },
    layers: opts.layers ?? 2,
    layerSize: opts.layerSize ?? 4096,
    seed: opts.seed ?? 1,
    busybox: opts.busybox ?? false,
    types: opts.format === 'v2s2' ? DOCKER : OCI,
  });
  await addRef(opts.dir, { ...image.manifest, annotations: { [REF_NAME]: tag } });
  return {
    layoutDir: opts.dir,
    tag,
    digest: image.manifest.digest,
    mediaType: image.manifest.mediaType,
    layers: image.layers,
    config: image.config,
  };
}

export async function makeIndexLayout(opts: IndexLayoutOptions): Promise<FixtureImage> {
  const tag = opts.tag ?? 'latest';
  if (opts.platforms.length === 0) throw new Error('makeIndexLayout needs at least one platform');
  await initLayout(opts.dir);
  const images = [];
  for (const p of opts.platforms) {
    const platform = parsePlatform(p);
    const image = await writeImage(opts.dir, {
      platform,
      layers: 2,
      layerSize: opts.layerSize ?? 4096,
      seed: opts.seed ?? 1,
      busybox: false,
      types: OCI,
    });
    images.push({ ...image, manifest: { ...image.manifest, platform } });
  }
  const index = { schemaVersion: 2, mediaType: OCI.index, manifests: images.map((i) => i.manifest) };
  const indexDesc = await writeJsonBlob(opts.dir, OCI.index, index);
  await addRef(opts.dir, { ...indexDesc, annotations: { [REF_NAME]: tag } });
  return {
    layoutDir: opts.dir,
    tag,
    digest: indexDesc.digest,
    mediaType: OCI.index,
    layers: images.flatMap((i) => i.layers),
    config: images[0]!.config,
    manifests: images.map((i) => i.manifest),
  };
}

/** Runs skopeo; rejects with its stderr on a non-zero exit (or after 5 minutes). */
export function skopeo(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('skopeo', args, { timeoutMs: 300_000 });
}

/** Pushes a fixture (all platforms) with `skopeo copy --all`; returns 'host/repo:tag'. */
export async function pushFixture(
  image: FixtureImage,
  registry: TestRegistry,
  repoAndTag: string,
): Promise<string> {
  const ref = `${registry.host}/${repoAndTag}`;
  const args = ['--insecure-policy', 'copy', '--all', '--retry-times', '2'];
  if (registry.tls && registry.certDir) {
    args.push('--dest-tls-verify=true', '--dest-cert-dir', join(registry.certDir, registry.host));
  } else {
    args.push('--dest-tls-verify=false');
  }
  if (registry.username !== undefined) args.push('--dest-creds', `${registry.username}:${registry.password}`);
  else args.push('--dest-no-creds');
  args.push(await skopeoSource(image), `docker://${ref}`);
  await skopeo(args);
  return ref;
}

/**
 * skopeo 1.9 only finds OCI-typed manifests by tag in an OCI layout, so a Docker v2s2 fixture is offered
 * through its `dir:` transport instead: a directory of hard links to the layout's blobs.
 */
async function skopeoSource(image: FixtureImage): Promise<string> {
  if (image.mediaType !== DOCKER.manifest) return `oci:${image.layoutDir}:${image.tag}`;
  const view = join(image.layoutDir, `.skopeo-dir-${image.tag}`);
  await rm(view, { recursive: true, force: true });
  await mkdir(view);
  await writeFile(join(view, 'version'), 'Directory Transport Version: 1.1\n');
  await link(blobPath(image.layoutDir, image.digest), join(view, 'manifest.json'));
  for (const blob of [image.config, ...image.layers]) {
    await link(blobPath(image.layoutDir, blob.digest), join(view, blob.digest.slice('sha256:'.length)));
  }
  return `dir:${view}`;
}

interface WriteImageOptions {
  platform: Platform;
  layers: number;
  layerSize: number;
  seed: number;
  busybox: boolean;
  types: typeof OCI | typeof DOCKER;
}

async function writeImage(dir: string, o: WriteImageOptions) {
  const platformKey = [o.platform.os, o.platform.architecture, o.platform.variant].filter(Boolean).join('/');
  const written: { desc: Descriptor; diffId: string }[] = [];
  if (o.busybox) written.push(await writeLayer(dir, o.types.layer, busyboxEntries));
  for (let i = 0; i < o.layers; i++) {
    const label = `${o.seed}:${platformKey}:${i}`;
    written.push(await writeLayer(dir, o.types.layer, (pack) => randomFileEntry(pack, label, o.layerSize)));
  }
  const config = {
    created: EPOCH.toISOString(),
    architecture: o.platform.architecture,
    os: o.platform.os,
    ...(o.platform.variant ? { variant: o.platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(o.busybox ? { Cmd: ['/bin/sh'] } : {}),
    },
    rootfs: { type: 'layers', diff_ids: written.map((w) => w.diffId) },
    history: written.map((_, i) => ({
      created: EPOCH.toISOString(),
      created_by: `gantry test fixture layer ${i}`,
    })),
  };
  const configDesc = await writeJsonBlob(dir, o.types.config, config);
  const layers = written.map((w) => w.desc);
  const manifest = { schemaVersion: 2, mediaType: o.types.manifest, config: configDesc, layers };
  const manifestDesc = await writeJsonBlob(dir, o.types.manifest, manifest);
  return { manifest: manifestDesc, config: configDesc, layers };
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Adds (or replaces, by ref name) an entry in index.json, keeping other tags in the same layout. */
async function addRef(dir: string, desc: Descriptor): Promise<void> {
  const path = join(dir, 'index.json');
  const existing = await readFile(path, 'utf8').then(
    (text) => JSON.parse(text) as { manifests?: Descriptor[] },
    () => ({ manifests: [] as Descriptor[] }),
  );
  const name = desc.annotations?.[REF_NAME];
  const manifests = (existing.manifests ?? []).filter((m) => m.annotations?.[REF_NAME] !== name);
  manifests.push(desc);
  await writeFile(path, JSON.stringify({ schemaVersion: 2, mediaType: OCI.index, manifests }));
}

async function writeJsonBlob(dir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(dir, digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Hashes and counts the bytes passing through. */
class Measure extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
}

/**
 * Streams a gzipped tar layer to a temp file while hashing both the tar (diff_id) and the gzip (digest),
 * then moves it to its content address.
 */
async function writeLayer(
  dir: string,
  mediaType: string,
  fill: (pack: Pack) => Promise<void>,
): Promise<{ desc: Descriptor; diffId: string }> {
  const tmp = join(dir, 'blobs', `.tmp-layer-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const pack = tarPack();
  const diff = new Measure();
  const compressed = new Measure();
  // Level 1: the content is random, so higher levels only cost time.
  const written = pipeline(pack, diff, createGzip({ level: 1 }), compressed, createWriteStream(tmp));
  try {
    await fill(pack);
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  const digest = `sha256:${compressed.hash.digest('hex')}`;
  await rename(tmp, blobPath(dir, digest));
  return { desc: { mediaType, digest, size: compressed.size }, diffId: `sha256:${diff.hash.digest('hex')}` };
}

const baseHeader = {
  mtime: EPOCH,
  uid: 0,
  gid: 0,
  uname: 'root',
  gname: 'root',
} satisfies Partial<TarHeader>;

function addEntry(
  pack: Pack,
  header: Partial<TarHeader> & { name: string },
  content?: Readable,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const entry = pack.entry({ ...baseHeader, ...header }, (err) => (err ? reject(err) : resolve()));
    if (content) pipeline(content, entry).catch(reject);
  });
}

async function randomFileEntry(pack: Pack, label: string, size: number): Promise<void> {
  await addEntry(pack, { name: 'data/', type: 'directory', mode: 0o755 });
  const name = `data/random-${createHash('sha256').update(label).digest('hex').slice(0, 12)}.bin`;
  await addEntry(
    pack,
    { name, type: 'file', mode: 0o644, size },
    Readable.from(randomBytesStream(label, size)),
  );
}

/** Deterministic pseudo-random bytes: AES-128-CTR keystream keyed by the label, yielded in 64 KiB chunks. */
function* randomBytesStream(label: string, size: number): Generator<Buffer> {
  const key = createHash('sha256').update(`gantry-fixture:${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(64 * 1024);
  for (let left = size; left > 0; left -= zeros.length) {
    yield cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
  }
}

async function busyboxEntries(pack: Pack): Promise<void> {
  const { size } = await stat(BUSYBOX_PATH).catch((err: unknown) => {
    throw new Error(`${BUSYBOX_PATH} is missing: install busybox-static (scripts/setup.sh does)`, {
      cause: err,
    });
  });
  await addEntry(pack, { name: 'bin/', type: 'directory', mode: 0o755 });
  await addEntry(pack, { name: 'tmp/', type: 'directory', mode: 0o1777 });
  await addEntry(
    pack,
    { name: 'bin/busybox', type: 'file', mode: 0o755, size },
    createReadStream(BUSYBOX_PATH),
  );
  for (const link of BUSYBOX_LINKS) {
    await addEntry(pack, { name: `bin/${link}`, type: 'symlink', linkname: 'busybox', mode: 0o777 });
  }
}

function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture)
    throw new Error(`invalid platform ${JSON.stringify(text)} (want os/arch[/variant])`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function ociArch(nodeArch: string): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
  };
  return map[nodeArch] ?? nodeArch;
}
