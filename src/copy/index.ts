/**
 * copy: the one copy engine over every transport. It reads the source's manifests, picks platforms, copies each
 * blob once (skipping what the destination has, mounting within a registry, streaming and verifying everything
 * else), converts manifests only when asked, writes children before parents and the named image last, carries
 * signatures/attestations/SBOMs/referrers along, and commits — or aborts so nothing half-written is visible.
 */
import { pipeline } from 'node:stream';
import pLimit from 'p-limit';
import { GantryError } from '../errors/index.js';
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageIndex,
  type ImageManifest,
  isIndex,
  MediaType,
  type Platform,
  parseManifest,
  platformMatches,
  type RawManifest,
} from '../oci/index.js';
import type { Attachment, ImageDestination, ImageSource } from '../transports/types.js';
import { type Logger, silentLogger } from '../util/log.js';
import { VerifyingStream } from '../util/verify-stream.js';
import { convertImageManifest, convertIndex, formatOf, type ManifestFormat } from './convert.js';
import type { BlobOutcome, CopyProgress } from './progress.js';

export type { ManifestFormat } from './convert.js';
export type { BlobOutcome, CopyProgress } from './progress.js';

export interface CopyOptions {
  /** Copy every image of an index (default: only the image for `platform`, or the host's platform). */
  all?: boolean;
  /** Pick this platform from an index. */
  platform?: Platform;
  /** Convert manifests to this format; digests change. Default: keep bytes as they are. */
  format?: ManifestFormat;
  /** Do not copy signatures, attestations, SBOMs and referrers. */
  removeSignatures?: boolean;
  /** Store the image by digest only, without the destination's tag (e.g. children for `manifest create`). */
  untagged?: boolean;
  /** Parallel transfers of blobs over 1 MiB (default 6); smaller blobs have as many slots of their own. */
  concurrency?: number;
  logger?: Logger;
  progress?: CopyProgress;
}

export interface CopyResult {
  /** Digest of the manifest written under the destination's name. */
  digest: string;
  mediaType: string;
  blobs: Record<BlobOutcome, number>;
  bytesCopied: number;
  manifests: number;
  attachments: number;
}

const FOREIGN_LAYER_TYPES = new Set([
  MediaType.dockerForeignLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
]);

/** Blobs up to this size (configs, small layers) have as many transfer slots again, of their own. */
const SMALL_BLOB_BYTES = 1 << 20;

/** Copies the image `source` names to `destination`; see the module comment for the order of writes. */
export async function copyImage(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const run = new CopyRun(source, destination, options);
  try {
    const result = await run.copy();
    await destination.commit();
    return result;
  } catch (err) {
    await destination.abort().catch((abortErr: unknown) => {
      run.logger.warn(`cleaning up ${destination.name} failed: ${String(abortErr)}`);
    });
    throw err;
  }
}

class CopyRun {
  readonly logger: Logger;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly smallLimit: ReturnType<typeof pLimit>;
  /** Blob copies by digest, so a layer shared by several images is transferred once. */
  private readonly blobs = new Map<string, Promise<void>>();
  private readonly counts: Record<BlobOutcome, number> = { copied: 0, skipped: 0 };
  /** Set when a manifest was converted, so signatures over the old digests no longer apply. */
  private digestsChanged = false;
  private bytesCopied = 0;
  private manifests = 0;
  private attachments = 0;
  /** The digest the destination's name pointed at before the copy (see copy()). */
  private stored: Promise<string | undefined> | undefined;

  constructor(
    private readonly source: ImageSource,
    private readonly destination: ImageDestination,
    private readonly options: CopyOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.limit = pLimit(Math.max(1, options.concurrency ?? 6));
    this.smallLimit = pLimit(Math.max(1, options.concurrency ?? 6));
  }

  async copy(): Promise<CopyResult> {
    // What the destination's name points at is asked while the source manifest downloads: for an image the
    // destination already has (re-runs, mirrors) these round trips are most of the command's time.
    this.stored = this.options.untagged ? undefined : this.destination.storedDigest?.();
    this.stored?.catch(() => undefined);
    const top = await this.source.getManifest();
    const { manifest } = parseManifest(top.bytes, top.mediaType, this.source.name);
    let written: RawManifest;
    let attachments: Map<string, Promise<Attachment[]>>;
    if (isIndex(manifest) && this.options.all) {
      attachments = this.listAttachments([...manifest.manifests.map((d) => d.digest), top.digest]);
      written = (await this.alreadyThere(top)) ? top : (await this.copyIndex(top, manifest)).written;
    } else {
      const raw = isIndex(manifest)
        ? await this.source.getManifest(this.selectPlatform(manifest).digest)
        : top;
      attachments = this.listAttachments([raw.digest]);
      written = (await this.alreadyThere(raw))
        ? raw
        : await this.copyImageManifest(raw, { primary: !this.options.untagged });
    }
    await this.copyAttachments(attachments);
    return {
      digest: written.digest,
      mediaType: written.mediaType,
      blobs: { ...this.counts },
      bytesCopied: this.bytesCopied,
      manifests: this.manifests,
      attachments: this.attachments,
    };
  }

