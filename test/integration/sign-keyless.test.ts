/**
 * Keyless `gantry sign` and `gantry verify` against @sigstore/mock's Fulcio and Rekor on loopback
 * (harness/sigstore-mock) and a real registry: `sign` without `--key` signs in both forms with a Fulcio
 * certificate and Rekor entries; `verify --certificate-identity/--certificate-oidc-issuer --trusted-root`
 * accepts them, rejects another identity and another issuer each with its own message, a signature copied from
 * another image, and key/keyless mix-ups; the real cosign accepts gantry's keyless signatures in both forms.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/index.js';
import { Annotation } from '../../src/sign/constants.js';
import { resolveSignedImage } from '../../src/sign/sign.js';
import { RegistrySignatureStore } from '../../src/sign/store.js';
import type { SignedImage } from '../../src/sign/types.js';
import { cosign, LOOPBACK_REGISTRY_FLAGS } from '../harness/cosign.js';
import { type FixtureImage, makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import {
  IDENTITY,
  ISSUER,
  type MockSigstore,
  mintToken,
  NO_AMBIENT_TOKENS,
  OTHER_IDENTITY,
  startMockSigstore,
} from '../harness/sigstore-mock.js';
import { gantry, gantryOk } from '../support/cli.js';

interface VerifyJson {
  verified: { form: string; source: string; signer?: { identity: string; issuer: string } }[];
  rejected: { form: string; reason: string; message: string }[];
}

let registry: TestRegistry;
let sigstore: MockSigstore;
let work: string;
let image: FixtureImage;
let other: FixtureImage;
let trustedRoot: string;
const token = mintToken({ iss: ISSUER, sub: IDENTITY });
const client = new RegistryClient();
const store = new RegistrySignatureStore(client);

beforeAll(async () => {
  registry = await startRegistry();
  sigstore = await startMockSigstore();
  work = await mkdtemp(join(tmpdir(), 'gantry-sign-keyless-'));
  trackTempDir(work);
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1, seed: 11 });
  other = await makeImageLayout({ dir: join(work, 'other'), tag: 'v1', layers: 1, seed: 12 });
  trustedRoot = await sigstore.writeTrustedRoot(work);
});

afterAll(async () => {
  await client.close();
  await sigstore?.stop();
  await registry?.stop();
});

/** Pushes `fixture` as `repository:v1` and signs it keyless with the default identity. */
async function pushSignedKeyless(repository: string, extra: string[] = [], fixture = image): Promise<string> {
  const ref = await pushFixture(fixture, registry, `${repository}:v1`);
  await gantryOk(
    [
      'sign',
      '--identity-token',
      token,
      '--fulcio-url',
      sigstore.url,
      '--rekor-url',
      sigstore.url,
      ...extra,
      ref,
    ],
    { env: NO_AMBIENT_TOKENS },
  );
  return ref;
}

function verifyKeyless(ref: string, options: { identity?: string; issuer?: string; args?: string[] } = {}) {
  return gantry([
    'verify',
    '--certificate-identity',
    options.identity ?? IDENTITY,
    '--certificate-oidc-issuer',
    options.issuer ?? ISSUER,
    '--trusted-root',
    trustedRoot,
    '--output',
    'json',
    ...(options.args ?? []),
    ref,
  ]);
}

async function signedImage(ref: string): Promise<SignedImage> {
  const [host, ...rest] = ref.replace(/:v1$/, '').split('/');
  return resolveSignedImage(client, { registry: host as string, repository: rest.join('/'), tag: 'v1' });
}

