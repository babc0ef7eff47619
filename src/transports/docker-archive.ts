/**
 * transports/docker-archive: the `docker-archive:FILE[:REF]` transport — `docker save` tarballs as skopeo 1.9
 * reads and writes them: manifest.json (Config/RepoTags/Layers), config `<hex>.json`, uncompressed layers
 * `<diffID-hex>.tar`, plus the legacy `repositories` file and per-layer `<id>/{layer.tar,VERSION,json}`.
 *
 * Digest rules: an archive stores no manifest, only a config and uncompressed layers. The source therefore
 * presents a synthesised Docker v2s2 manifest whose layers are the uncompressed tars, named by their diffIDs
 * with the honest media type `application/vnd.docker.image.rootfs.diff.tar` (skopeo uses diffIDs too but labels
 * them `.tar.gzip`). The destination decompresses layers while writing and verifies them against the config's
 * diff_ids, so the image's config digest survives a round trip but its manifest digest does not.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, open as openFile, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAbortSignal, pipeline as pipelineCb, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { GantryError } from '../errors/index.js';
import {
  assertDigest,
  type Descriptor,
  digestAlgorithm,
  digestHex,
  encodeManifest,
  type ImageManifest,
  isDigest,
  isImageManifestType,
  MediaType,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import { parseImageReference } from '../reference/index.js';
import {
  assertBytesDigest,
  blobChunks,
  DigestCounter,
  indexTar,
  openFileStream,
  resolveTarMember,
  type TarIndexEntry,
  type TarMember,
  tempSuffix,
  verifyCounted,
  writeTarAtomic,
  writeVerifiedBlob,
} from './file-util.js';
import type {
  Attachment,
  BlobOpener,
  GetBlobOptions,
  ImageDestination,
  ImageSource,
  PutManifestOptions,
} from './types.js';

/** Uncompressed Docker layer (containerd's MediaTypeDockerSchema2Layer); not in the oci module's table. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
const MAX_METADATA_BYTES = 64 << 20;

interface ManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

type Compression = 'none' | 'gzip' | 'zstd';

function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

function decompressor(kind: Compression, subject: string): Transform | undefined {
  if (kind === 'gzip') return zlib.createGunzip();
  if (kind === 'zstd') {
    // node:zlib gained zstd in Node 22.15/23.8; Node 20 has none.
    const create = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
    if (!create) {
      throw new GantryError(
        'UNSUPPORTED_MEDIA_TYPE',
        `zstd layers need Node.js >= 22.15 to decompress (running ${process.version})`,
        { subject },
      );
    }
    return create();
  }
  return undefined;
}

function countingTransform(counter: DigestCounter): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counter.update(chunk);
      done(null, chunk);
    },
  });
}

async function* skipBytes(source: AsyncIterable<Buffer>, count: number): AsyncGenerator<Buffer> {
  let left = count;
  for await (const chunk of source) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/** Canonical `registry/repository:tag` for RepoTags matching, as skopeo writes them. */
function normalizeRepoTag(text: string, subject: string): { name: string; tag: string } {
  const ref = parseImageReference(text);
  if (ref.digest) {
    throw new GantryError(
      'INVALID_REFERENCE',
      `docker-archive references take a tag, not a digest: ${text}`,
      {
        subject,
      },
    );
  }
  return { name: `${ref.registry}/${ref.repository}`, tag: ref.tag ?? 'latest' };
}

interface ArchiveLayer {
  entry: TarIndexEntry;
  compression: Compression;
}

class DockerArchiveSource implements ImageSource {
  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly manifest: RawManifest,
    private readonly config: { digest: string; entry: TarIndexEntry },
    private readonly layers: Map<string, ArchiveLayer>,
  ) {}

  async getManifest(digest?: string): Promise<RawManifest> {
    if (digest === undefined || digest === this.manifest.digest) return this.manifest;
    throw new GantryError('NOT_FOUND', `docker archive ${this.file} has no manifest ${digest}`, {
      subject: this.name,
    });
  }

  async getBlob(descriptor: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
    const offset = options.offset ?? 0;
    let stream: Readable;
    const layer = this.layers.get(descriptor.digest);
    if (descriptor.digest === this.config.digest || layer?.compression === 'none') {
      const entry = layer ? layer.entry : this.config.entry;
      stream =
        offset >= entry.size
          ? Readable.from([])
          : await openFileStream(this.file, this.name, {
              start: entry.offset + offset,
              end: entry.offset + entry.size - 1,
            });
    } else if (layer) {
      const raw = await openFileStream(this.file, this.name, {
        start: layer.entry.offset,
        end: layer.entry.offset + layer.entry.size - 1,
      });
      const plain = pipelineCb(raw, decompressor(layer.compression, this.name)!, () => undefined);
      stream = offset > 0 ? Readable.from(skipBytes(plain, offset)) : plain;
    } else {
      throw new GantryError('NOT_FOUND', `docker archive ${this.file} has no blob ${descriptor.digest}`, {
        subject: this.name,
      });
    }
    return options.signal ? addAbortSignal(options.signal, stream) : stream;
  }

  async listAttachments(): Promise<Attachment[]> {
    return [];
  }

  async close(): Promise<void> {}
}