  /**
   * True when the destination's name already points at exactly this manifest and no conversion is asked for:
   * then nothing but attachments can be missing (blobs of a stored manifest are stored too).
   */
  private async alreadyThere(raw: RawManifest): Promise<boolean> {
    if (!this.stored) return false;
    if (this.targetFormat(raw.mediaType) !== formatOf(raw.mediaType)) return false;
    if ((await this.stored) !== raw.digest) return false;
    this.logger.info(`${this.destination.name} already has ${raw.digest}; no blobs to copy`);
    return true;
  }

  private selectPlatform(index: ImageIndex): Descriptor {
    const want = this.options.platform ?? hostPlatform();
    const match = index.manifests.find((d) => platformMatches(want, d.platform));
    if (!match) {
      const available = index.manifests
        .map((d) => (d.platform ? formatPlatform(d.platform) : 'unknown'))
        .join(', ');
      throw new GantryError(
        'NO_MATCHING_PLATFORM',
        `no image for ${formatPlatform(want)} in the index (has: ${available}); use --platform or --all`,
        { subject: this.source.name },
      );
    }
    return match;
  }

  private async copyIndex(
    raw: RawManifest,
    index: ImageIndex,
  ): Promise<{ written: RawManifest; copiedDigests: string[] }> {
    const format = this.targetFormat(raw.mediaType);
    const children = new Map<string, Descriptor>();
    // Children are independent; blob transfers inside them share the one concurrency limit.
    await Promise.all(
      index.manifests.map(async (descriptor) => {
        const childRaw = await this.source.getManifest(descriptor.digest);
        const written = await this.copyImageManifest(childRaw, { primary: false, format });
        children.set(descriptor.digest, {
          ...descriptor,
          mediaType: written.mediaType,
          digest: written.digest,
          size: written.bytes.length,
        });
      }),
    );
    const written = convertIndex(raw, index, format, children);
    if (written.digest !== raw.digest) this.digestsChanged = true;
    this.ensureSupported(written.mediaType);
    await this.destination.putManifest(written, { primary: !this.options.untagged });
    this.manifests++;
    this.options.progress?.manifestWritten?.(written.digest, 'index');
    return { written, copiedDigests: [...index.manifests.map((d) => d.digest), raw.digest] };
  }

  /** Copies one image (config + layers + manifest); returns the manifest as written. */
  private async copyImageManifest(
    raw: RawManifest,
    options: { primary: boolean; format?: ManifestFormat; tag?: string },
  ): Promise<RawManifest> {
    const parsed = parseManifest(raw.bytes, raw.mediaType, this.source.name);
    if (isIndex(parsed.manifest)) {
      // An attachment may itself be an index (e.g. an attestation list); copy its children as they are.
      for (const child of parsed.manifest.manifests) {
        await this.copyImageManifest(await this.source.getManifest(child.digest), { primary: false });
      }
      await this.destination.putManifest(raw, { primary: options.primary, tag: options.tag });
      this.manifests++;
      return raw;
    }
    const manifest = parsed.manifest as ImageManifest;
    const format = options.format ?? this.targetFormat(raw.mediaType);
    const written = convertImageManifest(raw, manifest, format, this.source.name);
    if (written.digest !== raw.digest) this.digestsChanged = true;
    this.ensureSupported(written.mediaType);
    const blobs = [manifest.config, ...manifest.layers.filter((l) => !FOREIGN_LAYER_TYPES.has(l.mediaType))];
    // Largest first: when layers outnumber the transfer slots, the long transfers should not start last.
    blobs.sort((a, b) => b.size - a.size);
    await Promise.all(blobs.map((blob) => this.copyBlob(blob)));
    await this.destination.putManifest(written, { primary: options.primary, tag: options.tag });
    this.manifests++;
    this.options.progress?.manifestWritten?.(written.digest, options.tag ? 'attachment' : 'image');
    return written;
  }

