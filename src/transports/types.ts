/**
 * The contract between the copy engine and every transport (registry, OCI layout, OCI archive, Docker archive,
 * dir). One ImageSource and one ImageDestination per transport; the engine in src/copy is the only caller.
 *
 * Contract, in order of a copy:
 *  1. The engine reads the top manifest with `getManifest()`, then children of an index by digest.
 *  2. For each blob the engine asks `hasBlob` (which MAY mount across repositories) and otherwise calls
 *     `putBlob` with a function that opens the source stream at an offset. Streams the engine hands over are
 *     digest- and size-verified: they error at EOF on a mismatch. A destination MUST NOT make a blob visible
 *     unless its stream ended without error, and MUST discard partial data on error.
 *  3. `putManifest` for children first, the primary image last, then attachments (signatures, referrers).
 *  4. `commit()` makes the result visible (writes index.json, finishes an archive). On any failure the engine
 *     calls `abort()` instead, which MUST leave no half-written image behind.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, RawManifest } from '../oci/index.js';

/** Where a registry-backed source lives, so a destination on the same registry can mount instead of copy. */
export interface RegistryLocation {
  registry: string;
  repository: string;
}

/** A manifest attached to an image: a cosign tag-schema artifact or an OCI referrer. */
export interface Attachment {
  /** For cosign's tag schema (`sha256-<hex>.sig|.att|.sbom`): the tag it lives under. Absent for referrers. */
  tag?: string;
  /** Descriptor of the attached manifest. */
  descriptor: Descriptor;
}

export interface GetBlobOptions {
  /** Start reading at this byte offset (used to resume an interrupted transfer). */
  offset?: number;
  signal?: AbortSignal;
}

export interface ImageSource {
  /** The reference as the user wrote it, for messages. */
  readonly name: string;
  readonly registryLocation?: RegistryLocation;
  /**
   * The manifest the reference names (no argument) or a manifest by digest (children of an index, attachments).
   * MUST return the exact stored bytes and MUST fail with DIGEST_MISMATCH if bytes fetched by digest do not hash
   * to it.
   */
  getManifest(digest?: string): Promise<RawManifest>;
  /** Streams a blob. Sources need not verify the content: the engine does, while streaming. */
  getBlob(descriptor: Descriptor, options?: GetBlobOptions): Promise<Readable>;
  /** Signatures, attestations, SBOMs and referrers attached to the manifest with this digest. */
  listAttachments(digest: string): Promise<Attachment[]>;
  close(): Promise<void>;
}

/** Opens the verified source stream of a blob at a byte offset; destinations call it again to resume. */
export type BlobOpener = (offset: number) => Promise<Readable>;

export interface HasBlobOptions {
  /** Source location to try a cross-repository mount from when the registry is the same. */
  mountFrom?: RegistryLocation;
}

export interface PutManifestOptions {
  /**
   * `primary`: the image the destination reference names; the destination applies its own tag (if any).
   * `tag`: an explicit tag (cosign tag-schema attachments). Neither: stored by digest only.
   */
  primary?: boolean;
  tag?: string;
}

export interface ImageDestination {
  readonly name: string;
  /** Manifest media types this destination can store. */
  readonly supportedManifestTypes: readonly string[];
  /**
   * False for formats that cannot hold signatures, attestations or referrers (docker-archive, dir): the engine
   * then leaves them out and says so. Absent means true.
   */
  readonly acceptsAttachments?: boolean;
  /** Whether a blob is already present (after a successful mount, too). MUST NOT throw for "absent". */
  hasBlob(descriptor: Descriptor, options?: HasBlobOptions): Promise<boolean>;
  /** Stores one blob from a verified stream; see the contract above. */
  putBlob(descriptor: Descriptor, open: BlobOpener): Promise<void>;
  putManifest(manifest: RawManifest, options?: PutManifestOptions): Promise<void>;
  /**
   * Optional: the digest stored under `reference` (a tag or a digest; default: the destination's own name), or
   * undefined. Lets the engine skip images and attachments that are already there with one request each.
   */
  storedDigest?(reference?: string): Promise<string | undefined>;
  /** Makes the written image visible. */
  commit(): Promise<void>;
  /** Discards whatever was written; safe to call after a partial failure. */
  abort(): Promise<void>;
}
