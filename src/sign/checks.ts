/**
 * sign/checks: the pure verdicts of verification — does a signature verify with the key (or, keyless, come from
 * the expected identity and issuer through the trusted root), does its payload name the image's digest, the
 * expected repository and the required annotations. Each failure has its own reason so
 * tampering is reported precisely (payload altered, signature moved to another digest, wrong key, wrong identity).
 */
import { type KeyObject, verify as verifySignature } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import { bundleFromLegacyLayer } from '../attest/legacy.js';
import { isGantryError } from '../errors/index.js';
import { parseImageReference } from '../reference/index.js';
import { checkBundleWithKey } from './bundle.js';
import {
  Annotation,
  COSIGN_SIGN_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  SIMPLE_SIGNING_MEDIA_TYPE,
  SIMPLE_SIGNING_TYPE,
} from './constants.js';
import { checkBundleKeyless, type KeylessIdentity, type KeylessPolicy } from './keyless.js';
import { parseSimpleSigningPayload, parseStatement, statementDigests } from './payload.js';
import type { LegacyLayer } from './types.js';

export type RejectReason =
  /** The payload or bundle cannot be parsed, or is not an image signature. */
  | 'invalid-payload'
  /** A bundle names another key, or was made keyless where a key was given (or the reverse). */
  | 'wrong-key'
  /** Keyless: the certificate does not chain to the trusted root, lacks an SCT, or has no verified Rekor entry. */
  | 'untrusted-certificate'
  /** Keyless: the certificate names another identity or OIDC issuer. */
  | 'wrong-signer'
  /** The signature does not verify: content altered, or (legacy signatures carry no key id) another key. */
  | 'bad-signature'
  /** The payload signs another manifest digest: a signature copied onto another image. */
  | 'wrong-digest'
  /** The payload names another repository. */
  | 'wrong-identity'
  /** A required `-a k=v` annotation is missing or differs. */
  | 'missing-annotation';

export interface Expectation {
  manifestDigest: string;
  /** `host/repo` the payload must name. */
  dockerReference: string;
  annotations: Record<string, string>;
}

export interface Claims {
  /** The reference the payload names; undefined for cosign bundles, which name only a digest. */
  dockerReference: string | undefined;
  manifestDigest: string;
  annotations: Record<string, unknown>;
  type: string;
}

export type Verdict =
  | { ok: true; claims: Claims; signer?: KeylessIdentity }
  | { ok: false; reason: RejectReason; message: string };

/** Checks one layer of a `.sig` manifest with a public key. */
export function checkLegacyLayer(layer: LegacyLayer, publicKey: KeyObject, expected: Expectation): Verdict {
  if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
    return reject('invalid-payload', `layer type ${layer.mediaType} is not a simple-signing payload`);
  }
  const encoded = layer.annotations[Annotation.signature];
  if (!encoded) return reject('invalid-payload', `layer has no ${Annotation.signature} annotation`);
  const signature = Buffer.from(encoded, 'base64');
  let valid = false;
  try {
    valid = verifySignature('sha256', layer.content, { key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    valid = false;
  }
  if (!valid && layer.annotations[Annotation.certificate]) {
    return reject(
      'wrong-key',
      'signed keyless (with a Fulcio certificate), not with the given key; verify it by certificate identity',
    );
  }
  if (!valid) {
    return reject(
      'bad-signature',
      'signature does not verify with the given key: the payload was altered or another key signed it',
    );
  }
  return checkSimpleSigningPayload(layer.content, expected);
}

/**
 * Checks one layer of a `.sig` manifest signed keyless: rebuilt into a message-signature bundle (certificate and
 * Rekor annotations), verified against the trusted root and the expected signer, then its payload's claims.
 * `source` names the layer in messages.
 */
export function checkKeylessLegacyLayer(
  layer: LegacyLayer,
  policy: KeylessPolicy,
  expected: Expectation,
  source: string,
): Verdict {
  if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
    return reject('invalid-payload', `layer type ${layer.mediaType} is not a simple-signing payload`);
  }
  let bundle: SerializedBundle;
  try {
    bundle = bundleFromLegacyLayer(layer, source);
  } catch (err) {
    return reject('invalid-payload', describe(err));
  }
  const checked = checkBundleKeyless(bundle, policy, layer.content);
  if (!checked.ok) return checked;
  return withSigner(checkSimpleSigningPayload(layer.content, expected), checked.signer);
}