async function readMember(file: string, entry: TarIndexEntry, subject: string): Promise<Buffer> {
  if (entry.size > MAX_METADATA_BYTES) {
    throw new GantryError('MANIFEST_INVALID', `archive member ${entry.name} is too large`, { subject });
  }
  const handle = await openFile(file, 'r');
  try {
    const buf = Buffer.alloc(entry.size);
    await handle.read(buf, 0, entry.size, entry.offset);
    return buf;
  } finally {
    await handle.close();
  }
}

function parseManifestItems(bytes: Buffer, subject: string): ManifestItem[] {
  let items: unknown;
  try {
    items = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'manifest.json is not valid JSON', { subject, cause });
  }
  const ok =
    Array.isArray(items) &&
    items.every(
      (i: Partial<ManifestItem>) =>
        typeof i?.Config === 'string' &&
        Array.isArray(i.Layers) &&
        i.Layers.every((l) => typeof l === 'string') &&
        (i.RepoTags == null || (Array.isArray(i.RepoTags) && i.RepoTags.every((t) => typeof t === 'string'))),
    );
  if (!ok)
    throw new GantryError('MANIFEST_INVALID', 'manifest.json is not a docker save manifest', { subject });
  return items as ManifestItem[];
}

function pickItem(
  items: ManifestItem[],
  ref: string | undefined,
  file: string,
  subject: string,
): ManifestItem {
  if (ref === undefined) {
    if (items.length === 1) return items[0]!;
    throw new GantryError(
      'INVALID_REFERENCE',
      `docker archive ${file} holds ${items.length} images; name one as docker-archive:${file}:NAME:TAG`,
      { subject },
    );
  }
  const want = normalizeRepoTag(ref, subject);
  for (const item of items) {
    for (const tag of item.RepoTags ?? []) {
      try {
        const have = normalizeRepoTag(tag, subject);
        if (have.name === want.name && have.tag === want.tag) return item;
      } catch {
        // RepoTags written by other tools may not parse; they simply do not match.
      }
    }
  }
  throw new GantryError('NOT_FOUND', `docker archive ${file} has no image tagged ${ref}`, { subject });
}

function diffIdsOf(configBytes: Buffer, subject: string): string[] {
  let config: { rootfs?: { diff_ids?: unknown } };
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'image config is not valid JSON', { subject, cause });
  }
  const ids = config.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new GantryError('MANIFEST_INVALID', 'image config has no valid rootfs.diff_ids', { subject });
  }
  return ids as string[];
}

/** Measures a compressed layer's uncompressed size and checks it against its diffID. */
async function measureCompressed(file: string, layer: ArchiveLayer, diffID: string, subject: string) {
  const counter = new DigestCounter(digestAlgorithm(diffID));
  const raw = await openFileStream(file, subject, {
    start: layer.entry.offset,
    end: layer.entry.offset + layer.entry.size - 1,
  });
  for await (const chunk of pipelineCb(raw, decompressor(layer.compression, subject)!, () => undefined)) {
    counter.update(chunk as Buffer);
  }
  verifyCounted(counter, { mediaType: DOCKER_LAYER_TAR, digest: diffID, size: counter.size }, subject);
  return counter.size;
}

export async function openDockerArchiveSource(opts: {
  file: string;
  ref?: string;
  name: string;
}): Promise<ImageSource> {
  const { file, name } = opts;
  const index = await indexTar(file, name);
  const manifestBytes = await readMember(file, resolveTarMember(index, 'manifest.json', name), name);
  const item = pickItem(parseManifestItems(manifestBytes, name), opts.ref, file, name);
  const configEntry = resolveTarMember(index, item.Config, name);
  const configBytes = await readMember(file, configEntry, name);
  const diffIDs = diffIdsOf(configBytes, name);
  if (diffIDs.length !== item.Layers.length) {
    throw new GantryError(
      'MANIFEST_INVALID',
      `manifest.json lists ${item.Layers.length} layers but the config has ${diffIDs.length} diff_ids`,
      { subject: name },
    );
  }
  const layers = new Map<string, ArchiveLayer>();
  const descriptors: Descriptor[] = [];
  for (const [i, path] of item.Layers.entries()) {
    const entry = resolveTarMember(index, path, name);
    const head = await readMember(file, { ...entry, size: Math.min(entry.size, 4) }, name);
    const layer: ArchiveLayer = { entry, compression: sniffCompression(head) };
    const diffID = diffIDs[i]!;
    const size =
      layer.compression === 'none' ? entry.size : await measureCompressed(file, layer, diffID, name);
    layers.set(diffID, layer);
    descriptors.push({ mediaType: DOCKER_LAYER_TAR, digest: diffID, size });
  }
  const configDigest = sha256Digest(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
    layers: descriptors,
  };
  const bytes = encodeManifest(manifest);
  const raw: RawManifest = { bytes, mediaType: MediaType.dockerManifest, digest: sha256Digest(bytes) };
  return new DockerArchiveSource(name, file, raw, { digest: configDigest, entry: configEntry }, layers);
}

