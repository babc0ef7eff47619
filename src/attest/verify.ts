/**
 * attest/verify: `gantry verify-attestation` as a library call. Finds an image's attestations in both forms
 * (cosign's `.att` manifest and sigstore bundle referrers, whoever wrote them), and checks each: the DSSE
 * signature (a public key, or a keyless certificate for an identity and issuer), that the in-toto statement is
 * about this image's digest, and its predicate type. Every attestation gets a verdict with its own reason.
 */
import type { KeyObject } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import { type ErrorCode, GantryError, isGantryError } from '../errors/index.js';
import { checkBundleWithKey } from '../sign/bundle.js';
import { BundleAnnotation, COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_PAYLOAD_TYPE } from '../sign/constants.js';
import { checkBundleKeyless, type KeylessIdentity, type KeylessPolicy } from '../sign/keyless.js';
import { legacyTag } from '../sign/store.js';
import type { SignatureStore, SignedImage } from '../sign/types.js';
import { bundleFromLegacyLayer } from './legacy.js';
import { parseStatement, type Statement, statementNamesDigest } from './statement.js';

export type AttestationForm = 'legacy' | 'bundle';

/** Who must have signed: the holder of a key, or a keyless identity certified by a trusted root's Fulcio. */
export type AttestationTrust =
  | { kind: 'key'; publicKey: KeyObject }
  | { kind: 'keyless'; policy: KeylessPolicy };

export type AttestationRejectReason =
  /** Not a DSSE envelope, bundle or in-toto statement gantry can read. */
  | 'invalid-payload'
  /** Signed with another key (the bundle's key hint differs), or keyless where a key was expected. */
  | 'wrong-key'
  /** The signature does not verify: the statement was altered after signing (or, without a key hint, another key). */
  | 'bad-signature'
  /** The keyless certificate does not chain to the trusted root. */
  | 'untrusted-certificate'
  /** The keyless certificate names another identity or OIDC issuer. */
  | 'wrong-signer'
  /** The statement is about another digest: an attestation copied from another image. */
  | 'wrong-subject'
  /** The statement's predicate type is not the one asked for. */
  | 'wrong-type';

export interface VerifyAttestationsOptions {
  store: SignatureStore;
  image: SignedImage;
  trust: AttestationTrust;
  /** The predicate type URI required (see predicateTypeFor); undefined accepts any. */
  predicateType?: string;
  /** Default both. */
  forms?: readonly AttestationForm[];
}

export interface VerifiedAttestation {
  form: AttestationForm;
  /** `sha256-<hex>.att[i]` or the bundle referrer's digest. */
  source: string;
  predicateType: string;
  statement: Statement;
  /** For keyless attestations: the certificate's identity and issuer. */
  signer?: KeylessIdentity;
}

export interface RejectedAttestation {
  form: AttestationForm;
  source: string;
  reason: AttestationRejectReason;
  message: string;
}

export interface VerifyAttestationsResult {
  digest: string;
  verified: VerifiedAttestation[];
  rejected: RejectedAttestation[];
}

type Verdict =
  | { ok: true; statement: Statement; signer?: KeylessIdentity }
  | { ok: false; reason: AttestationRejectReason; message: string };

export async function verifyAttestations(
  options: VerifyAttestationsOptions,
): Promise<VerifyAttestationsResult> {
  const forms = options.forms ?? ['legacy', 'bundle'];
  const digest = options.image.descriptor.digest;
  const result: VerifyAttestationsResult = { digest, verified: [], rejected: [] };
  const record = (form: AttestationForm, source: string, verdict: Verdict): void => {
    if (verdict.ok) {
      const verified: VerifiedAttestation = {
        form,
        source,
        predicateType: verdict.statement.predicateType,
        statement: verdict.statement,
      };
      if (verdict.signer) verified.signer = verdict.signer;
      result.verified.push(verified);
    } else {
      result.rejected.push({ form, source, reason: verdict.reason, message: verdict.message });
    }
  };
  if (forms.includes('legacy')) {
    const tag = legacyTag(digest, 'att');
    const layers = await options.store.readLegacy(options.image, 'att');
    layers.forEach((layer, i) => {
      const source = `${tag}[${i}]`;
      let bundle: SerializedBundle;
      try {
        bundle = bundleFromLegacyLayer(layer, source);
      } catch (err) {
        record('legacy', source, { ok: false, reason: 'invalid-payload', message: describe(err) });
        return;
      }
      record('legacy', source, checkAttestation(bundle, options));
    });
  }
  if (forms.includes('bundle')) {
    for (const { descriptor, bundle } of await options.store.listBundles(options.image)) {
      // Image signatures share the bundle artifact type; they are `verify`'s, not attestations.
      if (descriptor.annotations?.[BundleAnnotation.predicateType] === COSIGN_SIGN_PREDICATE_TYPE) continue;
      if (!bundle.dsseEnvelope) continue;
      record('bundle', descriptor.digest, checkAttestation(bundle, options));
    }
  }
  return result;
}

