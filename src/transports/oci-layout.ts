/**
 * transports/oci-layout: the `oci:DIR[:REF]` transport — an OCI image layout directory (index.json, oci-layout,
 * blobs/<alg>/<hex>) read and written with skopeo's semantics for REF (org.opencontainers.image.ref.name).
 * Cosign tag-schema attachments are index entries named `sha256-<hex>.sig|.att|.sbom`; referrers are entries
 * without a name whose manifest has a `subject`.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import { asGantryError, GantryError } from '../errors/index.js';
import {
  assertDigest,
  type Descriptor,
  digestAlgorithm,
  digestHex,
  MediaType,
  parseManifest,
  type RawManifest,
} from '../oci/index.js';
import {
  assertBytesDigest,
  fileSize,
  layoutBlobPath,
  manifestFacts,
  openFileStream,
  readSmallFile,
  writeFileAtomic,
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

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const ATTACHMENT_TAG_RE = /^(sha256|sha512)-[a-f0-9]+\.(sig|att|sbom)$/;
const OCI_LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

function refNameOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME_ANNOTATION];
}

/** Reads index.json; undefined when the directory holds no layout yet. */
async function readLayoutIndex(dir: string, subject: string): Promise<LayoutIndex | undefined> {
  const path = join(dir, 'index.json');
  if ((await fileSize(path)) === undefined) return undefined;
  const bytes = await readSmallFile(path, subject);
  const { manifest } = parseManifest(bytes, MediaType.ociIndex, subject);
  if (!('manifests' in manifest)) {
    throw new GantryError('MANIFEST_INVALID', `${path} is not an image index`, { subject });
  }
  return manifest as LayoutIndex;
}

/** Reads a blob that must hash to its digest (manifests); DIGEST_MISMATCH otherwise. */
async function readVerifiedBlob(dir: string, digest: string, subject: string): Promise<Buffer> {
  const path = layoutBlobPath(dir, digest);
  let bytes: Buffer;
  try {
    bytes = await readSmallFile(path, subject);
  } catch (err) {
    throw asGantryError(err, 'NOT_FOUND', `no blob ${digest} in ${dir}`, subject);
  }
  assertBytesDigest(bytes, digest, subject);
  return bytes;
}

