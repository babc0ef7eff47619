/**
 * sign/sign: `signImage`, signing one image manifest in cosign's two storage forms: the legacy
 * `sha256-<hex>.sig` manifest (simple-signing payload, appended to what is there) and a sigstore bundle referrer
 * (DSSE in-toto statement). Resolves the reference to a digest first: signatures are always about a digest.
 */
import { GantryError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { formatImageReference, type ImageReference, manifestReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { type Logger, silentLogger } from '../util/log.js';
import { signStatementBundle } from './bundle.js';
import { Annotation, COSIGN_SIGN_PREDICATE_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from './constants.js';
import { type ImageClaim, signStatement, simpleSigningPayload } from './payload.js';
import { legacyTag, RegistrySignatureStore } from './store.js';
import type { KeyMaterial, LegacyLayer, SignatureStore, SignedImage, Signer } from './types.js';

export type SignatureFormat = 'legacy' | 'bundle' | 'both';

export interface SignImageOptions {
  client: RegistryClient;
  reference: ImageReference;
  signer: Signer;
  /** `optional` entries of the payload (cosign `--annotations`). */
  annotations?: Record<string, string>;
  /** Default 'both'. */
  format?: SignatureFormat;
  /** Default: a RegistrySignatureStore over `client`. */
  store?: SignatureStore;
  logger?: Logger;
}

export interface SignImageResult {
  /** `host/repo@digest` of the signed manifest. */
  reference: string;
  digest: string;
  /** The `.sig` tag and the digest of the signature manifest now under it. */
  legacy?: { tag: string; manifestDigest: string };
  /** The bundle referrer's manifest descriptor. */
  bundle?: Descriptor;
}

export async function signImage(options: SignImageOptions): Promise<SignImageResult> {
  const format = options.format ?? 'both';
  const logger = options.logger ?? silentLogger;
  const store = options.store ?? new RegistrySignatureStore(options.client);
  const image = await resolveSignedImage(options.client, options.reference);
  const claim: ImageClaim = {
    dockerReference: dockerReference(options.reference),
    manifestDigest: image.descriptor.digest,
    annotations: options.annotations,
  };
  const result: SignImageResult = {
    reference: `${claim.dockerReference}@${claim.manifestDigest}`,
    digest: claim.manifestDigest,
  };
  if (format === 'legacy' || format === 'both') {
    const payload = simpleSigningPayload(claim);
    const signed = await options.signer.sign(payload);
    const layer: LegacyLayer = {
      mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
      content: payload,
      annotations: {
        [Annotation.signature]: signed.signature.toString('base64'),
        ...certificateAnnotations(signed.keyMaterial),
      },
    };
    const tag = legacyTag(claim.manifestDigest, 'sig');
    const manifestDigest = await store.appendLegacy(image, 'sig', [layer]);
    result.legacy = { tag, manifestDigest };
    logger.info(`Signed ${result.reference}: legacy signature under tag ${tag}`);
  }
  if (format === 'bundle' || format === 'both') {
    const bundle = await signStatementBundle(options.signer, signStatement(claim));
    result.bundle = await store.putBundle(image, bundle, {
      content: 'dsse-envelope',
      predicateType: COSIGN_SIGN_PREDICATE_TYPE,
    });
    logger.info(`Signed ${result.reference}: sigstore bundle referrer ${result.bundle.digest}`);
  }
  return result;
}

/** The manifest a reference names, as a SignedImage (one HEAD request). */
export async function resolveSignedImage(
  client: RegistryClient,
  reference: ImageReference,
): Promise<SignedImage> {
  const repo = { registry: reference.registry, repository: reference.repository };
  const head = await client.headManifest(repo, manifestReference(reference));
  if (!head) {
    throw new GantryError('NOT_FOUND', 'image not found', { subject: formatImageReference(reference) });
  }
  return { repo, descriptor: { mediaType: head.mediaType, digest: head.digest, size: head.size } };
}

/**
 * `host/repo` as cosign writes it into `critical.identity.docker-reference` (go-containerregistry's
 * Repository.Name(), which spells Docker Hub `index.docker.io`).
 */
export function dockerReference(reference: ImageReference): string {
  const registry = reference.registry === 'docker.io' ? 'index.docker.io' : reference.registry;
  return `${registry}/${reference.repository}`;
}

function certificateAnnotations(keyMaterial: KeyMaterial): Record<string, string> {
  if (keyMaterial.kind !== 'x509') return {};
  const [leaf, ...chain] = keyMaterial.certificateChainPem;
  const annotations: Record<string, string> = {};
  if (leaf) annotations[Annotation.certificate] = leaf;
  if (chain.length > 0) annotations[Annotation.chain] = chain.join('');
  return annotations;
}