/**
 * Throws unless an attestation verified: NO_SIGNATURES when there are none (or none of the type asked for);
 * UNTRUSTED_SIGNER when a key hint or certificate shows another signer and the rest merely fail to verify (a
 * `.att` layer carries no key id, so another key looks like a bad signature there); else SIGNATURE_INVALID.
 * The message lists every attestation's reason.
 */
export function assertAttestationsVerified(result: VerifyAttestationsResult, subject: string): void {
  if (result.verified.length > 0) return;
  if (result.rejected.length === 0) {
    throw new GantryError(
      'NO_SIGNATURES',
      'no attestations found (neither a .att tag nor sigstore bundle referrers)',
      { subject },
    );
  }
  const reasons = result.rejected.map((r) => `${r.form} ${r.source}: ${r.reason}: ${r.message}`);
  const all = (kinds: readonly AttestationRejectReason[]) =>
    result.rejected.every((r) => kinds.includes(r.reason));
  const otherSigner = result.rejected.some((r) => SIGNER_REASONS.includes(r.reason));
  let code: ErrorCode = 'SIGNATURE_INVALID';
  if (all(['wrong-type'])) code = 'NO_SIGNATURES';
  else if (otherSigner && all([...SIGNER_REASONS, 'bad-signature'])) code = 'UNTRUSTED_SIGNER';
  throw new GantryError(code, `no valid attestation:\n  ${reasons.join('\n  ')}`, { subject });
}

const SIGNER_REASONS: readonly AttestationRejectReason[] = [
  'wrong-key',
  'wrong-signer',
  'untrusted-certificate',
];

/** Signature first (nothing unsigned is read), then the statement's subject, then its predicate type. */
function checkAttestation(bundle: SerializedBundle, options: VerifyAttestationsOptions): Verdict {
  let payload: Buffer;
  let signer: KeylessIdentity | undefined;
  if (options.trust.kind === 'key') {
    const checked = checkBundleWithKey(bundle, options.trust.publicKey);
    if (!checked.ok) return checked;
    if (checked.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      return reject(
        'invalid-payload',
        `DSSE payload type is ${checked.payloadType}, not an in-toto statement`,
      );
    }
    payload = checked.payload;
  } else {
    const checked = checkBundleKeyless(bundle, options.trust.policy);
    if (!checked.ok) return checked;
    const envelope = bundle.dsseEnvelope;
    if (envelope?.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      return reject('invalid-payload', 'bundle holds no DSSE-wrapped in-toto statement');
    }
    payload = Buffer.from(envelope.payload, 'base64');
    signer = checked.signer;
  }
  let statement: Statement;
  try {
    statement = parseStatement(payload, 'attestation');
  } catch (err) {
    return reject('invalid-payload', describe(err));
  }
  const digest = options.image.descriptor.digest;
  if (!statementNamesDigest(statement, digest)) {
    const named = statement.subject.flatMap((s) =>
      Object.entries(s.digest ?? {}).map(([a, h]) => `${a}:${h}`),
    );
    return reject(
      'wrong-subject',
      `statement is about ${named.join(', ') || 'no digest'}, not this image (${digest}): an attestation copied from another image`,
    );
  }
  if (options.predicateType !== undefined && statement.predicateType !== options.predicateType) {
    return reject('wrong-type', `predicate type is ${statement.predicateType}, not ${options.predicateType}`);
  }
  return signer ? { ok: true, statement, signer } : { ok: true, statement };
}

function reject(reason: AttestationRejectReason, message: string): Verdict {
  return { ok: false, reason, message };
}

function describe(err: unknown): string {
  return isGantryError(err) || err instanceof Error ? err.message : String(err);
}