class OciLayoutSource implements ImageSource {
  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly index: LayoutIndex,
    private readonly top: Descriptor,
    private readonly onClose: () => Promise<void>,
  ) {}

  async getManifest(digest?: string): Promise<RawManifest> {
    const want = digest === undefined ? this.top.digest : assertDigest(digest, this.name);
    const bytes = await readVerifiedBlob(this.dir, want, this.name);
    const reported = this.index.manifests.find((m) => m.digest === want)?.mediaType;
    const { mediaType } = parseManifest(bytes, reported, this.name);
    return { bytes, mediaType, digest: want };
  }

  async getBlob(descriptor: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
    assertDigest(descriptor.digest, this.name);
    const stream = await openFileStream(layoutBlobPath(this.dir, descriptor.digest), this.name, {
      start: options.offset ?? 0,
    });
    return options.signal ? addAbortSignal(options.signal, stream) : stream;
  }

  async listAttachments(digest: string): Promise<Attachment[]> {
    assertDigest(digest, this.name);
    const tagPrefix = `${digestAlgorithm(digest)}-${digestHex(digest)}.`;
    const out: Attachment[] = [];
    const seen = new Set<string>();
    for (const entry of this.index.manifests) {
      const refName = refNameOf(entry);
      if (refName?.startsWith(tagPrefix) && ATTACHMENT_TAG_RE.test(refName)) {
        const { [REF_NAME_ANNOTATION]: _, ...rest } = entry.annotations ?? {};
        const descriptor: Descriptor = { ...entry };
        if (Object.keys(rest).length > 0) descriptor.annotations = rest;
        else delete descriptor.annotations;
        out.push({ tag: refName, descriptor });
        continue;
      }
      if (entry.digest === digest || seen.has(entry.digest)) continue;
      seen.add(entry.digest);
      const facts = manifestFacts(await readVerifiedBlob(this.dir, entry.digest, this.name));
      if (facts.subject !== digest) continue;
      const descriptor: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
      if (facts.artifactType) descriptor.artifactType = facts.artifactType;
      if (facts.annotations) descriptor.annotations = facts.annotations;
      out.push({ descriptor });
    }
    return out;
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

/**
 * Picks the entry REF names, or without REF the only image in the layout (ignoring attachments: tag-schema
 * entries and referrers), failing like skopeo when there are several.
 */
async function resolveTop(dir: string, index: LayoutIndex, ref: string | undefined, subject: string) {
  if (ref !== undefined) {
    const hit = index.manifests.find((m) => refNameOf(m) === ref);
    if (!hit)
      throw new GantryError('NOT_FOUND', `no image named ${JSON.stringify(ref)} in OCI layout ${dir}`, {
        subject,
      });
    return hit;
  }
  let candidates = index.manifests.filter((m) => !ATTACHMENT_TAG_RE.test(refNameOf(m) ?? ''));
  if (candidates.length > 1) {
    const primaries: Descriptor[] = [];
    for (const c of candidates) {
      if (!manifestFacts(await readVerifiedBlob(dir, c.digest, subject)).subject) primaries.push(c);
    }
    candidates = primaries;
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0)
    throw new GantryError('NOT_FOUND', `OCI layout ${dir} holds no image`, { subject });
  throw new GantryError(
    'INVALID_REFERENCE',
    `OCI layout ${dir} holds several images; name one as oci:${dir}:REF`,
    {
      subject,
    },
  );
}

/** Opens `oci:DIR[:REF]` for reading. `onClose` lets wrappers (oci-archive) clean up after the source. */
export async function openOciLayoutSource(opts: {
  dir: string;
  ref?: string;
  name: string;
  onClose?: () => Promise<void>;
}): Promise<ImageSource> {
  const index = await readLayoutIndex(opts.dir, opts.name);
  if (!index) {
    throw new GantryError('NOT_FOUND', `${opts.dir} is not an OCI layout (no index.json)`, {
      subject: opts.name,
    });
  }
  const top = await resolveTop(opts.dir, index, opts.ref, opts.name);
  return new OciLayoutSource(opts.name, opts.dir, index, top, opts.onClose ?? (async () => undefined));
}

/**
 * Adds an index entry the way skopeo (containers/image) does: a named entry replaces older entries of the
 * same name; an entry whose digest matches an unnamed entry replaces that entry; otherwise it is appended.
 */
function addIndexEntry(manifests: Descriptor[], entry: Descriptor): Descriptor[] {
  const name = refNameOf(entry);
  let out = name ? manifests.filter((m) => refNameOf(m) !== name) : [...manifests];
  const unnamedSame = out.findIndex((m) => m.digest === entry.digest && !refNameOf(m));
  if (unnamedSame >= 0) {
    out = [...out];
    out[unnamedSame] = entry;
    return out;
  }
  return [...out, entry];
}

class OciLayoutDestination implements ImageDestination {
  /** Like skopeo's layout writer: OCI types only; the engine converts Docker manifests before writing. */
  readonly supportedManifestTypes: readonly string[] = [MediaType.ociManifest, MediaType.ociIndex];
  private readonly temps = new Set<string>();
  /** Blob files this destination created, removed on abort (they were never referenced by index.json). */
  private readonly created = new Set<string>();
  private readonly pending: Descriptor[] = [];
  private finished = false;

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly ref: string | undefined,
    private readonly createdDir: boolean,
  ) {}

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await fileSize(layoutBlobPath(this.dir, descriptor.digest))) === descriptor.size;
  }

  async putBlob(descriptor: Descriptor, open: BlobOpener): Promise<void> {
    assertDigest(descriptor.digest, this.name);
    if (await this.hasBlob(descriptor)) return;
    const path = layoutBlobPath(this.dir, descriptor.digest);
    await writeVerifiedBlob({ open, descriptor, path, subject: this.name, temps: this.temps });
    this.created.add(path);
  }

  async putManifest(manifest: RawManifest, options: PutManifestOptions = {}): Promise<void> {
    if (!this.supportedManifestTypes.includes(manifest.mediaType)) {
      throw new GantryError(
        'UNSUPPORTED_MEDIA_TYPE',
        `OCI layouts store OCI manifests, not ${manifest.mediaType}`,
        {
          subject: this.name,
        },
      );
    }
    const alg = digestAlgorithm(assertDigest(manifest.digest, this.name));
    assertBytesDigest(manifest.bytes, manifest.digest, this.name);
    const descriptor: Descriptor = {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.bytes.length,
    };
    const path = layoutBlobPath(this.dir, manifest.digest);
    if ((await fileSize(path)) !== descriptor.size) {
      await mkdir(join(this.dir, 'blobs', alg), { recursive: true });
      await writeFileAtomic(path, manifest.bytes);
      this.created.add(path);
    }
    const refName = options.tag ?? (options.primary ? this.ref : undefined);
    if (refName !== undefined) {
      this.pending.push({ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: refName } });
    } else if (options.primary || manifestFacts(manifest.bytes).subject) {
      // Referrers get an unnamed entry so listAttachments finds them again; plain children need none.
      this.pending.push(descriptor);
    }
  }

  async commit(): Promise<void> {
    if (this.finished)
      throw new GantryError('INTERNAL', 'destination already committed or aborted', { subject: this.name });
    // Re-read index.json so entries another writer added since we opened are kept.
    const index = (await readLayoutIndex(this.dir, this.name)) ?? { schemaVersion: 2, manifests: [] };
    let manifests = index.manifests;
    for (const entry of this.pending) manifests = addIndexEntry(manifests, entry);
    const next: LayoutIndex = { ...index, schemaVersion: 2, manifests };
    if ((await fileSize(join(this.dir, 'oci-layout'))) === undefined) {
      await writeFileAtomic(join(this.dir, 'oci-layout'), OCI_LAYOUT_FILE);
    }
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(next));
    this.finished = true;
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const paths = [...this.temps, ...this.created];
    await Promise.all(paths.map((p) => rm(p, { force: true })));
    if (this.createdDir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Opens `oci:DIR[:REF]` for writing; an existing layout is updated, a missing directory created. */
export async function openOciLayoutDestination(opts: {
  dir: string;
  ref?: string;
  name: string;
}): Promise<ImageDestination> {
  let createdDir = false;
  try {
    const s = await stat(opts.dir);
    if (!s.isDirectory()) {
      throw new GantryError('INVALID_ARGUMENT', `${opts.dir} exists and is not a directory`, {
        subject: opts.name,
      });
    }
    // Fail early on a corrupt index rather than after copying every blob.
    await readLayoutIndex(opts.dir, opts.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw asGantryError(err, 'IO', `opening ${opts.dir}`, opts.name);
    await mkdir(opts.dir, { recursive: true });
    createdDir = true;
  }
  return new OciLayoutDestination(opts.name, opts.dir, opts.ref, createdDir);
}
