/**
 * Keyless signing end to end against @sigstore/mock's Fulcio and Rekor, served on 127.0.0.1 (harness/sigstore-mock; no
 * public Sigstore is reachable): `gantry attest` without a key gets a certificate for an OIDC token minted here
 * (given directly, through a named variable as GitLab does, or from a fake GitHub Actions token endpoint) and a
 * Rekor entry; `verify-attestation --certificate-identity/--certificate-oidc-issuer` accepts the right signer
 * and rejects a wrong identity or issuer with its own message; the real cosign verifies both forms against the
 * same trust (a trusted-root file for bundles; for `.att`, the same keys as cosign's SIGSTORE_* files). The core's `verify` hook (a keyless `.sig` layer
 * as a bundle, checked by checkBundleKeyless) is exercised at the library level.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HashAlgorithm, TransparencyLogEntry } from '@sigstore/protobuf-specs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFromLegacyLayer, rekorBundleAnnotation } from '../../src/attest/legacy.js';
import { Annotation, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/constants.js';
import {
  checkBundleKeyless,
  type KeylessPolicy,
  KeylessSigner,
  rekorWitness,
  resolveIdentityToken,
} from '../../src/sign/keyless.js';
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
  startMockSigstore,
} from '../harness/sigstore-mock.js';
import { gantry, gantryOk } from '../support/cli.js';

let registry: TestRegistry;
let sigstore: MockSigstore;
let work: string;
let image: FixtureImage;
let predicate: string;
let trustedRootPath: string;
let policy: KeylessPolicy;

const token = mintToken({ iss: ISSUER, sub: IDENTITY });

beforeAll(async () => {
  registry = await startRegistry();
  sigstore = await startMockSigstore();
  work = await mkdtemp(join(tmpdir(), 'gantry-keyless-'));
  trackTempDir(work);
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1 });
  predicate = join(work, 'provenance.json');
  await writeFile(
    predicate,
    JSON.stringify({ builder: { id: 'https://ci.example/b' }, buildType: 'https://ci.example/t' }),
  );
  trustedRootPath = await sigstore.writeTrustedRoot(work);
  policy = { trustedRoot: sigstore.trustedRoot, identity: IDENTITY, issuer: ISSUER };
});

afterAll(async () => {
  await sigstore?.stop();
  await registry?.stop();
});

const sigstoreFlags = () => ['--fulcio-url', sigstore.url, '--rekor-url', sigstore.url];

/** `gantry attest` keyless against the mock Sigstore; `extra` replaces the default `--identity-token` source. */
function attestKeyless(ref: string, extra: string[] = [], env: NodeJS.ProcessEnv = NO_AMBIENT_TOKENS) {
  const tokenSource = extra.includes('--identity-token-env') ? [] : ['--identity-token', token];
  return gantryOk(
    [
      'attest',
      '--type',
      'slsaprovenance',
      '--predicate',
      predicate,
      ...extra,
      ...tokenSource,
      ...sigstoreFlags(),
      ref,
    ],
    { env },
  );
}

function verifyKeyless(ref: string, identity = IDENTITY, issuer = ISSUER) {
  return gantry([
    'verify-attestation',
    '--certificate-identity',
    identity,
    '--certificate-oidc-issuer',
    issuer,
    '--trusted-root',
    trustedRootPath,
    '--type',
    'slsaprovenance',
    '--output',
    'json',
    ref,
  ]);
}

