/**
 * transports/docker: `docker://host/repo[:tag][@digest]` — an image in a registry, read and written through the
 * registry client. Blobs stream straight between registries; nothing touches the local disk.
 */
import type { Readable } from 'node:stream';
import { GantryError } from '../errors/index.js';
import type { Descriptor, RawManifest } from '../oci/index.js';
import { formatImageReference, type ImageReference, manifestReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import type {
  Attachment,
  BlobOpener,
  GetBlobOptions,
  HasBlobOptions,
  ImageDestination,
  ImageSource,
  PutManifestOptions,
  RegistryLocation,
} from './types.js';

/** cosign's tag schema: `sha256-<hex>.sig` (signatures), `.att` (attestations), `.sbom` (SBOMs). */
const ATTACHMENT_SUFFIXES = ['sig', 'att', 'sbom'] as const;

export function attachmentTags(digest: string): string[] {
  const base = `${digest.replace(':', '-')}`;
  return ATTACHMENT_SUFFIXES.map((suffix) => `${base}.${suffix}`);
}

class RegistrySource implements ImageSource {
  readonly name: string;
  readonly registryLocation: RegistryLocation;
  private tags: Promise<Set<string>> | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: ImageReference,
  ) {
    this.name = formatImageReference(ref);
    this.registryLocation = { registry: ref.registry, repository: ref.repository };
  }

  getManifest(digest?: string): Promise<RawManifest> {
    return this.client.getManifest(this.registryLocation, digest ?? manifestReference(this.ref));
  }

  getBlob(descriptor: Descriptor, options?: GetBlobOptions): Promise<Readable> {
    return this.client.getBlob(this.registryLocation, descriptor, options);
  }

  async listAttachments(digest: string): Promise<Attachment[]> {
    // One tag listing per source serves every image of an index; HEADs only for tags that exist, all at once,
    // beside the referrers query (which then skips the fallback tag when it is not listed).
    this.tags ??= this.client.listTags(this.registryLocation).then((tags) => new Set(tags));
    const tags = await this.tags;
    const [tagged, referrers] = await Promise.all([
      Promise.all(
        attachmentTags(digest)
          .filter((tag) => tags.has(tag))
          .map(async (tag): Promise<Attachment | undefined> => {
            const head = await this.client.headManifest(this.registryLocation, tag);
            return head
              ? { tag, descriptor: { mediaType: head.mediaType, digest: head.digest, size: head.size } }
              : undefined;
          }),
      ),
      this.client.listReferrers(this.registryLocation, digest, { knownTags: tags }),
    ]);
    return [
      ...tagged.filter((a): a is Attachment => a !== undefined),
      ...referrers.map((descriptor) => ({ descriptor })),
    ];
  }

  async close(): Promise<void> {}
}

class RegistryDestination implements ImageDestination {
  readonly name: string;
  readonly supportedManifestTypes: readonly string[] = [
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ];
  private readonly location: RegistryLocation;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: ImageReference,
  ) {
    this.name = formatImageReference(ref);
    this.location = { registry: ref.registry, repository: ref.repository };
  }

  async hasBlob(descriptor: Descriptor, options?: HasBlobOptions): Promise<boolean> {
    const from = options?.mountFrom;
    if (from && from.registry === this.location.registry && from.repository !== this.location.repository) {
      if (await this.client.mountBlob(this.location, descriptor.digest, from.repository)) return true;
    }
    return this.client.hasBlob(this.location, descriptor.digest);
  }

  putBlob(descriptor: Descriptor, open: BlobOpener): Promise<void> {
    return this.client.uploadBlob(this.location, descriptor, open);
  }

  async putManifest(manifest: RawManifest, options?: PutManifestOptions): Promise<void> {
    let reference = options?.tag ?? manifest.digest;
    if (options?.primary) {
      if (this.ref.digest && this.ref.digest !== manifest.digest) {
        throw new GantryError(
          'DIGEST_MISMATCH',
          `destination names digest ${this.ref.digest} but the image to write is ${manifest.digest} (drop the digest or the conversion)`,
          { subject: this.name },
        );
      }
      reference = this.ref.tag ?? manifest.digest;
    }
    await this.client.putManifest(this.location, reference, manifest);
  }

  async storedDigest(reference?: string): Promise<string | undefined> {
    const head = await this.client.headManifest(this.location, reference ?? manifestReference(this.ref));
    return head?.digest;
  }

  /** Registries make manifests visible as they are put; the engine puts the primary one last. */
  async commit(): Promise<void> {}

  /** Failed uploads are cancelled by the client; untagged blobs left behind are garbage-collected by the registry. */
  async abort(): Promise<void> {}
}

export function openRegistrySource(client: RegistryClient, ref: ImageReference): ImageSource {
  return new RegistrySource(client, ref);
}

export function openRegistryDestination(client: RegistryClient, ref: ImageReference): ImageDestination {
  return new RegistryDestination(client, ref);
}