/** JSON as Go's encoding/json writes it (HTML-escaped), so legacy layer IDs match skopeo's byte for byte. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function sortedObject(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The legacy per-layer directories skopeo writes (containers/image docker/internal/tarfile writer): IDs are
 * digests of a small JSON holding the parent ID and the chain ID; the top one carries parts of the config.
 */
export function legacyLayers(
  diffIDs: string[],
  configBytes: Buffer,
): { members: TarMember[]; topId: string | undefined } {
  const config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  const members: TarMember[] = [];
  let chainID = '';
  let lastId: string | undefined;
  for (const [i, diffID] of diffIDs.entries()) {
    const layerConfig: Record<string, unknown> = {};
    if (lastId) layerConfig.parent = lastId;
    if (i === diffIDs.length - 1) {
      for (const attr of [
        'architecture',
        'config',
        'container',
        'container_config',
        'created',
        'docker_version',
        'os',
      ]) {
        layerConfig[attr] = config[attr] ?? null;
      }
    }
    chainID = chainID === '' ? diffID : sha256Digest(`${chainID} ${diffID}`);
    const id = digestHex(sha256Digest(goJson(sortedObject({ ...layerConfig, layer_id: chainID }))));
    members.push(
      { name: `${id}/layer.tar`, symlink: `../${digestHex(diffID)}.tar` },
      { name: `${id}/VERSION`, data: Buffer.from('1.0') },
      { name: `${id}/json`, data: Buffer.from(goJson(sortedObject({ ...layerConfig, id }))) },
    );
    lastId = id;
  }
  return { members, topId: lastId };
}

const CONFIG_TYPES = new Set<string>([MediaType.dockerConfig, MediaType.ociConfig]);

interface WrittenLayer {
  diffID: string;
  size: number;
  path: string;
}

