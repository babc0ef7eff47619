/**
 * Unit tests for sign/payload and sign/checks: the exact bytes gantry signs (cosign's simple-signing layout, the
 * in-toto statement, DSSE's PAE) and each verdict of verification, one reason per kind of tampering.
 */
import { describe, expect, it } from 'vitest';
import { signStatementBundle } from '../../src/sign/bundle.js';
import {
  checkLegacyLayer,
  checkSignatureBundle,
  type Expectation,
  sameRepository,
} from '../../src/sign/checks.js';
import { Annotation, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/constants.js';
import { generateKeyPair, KeySigner } from '../../src/sign/keys.js';
import {
  parseStatement,
  preAuthEncoding,
  signStatement,
  simpleSigningPayload,
  statementDigests,
} from '../../src/sign/payload.js';
import type { LegacyLayer } from '../../src/sign/types.js';

const digest = `sha256:${'a'.repeat(64)}`;
const otherDigest = `sha256:${'b'.repeat(64)}`;
const claim = { dockerReference: 'registry.example/team/app', manifestDigest: digest };
const expected: Expectation = {
  manifestDigest: digest,
  dockerReference: 'registry.example/team/app',
  annotations: {},
};
const keys = generateKeyPair();
const signer = new KeySigner(keys.privateKey);

async function legacyLayer(payload: Buffer): Promise<LegacyLayer> {
  const { signature } = await signer.sign(payload);
  return {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    content: payload,
    annotations: { [Annotation.signature]: signature.toString('base64') },
  };
}

describe('payloads', () => {
  it("writes cosign's simple-signing layout: field order, null optional without annotations", () => {
    expect(simpleSigningPayload(claim).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
    );
    expect(
      JSON.parse(simpleSigningPayload({ ...claim, annotations: { a: 'b' } }).toString()).optional,
    ).toEqual({
      a: 'b',
    });
  });

  it('names the image, its digest and annotations in the in-toto statement', () => {
    const statement = parseStatement(signStatement({ ...claim, annotations: { env: 'prod' } }));
    expect(statement).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [
        {
          name: 'registry.example/team/app',
          digest: { sha256: 'a'.repeat(64) },
          annotations: { env: 'prod' },
        },
      ],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
    });
    expect(statementDigests(statement)).toEqual([digest]);
  });

  it('encodes DSSE PAE as the spec example does', () => {
    expect(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });
});

describe('legacy verdicts', () => {
  it('accepts a valid signature and returns its claims', async () => {
    const verdict = checkLegacyLayer(
      await legacyLayer(simpleSigningPayload(claim)),
      keys.publicKey,
      expected,
    );
    expect(verdict).toEqual({
      ok: true,
      claims: { ...claim, annotations: {}, type: 'cosign container image signature' },
    });
  });

  it('gives each kind of tampering its own reason', async () => {
    const layer = await legacyLayer(simpleSigningPayload(claim));
    const edited = { ...layer, content: simpleSigningPayload({ ...claim, annotations: { x: 'y' } }) };
    expect(checkLegacyLayer(edited, keys.publicKey, expected)).toMatchObject({ reason: 'bad-signature' });
    expect(checkLegacyLayer(layer, generateKeyPair().publicKey, expected)).toMatchObject({
      reason: 'bad-signature',
    });
    expect(
      checkLegacyLayer(layer, keys.publicKey, { ...expected, manifestDigest: otherDigest }),
    ).toMatchObject({
      reason: 'wrong-digest',
    });
    expect(
      checkLegacyLayer(layer, keys.publicKey, {
        ...expected,
        dockerReference: 'registry.example/team/other',
      }),
    ).toMatchObject({
      reason: 'wrong-identity',
      message: 'payload names registry.example/team/app, expected registry.example/team/other',
    });
    expect(
      checkLegacyLayer(layer, keys.publicKey, { ...expected, annotations: { env: 'prod' } }),
    ).toMatchObject({
      reason: 'missing-annotation',
      message: 'annotation env is missing',
    });
    expect(checkLegacyLayer({ ...layer, annotations: {} }, keys.publicKey, expected)).toMatchObject({
      reason: 'invalid-payload',
    });
    expect(checkLegacyLayer(await legacyLayer(Buffer.from('[]')), keys.publicKey, expected)).toMatchObject({
      reason: 'invalid-payload',
    });
  });
});

describe('bundle verdicts', () => {
  it('accepts its own bundle, and rejects another key by its hint', async () => {
    const bundle = await signStatementBundle(signer, signStatement(claim));
    expect(checkSignatureBundle(bundle, keys.publicKey, expected)).toMatchObject({
      ok: true,
      claims: { dockerReference: claim.dockerReference, manifestDigest: digest },
    });
    expect(checkSignatureBundle(bundle, generateKeyPair().publicKey, expected)).toMatchObject({
      reason: 'wrong-key',
    });
    expect(
      checkSignatureBundle(bundle, keys.publicKey, { ...expected, manifestDigest: otherDigest }),
    ).toMatchObject({
      reason: 'wrong-digest',
    });
  });

  it('rejects an edited statement and a bundle that is not one', async () => {
    const bundle = await signStatementBundle(signer, signStatement(claim));
    if (!('dsseEnvelope' in bundle) || !bundle.dsseEnvelope) throw new Error('expected a DSSE bundle');
    const edited = structuredClone(bundle);
    edited.dsseEnvelope!.payload = signStatement({ ...claim, manifestDigest: otherDigest }).toString(
      'base64',
    );
    expect(checkSignatureBundle(edited, keys.publicKey, expected)).toMatchObject({ reason: 'bad-signature' });
    expect(checkSignatureBundle({} as typeof bundle, keys.publicKey, expected)).toMatchObject({
      reason: 'invalid-payload',
    });
  });
});

describe('sameRepository', () => {
  it('ignores tags and digests and treats index.docker.io as docker.io', () => {
    expect(sameRepository('index.docker.io/library/busybox', 'docker.io/library/busybox:1')).toBe(true);
    expect(sameRepository(`host:5000/a/b@${digest}`, 'host:5000/a/b')).toBe(true);
    expect(sameRepository('host:5000/a/b', 'host:5001/a/b')).toBe(false);
    expect(sameRepository('not a reference', 'host/a')).toBe(false);
  });
});