describe('keyless gantry sign', () => {
  it('stores a Fulcio certificate and Rekor entries in both forms; verify accepts each form for the signer', async () => {
    const ref = await pushSignedKeyless('kl/good', ['-a', 'env=prod']);
    const signed = await signedImage(ref);
    const [layer] = await store.readLegacy(signed, 'sig');
    expect(layer?.annotations[Annotation.certificate]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(layer?.annotations[Annotation.chain]).toBe('');
    expect(JSON.parse(layer?.annotations[Annotation.rekorBundle] ?? '{}')).toMatchObject({
      SignedEntryTimestamp: expect.any(String),
      Payload: { body: expect.any(String), logIndex: expect.any(Number) },
    });
    const [stored] = await store.listBundles(signed);
    expect(stored?.bundle.verificationMaterial.certificate?.rawBytes).toBeTruthy();
    expect(stored?.bundle.verificationMaterial.tlogEntries).toHaveLength(1);
    expect(stored?.bundle.dsseEnvelope?.signatures[0]?.keyid ?? '').toBe('');

    const ok = await verifyKeyless(ref, { args: ['-a', 'env=prod'] });
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as VerifyJson;
    expect(report.rejected).toEqual([]);
    expect(report.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
    for (const v of report.verified) expect(v.signer).toEqual({ identity: IDENTITY, issuer: ISSUER });

    for (const format of ['legacy', 'bundle']) {
      const one = await verifyKeyless(ref, { args: ['--format', format] });
      expect(one.code).toBe(0);
      expect((JSON.parse(one.stdout) as VerifyJson).verified.map((v) => v.form)).toEqual([format]);
    }
    const text = await gantryOk([
      'verify',
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      '--trusted-root',
      trustedRoot,
      ref,
    ]);
    expect(text.stdout).toContain(`signed by ${IDENTITY} (${ISSUER})`);
  });

  it('rejects another identity and another issuer, each with its own message', async () => {
    const ref = await pushSignedKeyless('kl/signer');
    const wrongIdentity = await verifyKeyless(ref, { identity: OTHER_IDENTITY });
    expect(wrongIdentity.code).toBe(1);
    expect(wrongIdentity.stderr).toContain('[UNTRUSTED_SIGNER]');
    const byIdentity = JSON.parse(wrongIdentity.stdout) as VerifyJson;
    expect(byIdentity.rejected.map((r) => r.reason)).toEqual(['wrong-signer', 'wrong-signer']);
    for (const r of byIdentity.rejected) {
      expect(r.message).toBe(
        `certificate identity is ${JSON.stringify(IDENTITY)}, not the expected ${JSON.stringify(OTHER_IDENTITY)}`,
      );
    }

    const wrongIssuer = await verifyKeyless(ref, { issuer: 'https://gitlab.com' });
    expect(wrongIssuer.code).toBe(1);
    expect(wrongIssuer.stderr).toContain('[UNTRUSTED_SIGNER]');
    expect(wrongIssuer.stderr).toContain(
      `certificate OIDC issuer is "${ISSUER}", not the expected "https://gitlab.com"`,
    );
    expect(wrongIssuer.stderr).not.toContain('certificate identity is');
  });

  it('rejects a certificate from another Sigstore (trusted root) as untrusted', async () => {
    const ref = await pushSignedKeyless('kl/other-root');
    const elsewhere = await startMockSigstore();
    try {
      const dir = await mkdtemp(join(work, 'root-'));
      const otherRoot = await elsewhere.writeTrustedRoot(dir);
      const result = await verifyKeyless(ref, { args: ['--trusted-root', otherRoot] });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('[UNTRUSTED_SIGNER]');
      const reasons = (JSON.parse(result.stdout) as VerifyJson).rejected.map((r) => r.reason);
      expect(reasons).toEqual(['untrusted-certificate', 'untrusted-certificate']);
    } finally {
      await elsewhere.stop();
    }
  });

  it('rejects a keyless signature copied onto another image, and an edited payload', async () => {
    const ref = await pushSignedKeyless('kl/source');
    const target = await pushFixture(other, registry, 'kl/target:v1');
    const [layer] = await store.readLegacy(await signedImage(ref), 'sig');
    if (!layer) throw new Error('no .sig layer');
    await store.appendLegacy(await signedImage(target), 'sig', [layer]);
    const copied = await verifyKeyless(target, { args: ['--format', 'legacy'] });
    expect(copied.code).toBe(1);
    expect(copied.stderr).toContain('[SIGNATURE_INVALID]');
    expect((JSON.parse(copied.stdout) as VerifyJson).rejected.map((r) => r.reason)).toEqual(['wrong-digest']);

    const edited = await pushFixture(other, registry, 'kl/edited:v1');
    const editedImage = await signedImage(edited);
    const payload = Buffer.from(
      layer.content.toString('utf8').replace(/sha256:[0-9a-f]{64}/, editedImage.descriptor.digest),
    );
    await store.appendLegacy(editedImage, 'sig', [{ ...layer, content: payload }]);
    const altered = await verifyKeyless(edited, { args: ['--format', 'legacy'] });
    expect(altered.code).toBe(1);
    expect((JSON.parse(altered.stdout) as VerifyJson).rejected.map((r) => r.reason)).toEqual([
      'bad-signature',
    ]);
  });

  it('keyless signatures are not accepted by --key, nor key signatures by identity', async () => {
    const ref = await pushSignedKeyless('kl/mixed');
    await gantryOk(['generate-key-pair', '--output-key-prefix', join(work, 'k')], {
      env: { COSIGN_PASSWORD: 'pw' },
    });
    const byKey = await gantry(['verify', '--key', join(work, 'k.pub'), '--output', 'json', ref]);
    expect(byKey.code).toBe(1);
    expect(byKey.stderr).toContain('[UNTRUSTED_SIGNER]');
    const keyReport = JSON.parse(byKey.stdout) as VerifyJson;
    expect(keyReport.rejected.map((r) => r.reason)).toEqual(['wrong-key', 'wrong-key']);
    expect(keyReport.rejected[0]?.message).toContain('signed keyless');

    const keySigned = await pushFixture(image, registry, 'kl/by-key:v1');
    await gantryOk(['sign', '--key', join(work, 'k.key'), keySigned], { env: { COSIGN_PASSWORD: 'pw' } });
    const byIdentity = await verifyKeyless(keySigned);
    expect(byIdentity.code).toBe(1);
    expect((JSON.parse(byIdentity.stdout) as VerifyJson).rejected.map((r) => r.reason)).toEqual([
      'wrong-key',
      'wrong-key',
    ]);

    const both = await gantry(['sign', '--key', join(work, 'k.key'), '--identity-token', token, ref], {
      env: { COSIGN_PASSWORD: 'pw' },
    });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--identity-token is for keyless signing');

    const passwordKeyless = await gantry(['sign', '--passphrase-file', join(work, 'k.key'), ref]);
    expect(passwordKeyless.code).toBe(2);
    expect(passwordKeyless.stderr).toContain('--passphrase-file is for --key');
  });

  it('takes the token from SIGSTORE_ID_TOKEN, and says how to provide one when there is none', async () => {
    const ref = await pushFixture(image, registry, 'kl/env:v1');
    const gitlab = mintToken({
      iss: 'https://gitlab.com',
      sub: 'project_path:acme/app:ref_type:branch:ref:main',
    });
    await gantryOk(['sign', '--fulcio-url', sigstore.url, '--rekor-url', sigstore.url, ref], {
      env: { ...NO_AMBIENT_TOKENS, SIGSTORE_ID_TOKEN: gitlab },
    });
    const ok = await verifyKeyless(ref, {
      identity: 'project_path:acme/app:ref_type:branch:ref:main',
      issuer: 'https://gitlab.com',
    });
    expect(ok.code).toBe(0);

    const none = await gantry(['sign', ref], { env: NO_AMBIENT_TOKENS });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('keyless signing needs an OIDC token');
  });

  it('verify asks for all keyless flags', async () => {
    const ref = await pushFixture(image, registry, 'kl/flags:v1');
    const noRoot = await gantry([
      'verify',
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      ref,
    ]);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toContain('needs --trusted-root FILE');
    const nothing = await gantry(['verify', ref]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('verify needs --key FILE, or --certificate-identity');
  });
});

describe('cosign accepts gantry keyless signatures', () => {
  it('cosign verify checks the bundle form against the trusted root, and rejects another identity', async () => {
    const ref = await pushSignedKeyless('kl/cosign-bundle', ['--format', 'bundle']);
    const cosignVerify = (identity: string) =>
      cosign([
        'verify',
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        ISSUER,
        '--trusted-root',
        trustedRoot,
        ...LOOPBACK_REGISTRY_FLAGS,
        ref,
      ]);
    const accepted = await cosignVerify(IDENTITY);
    expect(accepted.stderr).toContain('Existence of the claims in the transparency log was verified offline');
    expect(accepted.code).toBe(0);
    const rejected = await cosignVerify(OTHER_IDENTITY);
    expect(rejected.code).not.toBe(0);
  });

  it('cosign verify checks the legacy .sig form (Rekor entry offline), and rejects another identity', async () => {
    const ref = await pushSignedKeyless('kl/cosign-sig', ['--format', 'legacy']);
    const dir = await mkdtemp(join(work, 'cosign-env-'));
    const env = await sigstore.writeCosignEnv(dir);
    const cosignVerify = (identity: string) =>
      cosign(
        [
          'verify',
          '--certificate-identity',
          identity,
          '--certificate-oidc-issuer',
          ISSUER,
          ...LOOPBACK_REGISTRY_FLAGS,
          ref,
        ],
        { env },
      );
    const accepted = await cosignVerify(IDENTITY);
    expect(accepted.stderr).toContain('Existence of the claims in the transparency log was verified offline');
    expect(accepted.code).toBe(0);
    expect(JSON.parse(accepted.stdout)).toMatchObject([
      { critical: { identity: { 'docker-reference': ref.replace(/:v1$/, '') } } },
    ]);
    expect((await cosignVerify(OTHER_IDENTITY)).code).not.toBe(0);
  });
});
