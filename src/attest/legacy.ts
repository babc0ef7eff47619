/**
 * attest/legacy: cosign's tag-schema layers as sigstore bundles and back. An attestation is stored twice — a
 * sigstore bundle (v0.3, `dsseEnvelope` content) and a `.att` layer (the envelope JSON as the blob; certificate,
 * chain and Rekor bundle as annotations); reading a `.att` or keyless `.sig` layer yields a bundle, so one
 * verifier (@sigstore/verify) checks both forms. Pure: no I/O.
 */

import { createHash } from 'node:crypto';
import type { SerializedBundle, SerializedEnvelope } from '@sigstore/bundle';
import { json } from '@sigstore/core';
import { GantryError } from '../errors/index.js';
import {
  Annotation,
  BUNDLE_MEDIA_TYPE,
  DSSE_ENVELOPE_MEDIA_TYPE,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from '../sign/constants.js';
import type { LegacyLayer } from '../sign/types.js';

/** A bundle rebuilt from a `.att` layer carries a Rekor SET but no inclusion proof: v0.1 allows exactly that. */
const BUNDLE_V01_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.1';

/** cosign's `dev.sigstore.cosign/bundle` annotation: a Rekor entry and its signed entry timestamp. */
interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/** The cosign `.att` layer for a DSSE bundle: envelope JSON, plus certificate, chain and Rekor entry if keyless. */
export function legacyLayerFromBundle(
  bundle: SerializedBundle,
  options: { predicateType: string; certificateChainPem?: string[] },
): LegacyLayer {
  const envelope = bundle.dsseEnvelope;
  if (!envelope) throw new GantryError('INTERNAL', 'attestation bundle has no DSSE envelope');
  const annotations: Record<string, string> = {
    [Annotation.signature]: '',
    [Annotation.predicateType]: options.predicateType,
  };
  const chain = options.certificateChainPem;
  if (chain && chain.length > 0) {
    annotations[Annotation.certificate] = chain[0] as string;
    annotations[Annotation.chain] = chain.slice(1).join('');
  }
  const entry = bundle.verificationMaterial.tlogEntries?.[0];
  if (entry?.inclusionPromise) annotations[Annotation.rekorBundle] = rekorBundleAnnotation(entry);
  const leaf = chain?.[0];
  const content = Buffer.from(
    entry && leaf
      ? // Keyless: cosign matches the layer to its Rekor `intoto` entry by the layer's SHA-256, and Rekor hashes
        // the canonical envelope with the signer's certificate beside each signature. Store exactly those bytes;
        // DSSE readers ignore the extra field.
        json.canonicalize({
          payload: envelope.payload,
          payloadType: envelope.payloadType,
          signatures: envelope.signatures.map((s) => ({
            ...(s.keyid ? { keyid: s.keyid } : {}),
            publicKey: leaf,
            sig: s.sig,
          })),
        })
      : // cosign's envelope JSON: payloadType, payload, signatures (keyid, sig).
        JSON.stringify({
          payloadType: envelope.payloadType,
          payload: envelope.payload,
          signatures: envelope.signatures.map((s) => ({ keyid: s.keyid ?? '', sig: s.sig })),
        }),
  );
  return { mediaType: DSSE_ENVELOPE_MEDIA_TYPE, content, annotations };
}

type SerializedTLogEntry = SerializedBundle['verificationMaterial']['tlogEntries'][number];

/** cosign's `dev.sigstore.cosign/bundle` annotation for a Rekor entry with a signed entry timestamp. */
export function rekorBundleAnnotation(entry: SerializedTLogEntry): string {
  if (!entry.inclusionPromise) throw new GantryError('INTERNAL', 'Rekor entry has no signed entry timestamp');
  const rekor: RekorBundle = {
    SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
    Payload: {
      body: entry.canonicalizedBody,
      integratedTime: Number(entry.integratedTime),
      logIndex: Number(entry.logIndex),
      logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
    },
  };
  return JSON.stringify(rekor);
}

/**
 * Rebuilds a verifiable bundle from a cosign layer: a `.att` DSSE envelope, or a `.sig` simple-signing payload
 * with its signature annotation (a message signature over the payload: verify it with the payload as artifact).
 * `subject` names the layer in errors.
 */
export function bundleFromLegacyLayer(layer: LegacyLayer, subject: string): SerializedBundle {
  const certificatePem = layer.annotations[Annotation.certificate];
  const tlogEntries: SerializedBundle['verificationMaterial']['tlogEntries'] = [];
  const rekorText = layer.annotations[Annotation.rekorBundle];
  if (rekorText) tlogEntries.push(tlogEntryFromRekorBundle(rekorText, subject));
  const timestampVerificationData = { rfc3161Timestamps: [] };
  const verificationMaterial: SerializedBundle['verificationMaterial'] = certificatePem
    ? {
        certificate: { rawBytes: pemToDerBase64(certificatePem, subject) },
        publicKey: undefined,
        x509CertificateChain: undefined,
        tlogEntries,
        timestampVerificationData,
      }
    : {
        publicKey: { hint: '' },
        certificate: undefined,
        x509CertificateChain: undefined,
        tlogEntries,
        timestampVerificationData,
      };
  const mediaType = tlogEntries.length > 0 ? BUNDLE_V01_MEDIA_TYPE : BUNDLE_MEDIA_TYPE;
  if (layer.mediaType === SIMPLE_SIGNING_MEDIA_TYPE) {
    const signature = layer.annotations[Annotation.signature];
    if (!signature) {
      throw new GantryError('MANIFEST_INVALID', `signature layer has no ${Annotation.signature} annotation`, {
        subject,
      });
    }
    return {
      mediaType,
      verificationMaterial,
      messageSignature: {
        messageDigest: {
          algorithm: 'SHA2_256',
          digest: createHash('sha256').update(layer.content).digest('base64'),
        },
        signature,
      },
      dsseEnvelope: undefined,
    };
  }
  return {
    mediaType,
    verificationMaterial,
    dsseEnvelope: parseEnvelope(layer.content, subject),
    messageSignature: undefined,
  };
}

export function parseEnvelope(bytes: Buffer, subject: string): SerializedEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'attestation is not a JSON DSSE envelope', { subject, cause });
  }
  const e = value as Partial<SerializedEnvelope> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.payload !== 'string' ||
    typeof e.payloadType !== 'string' ||
    !Array.isArray(e.signatures) ||
    e.signatures.length === 0 ||
    e.signatures.some((s) => typeof s?.sig !== 'string')
  ) {
    throw new GantryError('MANIFEST_INVALID', 'attestation is not a signed DSSE envelope', { subject });
  }
  return {
    payload: e.payload,
    payloadType: e.payloadType,
    signatures: e.signatures.map((s) => ({ sig: s.sig, keyid: typeof s.keyid === 'string' ? s.keyid : '' })),
  };
}

function tlogEntryFromRekorBundle(text: string, subject: string): SerializedTLogEntry {
  let rekor: RekorBundle;
  let body: { kind?: unknown; apiVersion?: unknown };
  try {
    rekor = JSON.parse(text) as RekorBundle;
    body = JSON.parse(Buffer.from(rekor.Payload.body, 'base64').toString('utf8')) as typeof body;
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'attestation has an unreadable Rekor bundle annotation', {
      subject,
      cause,
    });
  }
  return {
    logIndex: String(rekor.Payload.logIndex),
    logId: { keyId: Buffer.from(rekor.Payload.logID, 'hex').toString('base64') },
    kindVersion: { kind: String(body.kind), version: String(body.apiVersion) },
    integratedTime: String(rekor.Payload.integratedTime),
    inclusionPromise: { signedEntryTimestamp: rekor.SignedEntryTimestamp },
    inclusionProof: undefined,
    canonicalizedBody: rekor.Payload.body,
  };
}

function pemToDerBase64(pem: string, subject: string): string {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!match?.[1]) {
    throw new GantryError('MANIFEST_INVALID', 'attestation certificate annotation is not PEM', { subject });
  }
  return match[1].replace(/\s+/g, '');
}