class DockerArchiveDestination implements ImageDestination {
  readonly supportedManifestTypes: readonly string[] = [MediaType.dockerManifest];
  /** docker save archives have no place for signatures or referrers. */
  readonly acceptsAttachments = false;
  private readonly temps = new Set<string>();
  private readonly configs = new Map<string, string>();
  private readonly layers = new Map<string, WrittenLayer>();
  private image: { configDigest: string; diffIDs: string[]; configBytes: Buffer } | undefined;
  private finished = false;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly repoTag: { name: string; tag: string } | undefined,
    private readonly staging: string,
  ) {}

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.configs.has(descriptor.digest) || this.layers.has(descriptor.digest);
  }

  async putBlob(descriptor: Descriptor, open: BlobOpener): Promise<void> {
    assertDigest(descriptor.digest, this.name);
    if (await this.hasBlob(descriptor)) return;
    if (CONFIG_TYPES.has(descriptor.mediaType)) {
      const path = join(this.staging, `${digestHex(descriptor.digest)}.json`);
      await writeVerifiedBlob({ open, descriptor, path, subject: this.name, temps: this.temps });
      this.configs.set(descriptor.digest, path);
      return;
    }
    const path = join(this.staging, `layer${tempSuffix()}`);
    this.temps.add(path);
    try {
      const layer = await this.writeLayer(descriptor, open, path);
      this.layers.set(descriptor.digest, layer);
      this.temps.delete(path);
    } catch (err) {
      await rm(path, { force: true });
      this.temps.delete(path);
      throw err;
    }
  }

  /** Streams a layer to `path` uncompressed, verifying the input against its descriptor. */
  private async writeLayer(descriptor: Descriptor, open: BlobOpener, path: string): Promise<WrittenLayer> {
    const input = new DigestCounter(digestAlgorithm(descriptor.digest));
    const output = new DigestCounter('sha256');
    const chunks = (async function* () {
      for await (const chunk of blobChunks(open)) {
        input.update(chunk);
        yield chunk;
      }
    })();
    // Pick the decompressor from the magic bytes: media types are not reliable (skopeo labels the
    // uncompressed layers of docker archives as gzip).
    const head: Buffer[] = [];
    let headLength = 0;
    while (headLength < 4) {
      const next = await chunks.next();
      if (next.done) break;
      head.push(next.value);
      headLength += next.value.length;
    }
    const replay = (async function* () {
      yield* head;
      yield* chunks;
    })();
    const decompress = decompressor(sniffCompression(Buffer.concat(head)), this.name);
    const stages = [Readable.from(replay), ...(decompress ? [decompress] : []), countingTransform(output)];
    await pipeline([...stages, createWriteStream(path, { flags: 'wx' })]);
    verifyCounted(input, descriptor, this.name);
    return { diffID: output.digest(), size: output.size, path };
  }

  async putManifest(manifest: RawManifest, options: PutManifestOptions = {}): Promise<void> {
    if (!options.primary || options.tag !== undefined) {
      throw new GantryError(
        'UNSUPPORTED_MEDIA_TYPE',
        'docker archives hold one image; signatures, attestations and referrers cannot be stored',
        { subject: this.name },
      );
    }
    assertBytesDigest(manifest.bytes, manifest.digest, this.name);
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, this.name);
    if (!isImageManifestType(parsed.mediaType) || !('layers' in parsed.manifest)) {
      throw new GantryError(
        'UNSUPPORTED_MEDIA_TYPE',
        `docker archives store a single image, not ${parsed.mediaType}`,
        {
          subject: this.name,
        },
      );
    }
    const m = parsed.manifest;
    const configPath = this.configs.get(m.config.digest);
    if (!configPath) {
      throw new GantryError('INTERNAL', `config ${m.config.digest} was not written before the manifest`, {
        subject: this.name,
      });
    }
    const configBytes = await readFile(configPath);
    const diffIDs = diffIdsOf(configBytes, this.name);
    if (diffIDs.length !== m.layers.length) {
      throw new GantryError(
        'MANIFEST_INVALID',
        `manifest has ${m.layers.length} layers, config ${diffIDs.length} diff_ids`,
        {
          subject: this.name,
        },
      );
    }
    for (const [i, descriptor] of m.layers.entries()) {
      const written = this.layers.get(descriptor.digest);
      if (!written) {
        throw new GantryError('INTERNAL', `layer ${descriptor.digest} was not written before the manifest`, {
          subject: this.name,
        });
      }
      if (written.diffID !== diffIDs[i]) {
        throw new GantryError(
          'DIGEST_MISMATCH',
          `layer ${descriptor.digest} uncompresses to ${written.diffID}, config says ${diffIDs[i]}`,
          { subject: this.name },
        );
      }
      const final = join(this.staging, `${digestHex(written.diffID)}.tar`);
      if (written.path !== final) {
        await rename(written.path, final);
        written.path = final;
      }
    }
    this.image = { configDigest: m.config.digest, diffIDs, configBytes };
  }

  async commit(): Promise<void> {
    if (this.finished)
      throw new GantryError('INTERNAL', 'destination already finished', { subject: this.name });
    const image = this.image;
    if (!image)
      throw new GantryError('INTERNAL', 'commit without a primary manifest', { subject: this.name });
    const layerMembers = new Map<string, TarMember>();
    for (const diffID of image.diffIDs) {
      const name = `${digestHex(diffID)}.tar`;
      const size = [...this.layers.values()].find((l) => l.diffID === diffID)!.size;
      layerMembers.set(name, { name, file: join(this.staging, name), size });
    }
    const configName = `${digestHex(image.configDigest)}.json`;
    const legacy = legacyLayers(image.diffIDs, image.configBytes);
    const repoTags = this.repoTag ? [`${this.repoTag.name}:${this.repoTag.tag}`] : [];
    const repositories: Record<string, Record<string, string>> = {};
    if (this.repoTag && legacy.topId) repositories[this.repoTag.name] = { [this.repoTag.tag]: legacy.topId };
    const layerNames = image.diffIDs.map((d) => `${digestHex(d)}.tar`);
    const items = [{ Config: configName, RepoTags: repoTags, Layers: layerNames }];
    const members: TarMember[] = [
      ...layerMembers.values(),
      { name: configName, data: image.configBytes },
      ...legacy.members,
      { name: 'manifest.json', data: Buffer.from(goJson(items)) },
      { name: 'repositories', data: Buffer.from(goJson(repositories)) },
    ];
    try {
      await writeTarAtomic(this.file, members, this.name);
    } finally {
      this.finished = true;
      await rm(this.staging, { recursive: true, force: true });
    }
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await rm(this.staging, { recursive: true, force: true });
  }
}

export async function openDockerArchiveDestination(opts: {
  file: string;
  ref?: string;
  name: string;
}): Promise<ImageDestination> {
  const repoTag = opts.ref === undefined ? undefined : normalizeRepoTag(opts.ref, opts.name);
  const staging = await mkdtemp(join(tmpdir(), 'gantry-docker-archive-'));
  return new DockerArchiveDestination(opts.name, opts.file, repoTag, staging);
}