  private targetFormat(mediaType: string): ManifestFormat {
    if (this.options.format) return this.options.format;
    const own = formatOf(mediaType);
    if (this.destination.supportedManifestTypes.includes(mediaType)) return own;
    // The destination cannot store this type (e.g. docker-archive and OCI): convert to what it takes.
    return own === 'oci' ? 'v2s2' : 'oci';
  }

  private ensureSupported(mediaType: string): void {
    if (!this.destination.supportedManifestTypes.includes(mediaType)) {
      throw new GantryError('UNSUPPORTED_MEDIA_TYPE', `cannot store manifests of type ${mediaType}`, {
        subject: this.destination.name,
      });
    }
  }

  private copyBlob(descriptor: Descriptor): Promise<void> {
    let pending = this.blobs.get(descriptor.digest);
    if (!pending) {
      // A config or tiny layer is a few round trips, not bandwidth: it must not wait for a transfer slot
      // behind the big layers (a 6-layer image's config took the 6th layer's slot: +25% copy time).
      const limit = descriptor.size <= SMALL_BLOB_BYTES ? this.smallLimit : this.limit;
      pending = limit(() => this.transferBlob(descriptor));
      this.blobs.set(descriptor.digest, pending);
    }
    return pending;
  }

  private async transferBlob(descriptor: Descriptor): Promise<void> {
    const progress = this.options.progress;
    progress?.blobStarted?.(descriptor);
    const mountFrom = this.source.registryLocation;
    if (await this.destination.hasBlob(descriptor, mountFrom ? { mountFrom } : {})) {
      this.counts.skipped++;
      progress?.blobFinished?.(descriptor, 'skipped');
      return;
    }
    await this.destination.putBlob(descriptor, async (offset) => {
      const stream = await this.source.getBlob(descriptor, { offset });
      const verifier = new VerifyingStream({
        digest: descriptor.digest,
        size: descriptor.size,
        offset,
        subject: this.source.name,
        onBytes: (received) => progress?.blobBytes?.(descriptor, received),
      });
      // pipeline destroys the verifier with the source's error, so the destination sees every failure.
      return pipeline(stream, verifier, () => {});
    });
    this.bytesCopied += descriptor.size;
    this.counts.copied++;
    progress?.blobFinished?.(descriptor, 'copied');
  }

  /** Copies what is attached to each copied manifest; refuses to if conversion changed the digests they sign. */
  /**
   * Starts listing the signatures, attestations and referrers of each digest (a few requests each) so they
   * are known by the time the image is copied; copyAttachments awaits them in order.
   */
  private listAttachments(digests: string[]): Map<string, Promise<Attachment[]>> {
    const listed = new Map<string, Promise<Attachment[]>>();
    if (this.options.removeSignatures) return listed;
    for (const digest of digests) {
      const list = this.source.listAttachments(digest);
      list.catch(() => undefined);
      listed.set(digest, list);
    }
    return listed;
  }

  private async copyAttachments(listed: Map<string, Promise<Attachment[]>>): Promise<void> {
    for (const [digest, list] of listed) {
      const attachments = await list;
      if (attachments.length === 0) continue;
      if (this.destination.acceptsAttachments === false) {
        this.logger.warn(
          `${attachments.length} signature(s)/attestation(s) of ${digest} not copied: ${this.destination.name} cannot hold them`,
        );
        continue;
      }
      if (this.digestsChanged) {
        throw new GantryError(
          'INVALID_ARGUMENT',
          `${attachments.length} signature(s)/attestation(s) sign ${digest}, which the format conversion replaces; add --remove-signatures to drop them`,
          { subject: this.source.name },
        );
      }
      for (const attachment of attachments) {
        // A tag-schema attachment already under its tag is done. Referrers are always re-put (small, and
        // putting one is what keeps a registry's referrers fallback index complete after an interrupted run).
        if (
          attachment.tag &&
          (await this.destination.storedDigest?.(attachment.tag)) === attachment.descriptor.digest
        ) {
          continue;
        }
        const raw = await this.source.getManifest(attachment.descriptor.digest);
        if (!this.destination.supportedManifestTypes.includes(raw.mediaType)) {
          this.logger.warn(
            `${this.destination.name} cannot hold ${attachment.tag ?? `referrer ${raw.digest}`} (${raw.mediaType}); not copied`,
          );
          continue;
        }
        await this.copyImageManifest(raw, {
          primary: false,
          tag: attachment.tag,
          format: formatOf(raw.mediaType),
        });
        this.attachments++;
      }
    }
  }
}
