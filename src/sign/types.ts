/**
 * sign/types: the small contracts of gantry's signing core, shared by key-based signing (./keys.ts, ./sign.ts),
 * keyless signing (./keyless.ts) and attestations.
 *
 * STABLE — other modules may build on these now; later changes only add optional fields:
 *  - `Signer`, `SignatureResult`, `KeyMaterial`: what any signer (key file, keyless Fulcio) returns.
 *  - `SignedImage`: the manifest a signature is about, by digest.
 *  - `LegacyLayer`, `LegacySuffix`, `StoredBundle`, `BundleManifestOptions`, `SignatureStore`: reading and writing
 *    cosign's tag-schema manifests (`sha256-<hex>.sig` / `.att`) and sigstore bundle referrers of a digest.
 *    The registry implementation is `RegistrySignatureStore` in ./store.ts.
 * Constants for media types and annotation keys live in ./constants.ts.
 */
import type { SerializedBundle } from '@sigstore/bundle';
import type { Descriptor } from '../oci/index.js';
import type { RepoLocation } from '../registry/types.js';

/** How a verifier finds the key: a PEM public key, or an X.509 chain (leaf first) for keyless signatures. */
export type KeyMaterial =
  | { kind: 'publicKey'; publicKeyPem: string }
  | { kind: 'x509'; certificateChainPem: string[] };

export interface SignatureResult {
  /** DER-encoded ECDSA signature (what cosign stores base64-encoded). */
  signature: Buffer;
  keyMaterial: KeyMaterial;
}

/** Signs bytes as they are (ECDSA P-256 over their SHA-256 digest); the signer hashes, callers never do. */
export interface Signer {
  sign(data: Buffer): Promise<SignatureResult>;
}

/** The image a signature is about: one manifest, by digest, in one repository. */
export interface SignedImage {
  repo: RepoLocation;
  /** The manifest's descriptor (mediaType, digest, size): bundle referrers name it as their `subject`. */
  descriptor: Descriptor;
}

/** cosign's tag-schema suffixes: `.sig` for signatures, `.att` for attestations. */
export type LegacySuffix = 'sig' | 'att';

/**
 * One layer of a cosign tag-schema manifest: the blob (a simple-signing payload for `.sig`, a DSSE envelope for
 * `.att`) and its annotations (`dev.cosignproject.cosign/signature`, `dev.sigstore.cosign/certificate`, `/chain`,
 * `/bundle`, `predicateType`, …).
 */
export interface LegacyLayer {
  mediaType: string;
  content: Buffer;
  annotations: Record<string, string>;
}

/** A sigstore bundle stored as an OCI referrer of an image. */
export interface StoredBundle {
  /** The referrer manifest's descriptor, with the annotations the referrers listing shows. */
  descriptor: Descriptor;
  bundle: SerializedBundle;
}

/** Manifest annotations of a bundle referrer, as cosign writes them (see cosign's specs/BUNDLE_SPEC.md). */
export interface BundleManifestOptions {
  /** `dev.sigstore.bundle.content`: what the bundle holds. */
  content: 'message-signature' | 'dsse-envelope';
  /** `dev.sigstore.bundle.predicateType`, for DSSE-wrapped in-toto statements. */
  predicateType?: string;
  /** `org.opencontainers.image.created`; default: now. */
  created?: Date;
}

/** Reads and writes the signatures and attestations attached to one image digest. */
export interface SignatureStore {
  /** The layers of `sha256-<hex>.<suffix>`, oldest first; [] when the tag does not exist. */
  readLegacy(image: SignedImage, suffix: LegacySuffix): Promise<LegacyLayer[]>;
  /**
   * Appends layers to `sha256-<hex>.<suffix>` (creating it), skipping layers already there with the same blob and
   * annotations, as cosign does. Returns the digest of the manifest now under the tag.
   */
  appendLegacy(image: SignedImage, suffix: LegacySuffix, layers: readonly LegacyLayer[]): Promise<string>;
  /** Sigstore bundles attached as referrers (artifactType `application/vnd.dev.sigstore.bundle.v0.3+json`). */
  listBundles(image: SignedImage): Promise<StoredBundle[]>;
  /** Pushes a bundle as a referrer of the image (referrers API, or the fallback tag); returns its descriptor. */
  putBundle(
    image: SignedImage,
    bundle: SerializedBundle,
    options: BundleManifestOptions,
  ): Promise<Descriptor>;
}
