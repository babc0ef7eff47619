/**
 * sign/verify: `verifyImage`, checking an image's signatures — with a key, or keyless against a trusted root and
 * an expected identity and issuer — in both storage forms (cosign's legacy `.sig` manifest and sigstore bundle
 * referrers, whoever wrote them) and reporting every signature it found with its verdict. `assertVerified` turns
 * a result without a valid signature into one GantryError naming each reason.
 */
import type { KeyObject } from 'node:crypto';
import { GantryError } from '../errors/index.js';
import type { ImageReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import {
  type Claims,
  checkKeylessLegacyLayer,
  checkKeylessSignatureBundle,
  checkLegacyLayer,
  checkSignatureBundle,
  type Expectation,
  type RejectReason,
  type Verdict,
} from './checks.js';
import { BundleAnnotation, COSIGN_SIGN_PREDICATE_TYPE } from './constants.js';
import type { KeylessIdentity, KeylessPolicy } from './keyless.js';
import { dockerReference, resolveSignedImage } from './sign.js';
import { legacyTag, RegistrySignatureStore } from './store.js';
import type { LegacyLayer, SignatureStore } from './types.js';

export type StoredForm = 'legacy' | 'bundle';

/** Who must have signed: the holder of a public key, or (keyless) a certificate identity and issuer. */
export type VerifyImageOptions = VerifyImageCommon &
  ({ publicKey: KeyObject; keyless?: undefined } | { keyless: KeylessPolicy; publicKey?: undefined });

export interface VerifyImageCommon {
  client: RegistryClient;
  reference: ImageReference;
  /** `optional` entries every accepted signature must carry with these values. */
  annotations?: Record<string, string>;
  /** The `host/repo` payloads must name; default: the verified image's repository (e.g. a mirror's source). */
  identity?: string;
  /** Default both. */
  forms?: readonly StoredForm[];
  store?: SignatureStore;
}

export interface VerifiedSignature {
  form: StoredForm;
  /** The `.sig` tag (with the layer's position) or the bundle referrer's digest. */
  source: string;
  claims: Claims;
  /** Keyless signatures: the certificate's identity and OIDC issuer. */
  signer?: KeylessIdentity;
}

export interface RejectedSignature {
  form: StoredForm;
  source: string;
  reason: RejectReason;
  message: string;
}

export interface VerifyImageResult {
  reference: string;
  digest: string;
  verified: VerifiedSignature[];
  rejected: RejectedSignature[];
}

export async function verifyImage(options: VerifyImageOptions): Promise<VerifyImageResult> {
  const forms = options.forms ?? ['legacy', 'bundle'];
  const store = options.store ?? new RegistrySignatureStore(options.client);
  const image = await resolveSignedImage(options.client, options.reference);
  const expected: Expectation = {
    manifestDigest: image.descriptor.digest,
    dockerReference: options.identity ?? dockerReference(options.reference),
    annotations: options.annotations ?? {},
  };
  const result: VerifyImageResult = {
    reference: `${dockerReference(options.reference)}@${expected.manifestDigest}`,
    digest: expected.manifestDigest,
    verified: [],
    rejected: [],
  };
  const record = (form: StoredForm, source: string, verdict: Verdict): void => {
    if (!verdict.ok) {
      result.rejected.push({ form, source, reason: verdict.reason, message: verdict.message });
      return;
    }
    const verified: VerifiedSignature = { form, source, claims: verdict.claims };
    if (verdict.signer) verified.signer = verdict.signer;
    result.verified.push(verified);
  };
  const checkLayer = (layer: LegacyLayer, source: string): Verdict =>
    options.keyless
      ? checkKeylessLegacyLayer(layer, options.keyless, expected, source)
      : checkLegacyLayer(layer, options.publicKey, expected);
  if (forms.includes('legacy')) {
    const tag = legacyTag(expected.manifestDigest, 'sig');
    const layers = await store.readLegacy(image, 'sig');
    layers.forEach((layer, i) => {
      const source = `${tag}[${i}]`;
      record('legacy', source, checkLayer(layer, source));
    });
  }
  if (forms.includes('bundle')) {
    for (const { descriptor, bundle } of await store.listBundles(image)) {
      // Attestation bundles share the artifact type; only image signatures are verified here.
      const predicateType = descriptor.annotations?.[BundleAnnotation.predicateType];
      if (predicateType !== undefined && predicateType !== COSIGN_SIGN_PREDICATE_TYPE) continue;
      const verdict = options.keyless
        ? checkKeylessSignatureBundle(bundle, options.keyless, expected)
        : checkSignatureBundle(bundle, options.publicKey, expected);
      record('bundle', descriptor.digest, verdict);
    }
  }
  return result;
}

/** Sound signatures from someone else: another key, keyless identity or issuer, CA, or repository. */
const SIGNER_REASONS: readonly RejectReason[] = [
  'wrong-key',
  'wrong-signer',
  'untrusted-certificate',
  'wrong-identity',
];

/**
 * Throws unless at least one signature verified: NO_SIGNATURES when there were none, UNTRUSTED_SIGNER when every
 * signature is sound but from another key, keyless signer or CA, or for another repository, else
 * SIGNATURE_INVALID; the message lists each signature's reason.
 */
export function assertVerified(result: VerifyImageResult): void {
  if (result.verified.length > 0) return;
  if (result.rejected.length === 0) {
    throw new GantryError(
      'NO_SIGNATURES',
      'no signatures found (neither a .sig tag nor sigstore bundle referrers)',
      {
        subject: result.reference,
      },
    );
  }
  const untrusted = result.rejected.every((r) => SIGNER_REASONS.includes(r.reason));
  const reasons = result.rejected.map((r) => `${r.form} ${r.source}: ${r.reason}: ${r.message}`);
  throw new GantryError(
    untrusted ? 'UNTRUSTED_SIGNER' : 'SIGNATURE_INVALID',
    `no valid signature:\n  ${reasons.join('\n  ')}`,
    {
      subject: result.reference,
    },
  );
}