/** The claims of a verified simple-signing payload against what is expected. */
function checkSimpleSigningPayload(content: Buffer, expected: Expectation): Verdict {
  let payload: ReturnType<typeof parseSimpleSigningPayload>;
  try {
    payload = parseSimpleSigningPayload(content);
  } catch (err) {
    return reject('invalid-payload', describe(err));
  }
  if (payload.critical.type !== SIMPLE_SIGNING_TYPE) {
    return reject('invalid-payload', `payload type is ${JSON.stringify(payload.critical.type)}`);
  }
  return checkClaims(
    {
      dockerReference: payload.critical.identity['docker-reference'],
      manifestDigest: payload.critical.image['docker-manifest-digest'],
      annotations: payload.optional ?? {},
      type: payload.critical.type,
    },
    expected,
  );
}

/** Checks a sigstore bundle holding an image signature (in-toto statement, cosign's sign predicate) with a key. */
export function checkSignatureBundle(
  bundle: SerializedBundle,
  publicKey: KeyObject,
  expected: Expectation,
): Verdict {
  const checked = checkBundleWithKey(bundle, publicKey);
  if (!checked.ok) return checked;
  return checkSignStatement(checked.payloadType, checked.payload, expected);
}

/** Checks a keyless image-signature bundle: trusted root, Rekor entry and signer first, then the statement. */
export function checkKeylessSignatureBundle(
  bundle: SerializedBundle,
  policy: KeylessPolicy,
  expected: Expectation,
): Verdict {
  const checked = checkBundleKeyless(bundle, policy);
  if (!checked.ok) return checked;
  const envelope = bundle.dsseEnvelope;
  if (!envelope) return reject('invalid-payload', 'bundle holds no DSSE envelope');
  const payload = Buffer.from(envelope.payload, 'base64');
  return withSigner(checkSignStatement(envelope.payloadType, payload, expected), checked.signer);
}

/** The claims of a verified DSSE payload: an in-toto statement with cosign's image-signature predicate. */
function checkSignStatement(payloadType: string, payload: Buffer, expected: Expectation): Verdict {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return reject('invalid-payload', `DSSE payload type is ${payloadType}, not an in-toto statement`);
  }
  let statement: ReturnType<typeof parseStatement>;
  try {
    statement = parseStatement(payload);
  } catch (err) {
    return reject('invalid-payload', describe(err));
  }
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE_TYPE) {
    return reject('invalid-payload', `predicate type ${statement.predicateType} is not an image signature`);
  }
  const matching = statement.subject.find((s) =>
    Object.entries(s.digest).some(([algorithm, hex]) => `${algorithm}:${hex}` === expected.manifestDigest),
  );
  const subject = matching ?? statement.subject[0];
  return checkClaims(
    {
      dockerReference: subject?.name,
      manifestDigest: matching ? expected.manifestDigest : (statementDigests(statement)[0] ?? ''),
      annotations: subject?.annotations ?? {},
      type: statement.predicateType,
    },
    expected,
  );
}

function withSigner(verdict: Verdict, signer: KeylessIdentity): Verdict {
  return verdict.ok ? { ...verdict, signer } : verdict;
}

function checkClaims(claims: Claims, expected: Expectation): Verdict {
  if (claims.manifestDigest !== expected.manifestDigest) {
    return reject(
      'wrong-digest',
      `payload signs ${claims.manifestDigest || 'no digest'}, not this image (${expected.manifestDigest}): ` +
        'a signature copied from another image',
    );
  }
  if (
    claims.dockerReference !== undefined &&
    !sameRepository(claims.dockerReference, expected.dockerReference)
  ) {
    return reject(
      'wrong-identity',
      `payload names ${claims.dockerReference}, expected ${expected.dockerReference}`,
    );
  }
  for (const [key, value] of Object.entries(expected.annotations)) {
    const actual = claims.annotations[key];
    if (actual === undefined) return reject('missing-annotation', `annotation ${key} is missing`);
    if (String(actual) !== value) {
      return reject(
        'missing-annotation',
        `annotation ${key} is ${JSON.stringify(actual)}, expected ${JSON.stringify(value)}`,
      );
    }
  }
  return { ok: true, claims };
}

/** Same registry and repository (index.docker.io = docker.io); a tag or digest in the reference does not matter. */
export function sameRepository(actual: string, expected: string): boolean {
  try {
    const a = parseImageReference(actual);
    const b = parseImageReference(expected);
    return a.registry === b.registry && a.repository === b.repository;
  } catch {
    return false;
  }
}

function reject(reason: RejectReason, message: string): Verdict {
  return { ok: false, reason, message };
}

function describe(err: unknown): string {
  return isGantryError(err) || err instanceof Error ? err.message : String(err);
}
