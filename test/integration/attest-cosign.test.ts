/**
 * Attestations end to end through gantry's CLI against a real registry (no referrers API, so bundles live under
 * the fallback tag), with the real cosign and sigstore-js as oracles: cosign verifies what `gantry attest`
 * stored in the `.att` form, gantry verifies what `cosign attest` stored, @sigstore/verify accepts gantry's
 * bundle, and each kind of tampering is rejected with its own reason.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../src/attest/legacy.js';
import { RegistryClient } from '../../src/registry/index.js';
import { publicKeyTrust } from '../../src/sign/bundle.js';
import { DSSE_ENVELOPE_MEDIA_TYPE } from '../../src/sign/constants.js';
import { legacyTag, RegistrySignatureStore } from '../../src/sign/store.js';
import type { SignedImage } from '../../src/sign/types.js';
import { cosign, cosignOk, emptyTrustedRoot, LOOPBACK_REGISTRY_FLAGS } from '../harness/cosign.js';
import { type FixtureImage, makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

const PASSWORD = 'attest password';
const env = { COSIGN_PASSWORD: PASSWORD };
const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';

let registry: TestRegistry;
let work: string;
let image: FixtureImage;
let other: FixtureImage;
let trustedRoot: string;
let predicate: string;
let gantryKey: { key: string; pub: string };
let cosignKey: { key: string; pub: string };
const client = new RegistryClient();
const store = new RegistrySignatureStore(client);

interface VerifyJson {
  digest: string;
  verified: { form: string; source: string; predicateType: string; statement: { subject: unknown[] } }[];
  rejected: { form: string; reason: string; message: string }[];
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-attest-'));
  trackTempDir(work);
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1, seed: 1 });
  other = await makeImageLayout({ dir: join(work, 'other'), tag: 'v2', layers: 1, seed: 2 });
  trustedRoot = await emptyTrustedRoot(work);
  predicate = join(work, 'provenance.json');
  await writeFile(
    predicate,
    JSON.stringify({
      builder: { id: 'https://ci.example/builder@v1' },
      buildType: 'https://ci.example/build@v1',
      invocation: { configSource: { uri: 'git+https://git.example/app', digest: { sha1: 'abc123' } } },
    }),
  );
  await gantryOk(['generate-key-pair', '--output-key-prefix', join(work, 'gantry')], { env });
  gantryKey = { key: join(work, 'gantry.key'), pub: join(work, 'gantry.pub') };
  await cosignOk(['generate-key-pair', '--output-key-prefix', 'cosign'], { env, cwd: work });
  cosignKey = { key: join(work, 'cosign.key'), pub: join(work, 'cosign.pub') };
});

afterAll(async () => {
  await client.close();
  await registry?.stop();
});

function signedImage(repository: string, fixture: FixtureImage = image): SignedImage {
  return {
    repo: { registry: registry.host, repository },
    descriptor: { mediaType: fixture.mediaType, digest: fixture.digest, size: 0 },
  };
}

function attest(ref: string, extra: string[] = []): ReturnType<typeof gantryOk> {
  return gantryOk(
    ['attest', '--key', gantryKey.key, '--type', 'slsaprovenance', '--predicate', predicate, ...extra, ref],
    { env },
  );
}

async function verifyJson(ref: string, pub: string, extra: string[] = []) {
  const result = await gantry(['verify-attestation', '--key', pub, '--output', 'json', ...extra, ref]);
  return { ...result, json: JSON.parse(result.stdout) as VerifyJson };
}

function cosignVerifyAttestation(
  ref: string,
  pub: string,
  type = 'slsaprovenance',
): ReturnType<typeof cosign> {
  return cosign(
    [
      'verify-attestation',
      '--key',
      pub,
      '--type',
      type,
      '--insecure-ignore-tlog=true',
      '--trusted-root',
      trustedRoot,
      ...LOOPBACK_REGISTRY_FLAGS,
      ref,
    ],
    { env },
  );
}

describe('gantry attest', () => {
  it('stores a .att layer and a bundle referrer that gantry, cosign and sigstore-js all verify', async () => {
    const ref = await pushFixture(image, registry, 'made-by-gantry:v1');
    const out = JSON.parse((await attest(ref, ['--json'])).stdout) as {
      digest: string;
      legacy: { tag: string };
      bundle: { digest: string; artifactType: string };
    };
    expect(out.digest).toBe(image.digest);
    expect(out.legacy.tag).toBe(legacyTag(image.digest, 'att'));

    const layers = await store.readLegacy(signedImage('made-by-gantry'), 'att');
    expect(layers).toHaveLength(1);
    expect(layers[0]?.mediaType).toBe(DSSE_ENVELOPE_MEDIA_TYPE);
    expect(layers[0]?.annotations.predicateType).toBe(SLSA_V02);
    const statement = JSON.parse(
      Buffer.from(parseEnvelope(layers[0]!.content, 'att').payload, 'base64').toString('utf8'),
    ) as { _type: string; subject: { name: string; digest: { sha256: string } }[] };
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.subject).toEqual([
      { name: `${registry.host}/made-by-gantry`, digest: { sha256: image.digest.slice(7) } },
    ]);

    const cosignResult = await cosignVerifyAttestation(ref, gantryKey.pub);
    expect(cosignResult.stderr + cosignResult.stdout).not.toMatch(/error/i);
    expect(cosignResult.code).toBe(0);

    const verified = await verifyJson(ref, gantryKey.pub, ['--type', 'slsaprovenance']);
    expect(verified.code).toBe(0);
    expect(verified.json.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
    expect(verified.json.rejected).toEqual([]);

    const [stored] = await store.listBundles(signedImage('made-by-gantry'));
    expect(stored?.descriptor.annotations?.['dev.sigstore.bundle.predicateType']).toBe(SLSA_V02);
    const publicKey = createPublicKey(await readFile(gantryKey.pub, 'utf8'));
    const bundle = bundleFromJSON(stored!.bundle);
    expect(() =>
      new Verifier(publicKeyTrust(publicKey), {
        tlogThreshold: 0,
        ctlogThreshold: 0,
        timestampThreshold: 0,
      }).verify(toSignedEntity(bundle)),
    ).not.toThrow();
  });

  it('appends a second attestation to the .att manifest, as cosign does', async () => {
    const ref = await pushFixture(image, registry, 'appended:v1');
    await attest(ref, ['--format', 'legacy']);
    const sbom = join(work, 'sbom.json');
    await writeFile(sbom, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [] }));
    await gantryOk(
      [
        'attest',
        '--key',
        gantryKey.key,
        '--type',
        'cyclonedx',
        '--predicate',
        sbom,
        '--format',
        'legacy',
        ref,
      ],
      {
        env,
      },
    );
    const layers = await store.readLegacy(signedImage('appended'), 'att');
    expect(layers.map((l) => l.annotations.predicateType)).toEqual([SLSA_V02, 'https://cyclonedx.org/bom']);
    expect((await cosignVerifyAttestation(ref, gantryKey.pub, 'cyclonedx')).code).toBe(0);
    const cdx = await verifyJson(ref, gantryKey.pub, ['--type', 'cyclonedx']);
    expect(cdx.code).toBe(0);
    expect(cdx.json.verified).toHaveLength(1);
  });
});

describe('cosign attest', () => {
  it('gantry verifies an attestation cosign made with its own key', async () => {
    const ref = await pushFixture(image, registry, 'made-by-cosign:v1');
    await cosignOk(
      [
        'attest',
        '--key',
        cosignKey.key,
        '--tlog-upload=false',
        '--predicate',
        predicate,
        '--type',
        'slsaprovenance',
        ...LOOPBACK_REGISTRY_FLAGS,
        ref,
      ],
      { env },
    );
    const verified = await verifyJson(ref, cosignKey.pub, ['--type', 'slsaprovenance']);
    expect(verified.code).toBe(0);
    expect(verified.json.verified[0]?.predicateType).toBe(SLSA_V02);
    // cosign writes v0.1 statements naming the repository and digest.
    expect(verified.json.verified[0]?.statement.subject).toEqual([
      { name: `${registry.host}/made-by-cosign`, digest: { sha256: image.digest.slice(7) } },
    ]);
  });
});

describe('tampering', () => {
  it('another key: rejected as signed by someone else', async () => {
    const ref = await pushFixture(image, registry, 'wrong-key:v1');
    await attest(ref);
    const result = await verifyJson(ref, cosignKey.pub);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[UNTRUSTED_SIGNER]');
    expect(result.json.rejected.map((r) => r.reason).sort()).toEqual(['bad-signature', 'wrong-key']);
    expect(result.stderr).toMatch(/signed by another key/);
    expect((await cosignVerifyAttestation(ref, cosignKey.pub)).code).not.toBe(0);
  });

  it('an edited predicate: the signature no longer verifies', async () => {
    const ref = await pushFixture(image, registry, 'edited:v1');
    await attest(ref, ['--format', 'legacy']);
    const target = signedImage('edited');
    const [layer] = await store.readLegacy(target, 'att');
    const envelope = parseEnvelope(layer!.content, 'att');
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as {
      predicate: { builder: { id: string } };
    };
    statement.predicate.builder.id = 'https://evil.example/builder';
    const tampered = {
      ...layer!,
      content: Buffer.from(
        JSON.stringify({ ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }),
      ),
    };
    const head = await client.headManifest(target.repo, legacyTag(image.digest, 'att'));
    await client.deleteManifest(target.repo, head!.digest);
    await store.appendLegacy(target, 'att', [tampered]);

    const result = await verifyJson(ref, gantryKey.pub);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[SIGNATURE_INVALID]');
    expect(result.json.rejected.map((r) => r.reason)).toEqual(['bad-signature']);
    expect((await cosignVerifyAttestation(ref, gantryKey.pub)).code).not.toBe(0);
  });

  it("another image's attestation: rejected as about another digest", async () => {
    const ref = await pushFixture(image, registry, 'moved:v1');
    const otherRef = await pushFixture(other, registry, 'moved:v2');
    await attest(ref, ['--format', 'legacy']);
    const layers = await store.readLegacy(signedImage('moved'), 'att');
    await store.appendLegacy(signedImage('moved', other), 'att', layers);

    const result = await verifyJson(otherRef, gantryKey.pub);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[SIGNATURE_INVALID]');
    expect(result.json.rejected.map((r) => r.reason)).toEqual(['wrong-subject']);
    expect(result.stderr).toContain(`statement is about sha256:${image.digest.slice(7)}`);
  });

  it('another predicate type: no attestation of that type', async () => {
    const ref = await pushFixture(image, registry, 'typed:v1');
    await attest(ref);
    const result = await verifyJson(ref, gantryKey.pub, ['--type', 'spdxjson']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[NO_SIGNATURES]');
    expect(result.json.rejected.map((r) => r.reason)).toEqual(['wrong-type', 'wrong-type']);
  });

  it('no attestations at all', async () => {
    const ref = await pushFixture(image, registry, 'bare:v1');
    const result = await gantry(['verify-attestation', '--key', gantryKey.pub, ref]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no attestations found');
  });
});
