/**
 * sign/bundle: sigstore bundles (v0.3) for the bundle form. Builds the DSSE bundle cosign writes for an image
 * signature (an in-toto statement; a public-key hint, or a signing certificate and its Rekor entry) and checks
 * one against a public key with sigstore-js (`@sigstore/verify`). Pure apart from crypto; results, not throws,
 * so the caller can report why each bundle failed.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  type Bundle,
  bundleFromJSON,
  bundleToJSON,
  type SerializedBundle,
  toDSSEBundle,
} from '@sigstore/bundle';
import type { Witness } from '@sigstore/sign';
import { type TrustMaterial, toSignedEntity, Verifier } from '@sigstore/verify';
import { GantryError } from '../errors/index.js';
import { IN_TOTO_PAYLOAD_TYPE } from './constants.js';
import { decodePem, keyHint } from './keys.js';
import { preAuthEncoding } from './payload.js';
import type { KeyMaterial, Signer } from './types.js';

/**
 * Signs an in-toto statement as DSSE and wraps it in a bundle, as `cosign sign --new-bundle-format` does.
 * Witnesses (keyless: Rekor) countersign the envelope and their entries join the bundle; key-based signing has none.
 */
export async function signStatementBundle(
  signer: Signer,
  statement: Buffer,
  options: { witnesses?: readonly Witness[] } = {},
): Promise<SerializedBundle> {
  const { signature, keyMaterial } = await signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
  const common = { artifact: statement, artifactType: IN_TOTO_PAYLOAD_TYPE, signature };
  const bundle =
    keyMaterial.kind === 'publicKey'
      ? toDSSEBundle({ ...common, keyHint: keyHint(createPublicKey(keyMaterial.publicKeyPem)) })
      : toDSSEBundle({ ...common, certificate: leafDer(keyMaterial.certificateChainPem) });
  // The key is named once, by the verification material's hint. A keyid in the DSSE signature too would make
  // go-securesystemslib (cosign) skip the signature unless its verifier reports that same id, which it does not.
  // Cleared before witnessing: a Rekor entry records the envelope's signatures as they are.
  for (const sig of bundle.content.dsseEnvelope.signatures) sig.keyid = '';
  const witnesses = options.witnesses ?? [];
  if (witnesses.length > 0) {
    const material = await Promise.all(
      witnesses.map((w) => w.testify(bundle.content, signingKeyText(keyMaterial))),
    );
    bundle.verificationMaterial.tlogEntries = material.flatMap((m) => m.tlogEntries ?? []);
    bundle.verificationMaterial.timestampVerificationData = {
      rfc3161Timestamps: material.flatMap((m) => m.rfc3161Timestamps ?? []),
    };
  }
  return bundleToJSON(bundle);
}

/** What a transparency log records as the signer: the PEM public key, or the leaf certificate. */
export function signingKeyText(keyMaterial: KeyMaterial): string {
  if (keyMaterial.kind === 'publicKey') return keyMaterial.publicKeyPem;
  const leaf = keyMaterial.certificateChainPem[0];
  if (leaf === undefined)
    throw new GantryError('INVALID_ARGUMENT', 'x509 key material without a certificate');
  return leaf;
}

export type BundleCheck =
  | { ok: true; payloadType: string; payload: Buffer }
  | { ok: false; reason: 'invalid-payload' | 'wrong-key' | 'bad-signature'; message: string };

/**
 * Verifies a DSSE bundle's signature with a public key (no transparency log, no timestamps: key-based signing
 * here has neither). What the payload says is the caller's to check.
 */
export function checkBundleWithKey(serialized: SerializedBundle, publicKey: KeyObject): BundleCheck {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(serialized);
  } catch (err) {
    return { ok: false, reason: 'invalid-payload', message: `not a valid sigstore bundle: ${describe(err)}` };
  }
  if (bundle.content.$case !== 'dsseEnvelope') {
    return { ok: false, reason: 'invalid-payload', message: 'bundle holds no DSSE envelope' };
  }
  const key = bundle.verificationMaterial.content;
  if (key.$case !== 'publicKey') {
    return {
      ok: false,
      reason: 'wrong-key',
      message: 'bundle was signed with a certificate (keyless), not a key; verify it by certificate identity',
    };
  }
  const expectedHint = keyHint(publicKey);
  if (key.publicKey.hint && key.publicKey.hint !== expectedHint) {
    return {
      ok: false,
      reason: 'wrong-key',
      message: `signed by another key (key hint ${key.publicKey.hint}, the given key is ${expectedHint})`,
    };
  }
  try {
    new Verifier(publicKeyTrust(publicKey), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    }).verify(toSignedEntity(bundle));
  } catch (err) {
    return {
      ok: false,
      reason: 'bad-signature',
      message: `signature does not verify with the given key (content altered?): ${describe(err)}`,
    };
  }
  const envelope = bundle.content.dsseEnvelope;
  return { ok: true, payloadType: envelope.payloadType, payload: Buffer.from(envelope.payload) };
}

/** Trust material that knows one public key, valid at any time, whatever hint a bundle names. */
export function publicKeyTrust(publicKey: KeyObject): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => ({ publicKey, validFor: () => true }),
  };
}

function leafDer(chainPem: readonly string[]): Buffer {
  return decodePem(signingKeyText({ kind: 'x509', certificateChainPem: [...chainPem] })).der;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