describe('keyless attest', () => {
  it('signs with a Fulcio certificate and a Rekor entry; verification checks identity and issuer', async () => {
    const ref = await pushFixture(image, registry, 'keyless/given:v1');
    await attestKeyless(ref);
    const ok = await verifyKeyless(ref);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const result = JSON.parse(ok.stdout) as {
      verified: { form: string; signer: { identity: string; issuer: string } }[];
    };
    expect(result.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
    expect(result.verified[0]?.signer).toEqual({ identity: IDENTITY, issuer: ISSUER });

    const wrongIdentity = await verifyKeyless(
      ref,
      'https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main',
    );
    expect(wrongIdentity.code).toBe(1);
    expect(wrongIdentity.stderr).toContain('[UNTRUSTED_SIGNER]');
    expect(wrongIdentity.stderr).toContain(`certificate identity is "${IDENTITY}", not the expected`);

    const wrongIssuer = await verifyKeyless(ref, IDENTITY, 'https://gitlab.com');
    expect(wrongIssuer.code).toBe(1);
    expect(wrongIssuer.stderr).toContain('[UNTRUSTED_SIGNER]');
    expect(wrongIssuer.stderr).toContain(
      `certificate OIDC issuer is "${ISSUER}", not the expected "https://gitlab.com"`,
    );
  });

  it('cosign verifies the keyless bundle form against the same trusted root, and rejects another identity', async () => {
    const ref = await pushFixture(image, registry, 'keyless/cosign:v1');
    await attestKeyless(ref, ['--format', 'bundle']);
    const cosignVerify = (identity: string) =>
      cosign([
        'verify-attestation',
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        ISSUER,
        '--trusted-root',
        trustedRootPath,
        '--type',
        'slsaprovenance',
        ...LOOPBACK_REGISTRY_FLAGS,
        ref,
      ]);
    const accepted = await cosignVerify(IDENTITY);
    expect(accepted.stderr).toContain('Existence of the claims in the transparency log was verified offline');
    expect(accepted.code).toBe(0);
    expect(
      (await cosignVerify('https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main')).code,
    ).not.toBe(0);
  });

  it('cosign verifies the keyless .att form (Rekor entry checked offline), and rejects another identity', async () => {
    const ref = await pushFixture(image, registry, 'keyless/cosign-att:v1');
    await attestKeyless(ref, ['--format', 'legacy']);
    // cosign 2 takes a trusted-root file for bundles only; for the .att form it reads the same keys from these.
    const env = await sigstore.writeCosignEnv(work);
    const cosignVerify = (identity: string) =>
      cosign(
        [
          'verify-attestation',
          '--certificate-identity',
          identity,
          '--certificate-oidc-issuer',
          ISSUER,
          '--type',
          'slsaprovenance',
          ...LOOPBACK_REGISTRY_FLAGS,
          ref,
        ],
        { env },
      );
    const accepted = await cosignVerify(IDENTITY);
    expect(accepted.stderr).toContain('Existence of the claims in the transparency log was verified offline');
    expect(accepted.code).toBe(0);
    expect(
      (await cosignVerify('https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main')).code,
    ).not.toBe(0);
  });

  it('takes the token from a variable named by --identity-token-env, as GitLab ID tokens are given', async () => {
    const ref = await pushFixture(image, registry, 'keyless/gitlab:v1');
    const gitlabToken = mintToken({
      iss: 'https://gitlab.com',
      sub: 'project_path:acme/app:ref_type:branch:ref:main',
    });
    await attestKeyless(ref, ['--identity-token-env', 'GITLAB_SIGSTORE_TOKEN'], {
      ...NO_AMBIENT_TOKENS,
      GITLAB_SIGSTORE_TOKEN: gitlabToken,
    });
    const ok = await verifyKeyless(
      ref,
      'project_path:acme/app:ref_type:branch:ref:main',
      'https://gitlab.com',
    );
    expect(ok.code).toBe(0);
  });

  it('requests the token from GitHub Actions when ACTIONS_ID_TOKEN_REQUEST_* are set', async () => {
    const requests: { audience: string | null; authorization: string | undefined }[] = [];
    const actions = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push({ audience: url.searchParams.get('audience'), authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: token }));
    });
    await new Promise<void>((resolve) => actions.listen(0, '127.0.0.1', resolve));
    try {
      const port = (actions.address() as AddressInfo).port;
      const ref = await pushFixture(image, registry, 'keyless/actions:v1');
      await gantryOk(
        ['attest', '--type', 'slsaprovenance', '--predicate', predicate, ...sigstoreFlags(), ref],
        {
          env: {
            ...NO_AMBIENT_TOKENS,
            ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token?api-version=2.0`,
            ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runtime-bearer',
          },
        },
      );
      expect(requests).toEqual([{ audience: 'sigstore', authorization: 'Bearer runtime-bearer' }]);
      expect((await verifyKeyless(ref)).code).toBe(0);
    } finally {
      await new Promise<void>((resolve) => actions.close(() => resolve()));
    }
  });

  it('a keyless attestation checked with --key is reported as made by another signer', async () => {
    const ref = await pushFixture(image, registry, 'keyless/by-key:v1');
    await attestKeyless(ref);
    const pub = join(work, 'unrelated.pub');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(pub, publicKey.export({ format: 'pem', type: 'spki' }));
    const result = await gantry(['verify-attestation', '--key', pub, '--output', 'json', ref]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[UNTRUSTED_SIGNER]');
    const json = JSON.parse(result.stdout) as { rejected: { reason: string }[] };
    expect(json.rejected.map((r) => r.reason)).toEqual(['wrong-key', 'wrong-key']);
  });

  it('an unreachable Fulcio fails as a network error that does not quote the token', async () => {
    const ref = await pushFixture(image, registry, 'keyless/no-fulcio:v1');
    const result = await gantry(
      [
        'attest',
        '--type',
        'slsaprovenance',
        '--predicate',
        predicate,
        '--identity-token',
        token,
        '--fulcio-url',
        'http://127.0.0.1:9',
        '--rekor-url',
        sigstore.url,
        ref,
      ],
      { env: NO_AMBIENT_TOKENS },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Fulcio did not issue a signing certificate');
    expect(result.stderr).toContain('[NETWORK]');
    expect(result.stderr).not.toContain(token.split('.')[1]);
  });

  it('without a key or any token source, says how to provide one', async () => {
    const ref = await pushFixture(image, registry, 'keyless/none:v1');
    const result = await gantry(['attest', '--type', 'slsaprovenance', '--predicate', predicate, ref], {
      env: NO_AMBIENT_TOKENS,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keyless signing needs an OIDC token');
  });
});

describe('keyless signatures for `verify` (library hook)', () => {
  it('a keyless .sig layer becomes a bundle that checkBundleKeyless verifies against the payload', async () => {
    const payload = Buffer.from(JSON.stringify({ critical: { type: 'cosign container image signature' } }));
    const signer = new KeylessSigner({ identityToken: token, fulcioUrl: sigstore.url });
    const signed = await signer.sign(payload);
    expect(signed.keyMaterial.kind).toBe('x509');
    const certificate =
      signed.keyMaterial.kind === 'x509' ? (signed.keyMaterial.certificateChainPem[0] as string) : '';
    const witness = rekorWitness({ rekorUrl: sigstore.url });
    const { tlogEntries } = await witness.testify(
      {
        $case: 'messageSignature',
        messageSignature: {
          messageDigest: {
            algorithm: HashAlgorithm.SHA2_256,
            digest: createHash('sha256').update(payload).digest(),
          },
          signature: signed.signature,
        },
      },
      certificate,
    );
    const entry = tlogEntries?.[0];
    if (!entry?.inclusionPromise) throw new Error('Rekor returned no signed entry timestamp');
    const layer = {
      mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
      content: payload,
      annotations: {
        [Annotation.signature]: signed.signature.toString('base64'),
        [Annotation.certificate]: certificate,
        [Annotation.chain]: '',
        [Annotation.rekorBundle]: rekorBundleAnnotation(
          TransparencyLogEntry.toJSON(entry) as Parameters<typeof rekorBundleAnnotation>[0],
        ),
      },
    };
    const bundle = bundleFromLegacyLayer(layer, 'sig');
    expect(checkBundleKeyless(bundle, policy, payload)).toEqual({
      ok: true,
      signer: { identity: IDENTITY, issuer: ISSUER },
    });
    const altered = Buffer.from(payload.toString('utf8').replace('cosign', 'c0sign'));
    expect(
      checkBundleKeyless(bundleFromLegacyLayer({ ...layer, content: altered }, 'sig'), policy, altered),
    ).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    expect(checkBundleKeyless(bundle, { ...policy, identity: 'someone@example.com' }, payload)).toMatchObject(
      {
        ok: false,
        reason: 'wrong-signer',
      },
    );
  });

  it('resolveIdentityToken reads a token file given as --identity-token and rejects non-JWTs', async () => {
    const file = join(work, 'token.jwt');
    await writeFile(file, `${token}\n`);
    expect(await resolveIdentityToken({ token: file, env: {} })).toBe(token);
    await expect(resolveIdentityToken({ token: 'not-a-jwt', env: {} })).rejects.toThrow(
      'the OIDC token is not a JWT',
    );
  });
});
