/**
 * transports/dir: the `dir:DIR` transport as skopeo writes it — `manifest.json` (the top manifest), a `version`
 * file, blobs named by the hex of their digest, and index children as `<hex>.manifest.json`. Referrers are kept
 * as `<hex>.manifest.json` too and found again by their `subject`. Writing goes to a sibling staging directory
 * that replaces DIR on commit, so an aborted copy leaves DIR as it was.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import { asGantryError, GantryError } from '../errors/index.js';
import {
  ACCEPTED_MANIFEST_TYPES,
  assertDigest,
  type Descriptor,
  digestHex,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import {
  assertBytesDigest,
  fileSize,
  manifestFacts,
  openFileStream,
  readSmallFile,
  tempSuffix,
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

const VERSION_FILE = 'version';
const VERSION_TEXT = 'Directory Transport Version: 1.1\n';
const CHILD_SUFFIX = '.manifest.json';

class DirSource implements ImageSource {
  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly top: RawManifest,
  ) {}

  async getManifest(digest?: string): Promise<RawManifest> {
    if (digest === undefined || digest === this.top.digest) return this.top;
    assertDigest(digest, this.name);
    const path = join(this.dir, `${digestHex(digest)}${CHILD_SUFFIX}`);
    const bytes = await readSmallFile(path, this.name).catch((err: unknown) => {
      throw asGantryError(err, 'NOT_FOUND', `no manifest ${digest} in ${this.dir}`, this.name);
    });
    assertBytesDigest(bytes, digest, this.name);
    return { bytes, mediaType: parseManifest(bytes, undefined, this.name).mediaType, digest };
  }

  async getBlob(descriptor: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
    assertDigest(descriptor.digest, this.name);
    const stream = await openFileStream(join(this.dir, digestHex(descriptor.digest)), this.name, {
      start: options.offset ?? 0,
    });
    return options.signal ? addAbortSignal(options.signal, stream) : stream;
  }

  async listAttachments(digest: string): Promise<Attachment[]> {
    assertDigest(digest, this.name);
    const out: Attachment[] = [];
    for (const file of await readdir(this.dir)) {
      if (!file.endsWith(CHILD_SUFFIX)) continue;
      const bytes = await readSmallFile(join(this.dir, file), this.name);
      const facts = manifestFacts(bytes);
      if (facts.subject !== digest) continue;
      const descriptor: Descriptor = {
        mediaType: parseManifest(bytes, undefined, this.name).mediaType,
        digest: sha256Digest(bytes),
        size: bytes.length,
      };
      if (facts.artifactType) descriptor.artifactType = facts.artifactType;
      if (facts.annotations) descriptor.annotations = facts.annotations;
      out.push({ descriptor });
    }
    return out;
  }

  async close(): Promise<void> {}
}

export async function openDirSource(opts: { dir: string; name: string }): Promise<ImageSource> {
  const bytes = await readSmallFile(join(opts.dir, 'manifest.json'), opts.name).catch((err: unknown) => {
    throw asGantryError(err, 'NOT_FOUND', `${opts.dir} is not a dir transport directory`, opts.name);
  });
  const { mediaType } = parseManifest(bytes, undefined, opts.name);
  return new DirSource(opts.name, opts.dir, { bytes, mediaType, digest: sha256Digest(bytes) });
}

class DirDestination implements ImageDestination {
  readonly supportedManifestTypes: readonly string[] = ACCEPTED_MANIFEST_TYPES;
  /** dir: holds one image; cosign tags and referrers have no place in its format. */
  readonly acceptsAttachments = false;
  private readonly temps = new Set<string>();
  private hasPrimary = false;
  private finished = false;

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly staging: string,
  ) {}

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await fileSize(join(this.staging, digestHex(descriptor.digest)))) === descriptor.size;
  }

  async putBlob(descriptor: Descriptor, open: BlobOpener): Promise<void> {
    assertDigest(descriptor.digest, this.name);
    if (await this.hasBlob(descriptor)) return;
    const path = join(this.staging, digestHex(descriptor.digest));
    await writeVerifiedBlob({ open, descriptor, path, subject: this.name, temps: this.temps });
  }

  async putManifest(manifest: RawManifest, options: PutManifestOptions = {}): Promise<void> {
    assertDigest(manifest.digest, this.name);
    assertBytesDigest(manifest.bytes, manifest.digest, this.name);
    if (options.tag !== undefined) {
      throw new GantryError(
        'UNSUPPORTED_MEDIA_TYPE',
        `dir: cannot store tag-schema attachment ${options.tag}; copy signatures to an OCI layout or registry`,
        { subject: this.name },
      );
    }
    const file = options.primary ? 'manifest.json' : `${digestHex(manifest.digest)}${CHILD_SUFFIX}`;
    await writeFileAtomic(join(this.staging, file), manifest.bytes);
    if (options.primary) this.hasPrimary = true;
  }

  async commit(): Promise<void> {
    if (this.finished)
      throw new GantryError('INTERNAL', 'destination already finished', { subject: this.name });
    if (!this.hasPrimary) {
      throw new GantryError('INTERNAL', 'commit without a primary manifest', { subject: this.name });
    }
    await writeFileAtomic(join(this.staging, VERSION_FILE), VERSION_TEXT);
    // Swap the staging directory into place; the old content (a previous dir copy, checked at open) goes last.
    const old = this.dir + tempSuffix();
    let moved = false;
    try {
      await rename(this.dir, old);
      moved = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw asGantryError(err, 'IO', `replacing ${this.dir}`, this.name);
      }
    }
    try {
      await rename(this.staging, this.dir);
    } catch (err) {
      if (moved) await rename(old, this.dir).catch(() => undefined);
      throw asGantryError(err, 'IO', `replacing ${this.dir}`, this.name);
    }
    this.finished = true;
    if (moved) await rm(old, { recursive: true, force: true });
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await rm(this.staging, { recursive: true, force: true });
  }
}

/**
 * Opens `dir:DIR` for writing. Like skopeo, an existing DIR is only replaced when it is empty or already a dir
 * transport directory (has a `version` file); anything else is refused rather than deleted.
 */
export async function openDirDestination(opts: { dir: string; name: string }): Promise<ImageDestination> {
  try {
    const s = await stat(opts.dir);
    if (!s.isDirectory()) {
      throw new GantryError('INVALID_ARGUMENT', `${opts.dir} exists and is not a directory`, {
        subject: opts.name,
      });
    }
    const entries = await readdir(opts.dir);
    if (entries.length > 0 && !entries.includes(VERSION_FILE)) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `${opts.dir} is a non-empty directory that is not a dir transport copy; refusing to overwrite it`,
        { subject: opts.name },
      );
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw asGantryError(err, 'IO', `opening ${opts.dir}`, opts.name);
  }
  await mkdir(dirname(opts.dir), { recursive: true });
  const staging = join(dirname(opts.dir), `.${basename(opts.dir)}${tempSuffix()}`);
  await mkdir(staging);
  return new DirDestination(opts.name, opts.dir, staging);
}
