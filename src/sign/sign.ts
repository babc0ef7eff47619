/**
 * sign/sign: `signImage`, signing one image manifest in cosign's two storage forms: the legacy
 * `sha256-<hex>.sig` manifest (simple-signing payload, appended to what is there) and a sigstore bundle referrer
 * (DSSE in-toto statement). Resolves the reference to a digest first: signatures are always about a digest.
 * Keyless signers come with witnesses (Rekor): the bundle carries their entries, the `.sig` layer cosign's
 * certificate, chain and Rekor bundle annotations.
 */
import { createHash } from 'node:crypto';
import { HashAlgorithm, TransparencyLogEntry } from '@sigstore/protobuf-specs';
import type { Witness } from '@sigstore/sign';
import { rekorBundleAnnotation } from '../attest/legacy.js';
import { GantryError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { formatImageReference, type ImageReference, manifestReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { type Logger, silentLogger } from '../util/log.js';
import { signingKeyText, signStatementBundle } from './bundle.js';
import { Annotation, COSIGN_SIGN_PREDICATE_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from './constants.js';
import { type ImageClaim, signStatement, simpleSigningPayload } from './payload.js';
import { legacyTag, RegistrySignatureStore } from './store.js';
import type {
  KeyMaterial,
  LegacyLayer,
  SignatureResult,
  SignatureStore,
  SignedImage,
  Signer,
} from './types.js';

export type SignatureFormat = 'legacy' | 'bundle' | 'both';

export interface SignImageOptions {
  client: RegistryClient;
  reference: ImageReference;
  signer: Signer;
  /** Transparency logs that countersign each signature (keyless: Rekor); none for key files. */
  witnesses?: readonly Witness[];
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
        ...(await rekorAnnotation(options.witnesses ?? [], payload, signed)),
      },
    };
    const tag = legacyTag(claim.manifestDigest, 'sig');
    const manifestDigest = await store.appendLegacy(image, 'sig', [layer]);
    result.legacy = { tag, manifestDigest };
    logger.info(`Signed ${result.reference}: legacy signature under tag ${tag}`);
  }
  if (format === 'bundle' || format === 'both') {
    const bundle = await signStatementBundle(options.signer, signStatement(claim), {
      witnesses: options.witnesses,
    });
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

/** cosign's certificate and chain annotations of a keyless `.sig` layer (the chain is empty when Fulcio sent none). */
function certificateAnnotations(keyMaterial: KeyMaterial): Record<string, string> {
  if (keyMaterial.kind !== 'x509') return {};
  const [leaf, ...chain] = keyMaterial.certificateChainPem;
  if (!leaf) throw new GantryError('INTERNAL', 'keyless signer returned no certificate');
  return { [Annotation.certificate]: leaf, [Annotation.chain]: chain.join('') };
}

/**
 * Records a `.sig` signature in the witnesses' transparency logs (a `hashedrekord` of the payload's SHA-256) and
 * returns cosign's `dev.sigstore.cosign/bundle` annotation for the first entry; none without witnesses.
 */
async function rekorAnnotation(
  witnesses: readonly Witness[],
  payload: Buffer,
  signed: SignatureResult,
): Promise<Record<string, string>> {
  if (witnesses.length === 0) return {};
  const content = {
    $case: 'messageSignature' as const,
    messageSignature: {
      messageDigest: {
        algorithm: HashAlgorithm.SHA2_256,
        digest: createHash('sha256').update(payload).digest(),
      },
      signature: signed.signature,
    },
  };
  const key = signingKeyText(signed.keyMaterial);
  const material = await Promise.all(witnesses.map((w) => w.testify(content, key)));
  const entry = material.flatMap((m) => m.tlogEntries ?? []).find((e) => e.inclusionPromise);
  if (!entry) throw new GantryError('INTERNAL', 'the transparency log returned no signed entry timestamp');
  const serialized = TransparencyLogEntry.toJSON(entry) as Parameters<typeof rekorBundleAnnotation>[0];
  return { [Annotation.rekorBundle]: rekorBundleAnnotation(serialized) };
}
