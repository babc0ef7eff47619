/**
 * Unit tests for the two stored forms of an attestation: a DSSE bundle becomes a cosign `.att` layer and back
 * (key-signed and keyless with a Rekor entry), the rebuilt bundle still verifies with sigstore-js, malformed
 * layers are refused, and failed verifications get the error code their reasons call for.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import { describe, expect, it } from 'vitest';
import { signStatement } from '../../src/attest/create.js';
import { bundleFromLegacyLayer, legacyLayerFromBundle, parseEnvelope } from '../../src/attest/legacy.js';
import { buildStatement } from '../../src/attest/statement.js';
import { assertAttestationsVerified, type RejectedAttestation } from '../../src/attest/verify.js';
import { checkBundleWithKey } from '../../src/sign/bundle.js';
import { Annotation, DSSE_ENVELOPE_MEDIA_TYPE } from '../../src/sign/constants.js';
import { KeySigner } from '../../src/sign/keys.js';
import { thrown } from '../support/thrown.js';

const SLSA = 'https://slsa.dev/provenance/v0.2';
const statement = buildStatement({
  subjectName: 'registry.example/app',
  digest: `sha256:${'12'.repeat(32)}`,
  predicateType: SLSA,
  predicate: Buffer.from('{"builder":{"id":"b"}}'),
  predicateSource: 'p.json',
});
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('key-signed attestation', () => {
  it('becomes a .att layer with cosign annotations and an empty keyid, and back into a verifiable bundle', async () => {
    const { bundle } = await signStatement({ statement, signer: new KeySigner(privateKey) });
    expect(bundle.dsseEnvelope?.signatures[0]?.keyid).toBe('');
    expect(bundle.verificationMaterial.publicKey?.hint).toMatch(/^[A-Za-z0-9+/]+=*$/);

    const layer = legacyLayerFromBundle(bundle, { predicateType: SLSA });
    expect(layer.mediaType).toBe(DSSE_ENVELOPE_MEDIA_TYPE);
    expect(layer.annotations).toEqual({ [Annotation.signature]: '', [Annotation.predicateType]: SLSA });
    const envelope = JSON.parse(layer.content.toString('utf8'));
    expect(Object.keys(envelope)).toEqual(['payloadType', 'payload', 'signatures']);
    expect(JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))).toEqual(statement);

    const rebuilt = bundleFromLegacyLayer(layer, 'att[0]');
    expect(checkBundleWithKey(rebuilt, publicKey)).toMatchObject({
      ok: true,
      payloadType: 'application/vnd.in-toto+json',
    });
  });
});

describe('keyless attestation', () => {
  const leaf = '-----BEGIN CERTIFICATE-----\nTEVBRg==\n-----END CERTIFICATE-----\n';
  const root = '-----BEGIN CERTIFICATE-----\nUk9PVA==\n-----END CERTIFICATE-----\n';
  const body = Buffer.from(JSON.stringify({ kind: 'intoto', apiVersion: '0.0.2', spec: {} })).toString(
    'base64',
  );
  const bundle: SerializedBundle = {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      certificate: { rawBytes: 'TEVBRg==' },
      publicKey: undefined,
      x509CertificateChain: undefined,
      tlogEntries: [
        {
          logIndex: '7',
          logId: { keyId: Buffer.from('abcd', 'hex').toString('base64') },
          kindVersion: { kind: 'intoto', version: '0.0.2' },
          integratedTime: '1700000000',
          inclusionPromise: { signedEntryTimestamp: 'U0VU' },
          inclusionProof: undefined,
          canonicalizedBody: body,
        },
      ],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: {
      payload: 'e30=',
      payloadType: 'application/vnd.in-toto+json',
      signatures: [{ sig: 'c2ln', keyid: '' }],
    },
    messageSignature: undefined,
  };

  it("carries certificate, chain and cosign's Rekor bundle annotation, and reads them back", () => {
    const layer = legacyLayerFromBundle(bundle, { predicateType: SLSA, certificateChainPem: [leaf, root] });
    expect(layer.annotations[Annotation.certificate]).toBe(leaf);
    expect(layer.annotations[Annotation.chain]).toBe(root);
    expect(JSON.parse(layer.annotations[Annotation.rekorBundle] as string)).toEqual({
      SignedEntryTimestamp: 'U0VU',
      Payload: { body, integratedTime: 1700000000, logIndex: 7, logID: 'abcd' },
    });
    // The blob is the envelope as Rekor hashes an intoto entry: canonical JSON, the certificate beside the signature.
    expect(layer.content.toString('utf8')).toBe(
      JSON.stringify({
        payload: 'e30=',
        payloadType: 'application/vnd.in-toto+json',
        signatures: [{ publicKey: leaf, sig: 'c2ln' }],
      }),
    );

    const rebuilt = bundleFromLegacyLayer(layer, 'att[0]');
    // A SET without an inclusion proof is what a v0.1 bundle holds.
    expect(rebuilt.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.1');
    expect(rebuilt.verificationMaterial.certificate).toEqual({ rawBytes: 'TEVBRg==' });
    expect(rebuilt.verificationMaterial.tlogEntries).toEqual([
      { ...bundle.verificationMaterial.tlogEntries[0], inclusionProof: undefined },
    ]);
  });
});

describe('malformed layers', () => {
  it.each([
    ['not JSON', '{', 'not a JSON DSSE envelope'],
    ['no signatures', '{"payload":"e30=","payloadType":"t","signatures":[]}', 'not a signed DSSE envelope'],
  ])('%s', (_, text, message) => {
    const err = thrown(() => parseEnvelope(Buffer.from(text), 'att[1]'));
    expect(err).toMatchObject({ code: 'MANIFEST_INVALID', subject: 'att[1]' });
    expect(err.message).toContain(message);
  });

  it('an unreadable Rekor bundle annotation', () => {
    const layer = {
      mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
      content: Buffer.from('{"payload":"e30=","payloadType":"t","signatures":[{"sig":"c2ln"}]}'),
      annotations: { [Annotation.rekorBundle]: 'nope' },
    };
    expect(thrown(() => bundleFromLegacyLayer(layer, 'att[2]')).message).toContain('unreadable Rekor bundle');
  });
});

describe('assertAttestationsVerified', () => {
  const rejected = (...reasons: RejectedAttestation['reason'][]): RejectedAttestation[] =>
    reasons.map((reason, i) => ({
      form: 'legacy',
      source: `att[${i}]`,
      reason,
      message: `because ${reason}`,
    }));
  const codeFor = (r: RejectedAttestation[]) =>
    thrown(() => assertAttestationsVerified({ digest: 'sha256:x', verified: [], rejected: r }, 'img')).code;

  it.each([
    [[], 'NO_SIGNATURES'],
    [['wrong-type', 'wrong-type'], 'NO_SIGNATURES'],
    [['bad-signature', 'wrong-key'], 'UNTRUSTED_SIGNER'],
    [['wrong-signer'], 'UNTRUSTED_SIGNER'],
    [['bad-signature'], 'SIGNATURE_INVALID'],
    [['wrong-subject', 'wrong-key'], 'SIGNATURE_INVALID'],
  ] as const)('%j -> %s', (reasons, code) => {
    expect(codeFor(rejected(...reasons))).toBe(code);
  });

  it('lists every reason in the message', () => {
    const err = thrown(() =>
      assertAttestationsVerified(
        { digest: 'd', verified: [], rejected: rejected('bad-signature', 'wrong-subject') },
        'img',
      ),
    );
    expect(err.message).toContain('legacy att[0]: bad-signature: because bad-signature');
    expect(err.message).toContain('legacy att[1]: wrong-subject: because wrong-subject');
  });
});
