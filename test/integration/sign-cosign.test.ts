/**
 * Signing interoperability with the real cosign (test/harness/cosign.ts) and sigstore-js, through gantry's CLI,
 * against a real registry without the referrers API (so bundles live under the fallback tag): cosign accepts
 * what gantry signs in each storage form, gantry accepts what cosign signs with either side's keys, and
 * @sigstore/verify accepts gantry's bundles.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImageManifest, MediaType } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import { BUNDLE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from '../../src/sign/constants.js';
import { decodePem, keyHint } from '../../src/sign/keys.js';
import { legacyTag, RegistrySignatureStore, signatureConfig } from '../../src/sign/store.js';
import { cosign, cosignOk, emptyTrustedRoot, LOOPBACK_REGISTRY_FLAGS } from '../harness/cosign.js';
import { type FixtureImage, makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

const PASSWORD = 'correct horse battery staple';
const env = { COSIGN_PASSWORD: PASSWORD };

let registry: TestRegistry;
let work: string;
let image: FixtureImage;
let trustedRoot: string;
/** gantry generate-key-pair output, and cosign generate-key-pair output. */
let gantryKey: { key: string; pub: string };
let cosignKey: { key: string; pub: string };
const client = new RegistryClient();

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-sign-cosign-'));
  trackTempDir(work);
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1 });
  trustedRoot = await emptyTrustedRoot(work);
  await gantryOk(['generate-key-pair', '--output-key-prefix', join(work, 'gantry')], { env });
  gantryKey = { key: join(work, 'gantry.key'), pub: join(work, 'gantry.pub') };
  await cosignOk(['generate-key-pair', '--output-key-prefix', 'cosign'], { env, cwd: work });
  cosignKey = { key: join(work, 'cosign.key'), pub: join(work, 'cosign.pub') };
});

afterAll(async () => {
  await client.close();
  await registry?.stop();
});

/** Pushes the fixture to its own repository, so each test's signatures stay apart. */
function push(repository: string): Promise<string> {
  return pushFixture(image, registry, `${repository}:v1`);
}

function cosignVerify(ref: string, pub: string): ReturnType<typeof cosign> {
  return cosign(
    [
      'verify',
      '--key',
      pub,
      '--insecure-ignore-tlog=true',
      '--trusted-root',
      trustedRoot,
      ...LOOPBACK_REGISTRY_FLAGS,
      ref,
    ],
    { env },
  );
}

function cosignSign(ref: string, key: string, extra: string[] = []): ReturnType<typeof cosignOk> {
  return cosignOk(['sign', '--key', key, '--tlog-upload=false', ...LOOPBACK_REGISTRY_FLAGS, ...extra, ref], {
    env,
  });
}

interface VerifyJson {
  digest: string;
  verified: { form: string; claims: { dockerReference?: string; annotations: Record<string, unknown> } }[];
  rejected: { form: string; reason: string }[];
}

async function gantryVerify(ref: string, pub: string, extra: string[] = []): Promise<VerifyJson> {
  const { stdout } = await gantryOk(['verify', '--key', pub, '--output', 'json', ...extra, ref]);
  return JSON.parse(stdout) as VerifyJson;
}

function repoOf(ref: string): { registry: string; repository: string } {
  const [host, ...rest] = ref.replace(/:v1$/, '').split('/');
  return { registry: host as string, repository: rest.join('/') };
}

describe('gantry generate-key-pair', () => {
  it("writes cosign's encrypted key format, which cosign signs with", async () => {
    const pem = await readFile(gantryKey.key, 'utf8');
    const { type, der } = decodePem(pem);
    expect(type).toBe('ENCRYPTED SIGSTORE PRIVATE KEY');
    const envelope = JSON.parse(der.toString('utf8'));
    expect(envelope.kdf).toMatchObject({ name: 'scrypt', params: { N: 65536, r: 8, p: 1 } });
    expect(Buffer.from(envelope.kdf.salt, 'base64')).toHaveLength(32);
    expect(envelope.cipher.name).toBe('nacl/secretbox');
    expect(Buffer.from(envelope.cipher.nonce, 'base64')).toHaveLength(24);
    expect(await readFile(gantryKey.pub, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);

    // cosign decrypts gantry's key: `cosign public-key` prints the same public key.
    const { stdout } = await cosignOk(['public-key', '--key', gantryKey.key], { env });
    expect(stdout).toBe(await readFile(gantryKey.pub, 'utf8'));
  });

  it('refuses to overwrite existing key files', async () => {
    const result = await gantry(['generate-key-pair', '--output-key-prefix', join(work, 'gantry')], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('already exists');
  });
});

describe('cosign accepts what gantry signs', () => {
  it('in the legacy .sig form, laid out as cosign lays it out', async () => {
    const ref = await push('legacy');
    await gantryOk(['sign', '--key', gantryKey.key, '--format', 'legacy', '-a', 'env=prod', ref], { env });
    const verified = await cosignVerify(ref, gantryKey.pub);
    expect(verified.stderr).toContain('The signatures were verified against the specified public key');
    expect(verified.code).toBe(0);
    const payloads = JSON.parse(verified.stdout) as { critical: Record<string, Record<string, string>> }[];
    expect(payloads[0]?.critical.image?.['docker-manifest-digest']).toBe(image.digest);
    expect(payloads[0]?.critical.identity?.['docker-reference']).toBe(`${registry.host}/legacy`);
    // cosign checks the signed annotations too.
    const annotated = await cosign([
      'verify',
      '--key',
      gantryKey.pub,
      '--insecure-ignore-tlog=true',
      '--trusted-root',
      trustedRoot,
      '-a',
      'env=dev',
      ...LOOPBACK_REGISTRY_FLAGS,
      ref,
    ]);
    expect(annotated.code).not.toBe(0);

    // Same manifest layout as cosign's own signature: compare with one cosign writes next to it.
    const theirs = await push('legacy-cosign');
    await cosignSign(theirs, gantryKey.key);
    const ours = await client.getManifest(repoOf(ref), legacyTag(image.digest, 'sig'));
    const cosigns = await client.getManifest(repoOf(theirs), legacyTag(image.digest, 'sig'));
    const shape = (bytes: Buffer) => {
      const m = JSON.parse(bytes.toString('utf8'));
      return {
        mediaType: m.mediaType,
        config: m.config.mediaType,
        layers: m.layers.map((l: { mediaType: string; annotations: object }) => [
          l.mediaType,
          Object.keys(l.annotations).sort(),
        ]),
      };
    };
    expect(shape(ours.bytes)).toEqual(shape(cosigns.bytes));
    expect(shape(ours.bytes).layers[0][0]).toBe(SIMPLE_SIGNING_MEDIA_TYPE);
    // gantry's config generator reproduces go-containerregistry's config of cosign's manifest byte for byte.
    const theirManifest = JSON.parse(cosigns.bytes.toString('utf8')) as ImageManifest;
    const chunks: Buffer[] = [];
    for await (const c of await client.getBlob(repoOf(theirs), theirManifest.config))
      chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(
      signatureConfig(theirManifest.layers).toString('utf8'),
    );
  });

  it('in the bundle form, as a referrer under the fallback tag', async () => {
    const ref = await push('bundle');
    await gantryOk(['sign', '--key', gantryKey.key, '--format', 'bundle', ref], { env });
    const referrers = await client.listReferrers(repoOf(ref), image.digest);
    expect(referrers).toHaveLength(1);
    expect(referrers[0]).toMatchObject({ mediaType: MediaType.ociManifest, artifactType: BUNDLE_MEDIA_TYPE });
    expect(referrers[0]?.annotations).toMatchObject({
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1',
    });
    const verified = await cosignVerify(ref, gantryKey.pub);
    expect(verified.stderr + verified.stdout).not.toContain('Error');
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain(image.digest);
  });

  it('in both forms by default (cosign then reads the bundle), also after gantry copies the image', async () => {
    const ref = await push('both');
    await gantryOk(['sign', '--key', gantryKey.key, `docker://${ref}`], { env });
    expect((await cosignVerify(ref, gantryKey.pub)).code).toBe(0);
    const result = await gantryVerify(ref, gantryKey.pub);
    expect(result.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
    expect(result.rejected).toEqual([]);

    // The copy carries the .sig tag and the bundle referrer (fallback tag): cosign verifies the mirror, and
    // so does gantry in both forms once told which repository the signatures name.
    const mirror = `${registry.host}/mirror/both:v1`;
    await gantryOk(['copy', `docker://${ref}`, `docker://${mirror}`]);
    expect((await cosignVerify(mirror, gantryKey.pub)).code).toBe(0);
    const mirrored = await gantryVerify(mirror, gantryKey.pub, ['--identity', ref.replace(/:v1$/, '')]);
    expect(mirrored.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
  });

  it('signed with a key read through --passphrase-file', async () => {
    const ref = await push('passphrase-file');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(work, 'password.txt'), `${PASSWORD}\n`);
    await gantryOk(
      [
        'sign',
        '--key',
        gantryKey.key,
        '--passphrase-file',
        join(work, 'password.txt'),
        '--format',
        'legacy',
        ref,
      ],
      { env: { COSIGN_PASSWORD: 'wrong' } },
    );
    expect((await cosignVerify(ref, gantryKey.pub)).code).toBe(0);
    const wrong = await gantry(['sign', '--key', gantryKey.key, ref], { env: { COSIGN_PASSWORD: 'wrong' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('cannot decrypt the private key: wrong password? [KEY_INVALID]');
  });

  it('signed with a key cosign generated', async () => {
    const ref = await push('cosign-key');
    await gantryOk(['sign', '--key', cosignKey.key, '--format', 'legacy', ref], { env });
    expect((await cosignVerify(ref, cosignKey.pub)).code).toBe(0);
  });
});

describe('gantry accepts what cosign signs', () => {
  it('legacy signatures made with a key gantry generated, next to its own', async () => {
    const ref = await push('by-cosign-gantry-key');
    await cosignSign(ref, gantryKey.key, ['-a', 'team=blue']);
    const result = await gantryVerify(ref, gantryKey.pub, ['-a', 'team=blue']);
    expect(result.verified).toHaveLength(1);
    expect(result.verified[0]).toMatchObject({
      form: 'legacy',
      claims: { dockerReference: `${registry.host}/by-cosign-gantry-key` },
    });

    // gantry appends to cosign's .sig manifest instead of replacing it.
    await gantryOk(['sign', '--key', gantryKey.key, '--format', 'legacy', ref], { env });
    const both = await gantryVerify(ref, gantryKey.pub);
    expect(both.verified.filter((v) => v.form === 'legacy')).toHaveLength(2);
    expect((await cosignVerify(ref, gantryKey.pub)).code).toBe(0);
  });

  it('legacy signatures made with a key cosign generated', async () => {
    const ref = await push('by-cosign-cosign-key');
    await cosignSign(ref, cosignKey.key);
    const result = await gantryVerify(ref, cosignKey.pub);
    expect(result.verified.map((v) => v.form)).toEqual(['legacy']);
  });

  it('bundles made with --new-bundle-format', async () => {
    const ref = await push('by-cosign-bundle');
    await cosignSign(ref, cosignKey.key, ['--new-bundle-format']);
    const result = await gantryVerify(ref, cosignKey.pub);
    expect(result.verified.map((v) => v.form)).toEqual(['bundle']);
    // cosign's statements name only the digest: there is no reference to compare.
    expect(result.verified[0]?.claims.dockerReference).toBeUndefined();
  });

  it('plain PEM EC keys import for signing', async () => {
    const ref = await push('pem-key');
    const { generateKeyPairSync } = await import('node:crypto');
    const { writeFile } = await import('node:fs/promises');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(work, 'plain.pem'), privateKey.export({ format: 'pem', type: 'sec1' }));
    await writeFile(join(work, 'plain.pub'), publicKey.export({ format: 'pem', type: 'spki' }));
    await gantryOk(['sign', '--key', join(work, 'plain.pem'), ref]);
    expect((await cosignVerify(ref, join(work, 'plain.pub'))).code).toBe(0);
  });
});

describe('sigstore-js', () => {
  it("accepts gantry's bundles with trust material built from the public key", async () => {
    const ref = await push('sigstore-js');
    await gantryOk(['sign', '--key', gantryKey.key, '--format', 'bundle', ref], { env });
    const store = new RegistrySignatureStore(client);
    const head = await client.headManifest(repoOf(ref), 'v1');
    const [stored] = await store.listBundles({ repo: repoOf(ref), descriptor: head! });
    const publicKey = createPublicKey(await readFile(gantryKey.pub, 'utf8'));
    const trust = toTrustMaterial(
      {
        mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
        tlogs: [],
        certificateAuthorities: [],
        ctlogs: [],
        timestampAuthorities: [],
      },
      {
        [keyHint(publicKey)]: {
          rawBytes: publicKey.export({ format: 'der', type: 'spki' }),
          keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
          validFor: { start: new Date(0) },
        },
      },
    );
    const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    const entity = toSignedEntity(bundleFromJSON(stored!.bundle));
    expect(verifier.verify(entity).key).toBeDefined();
  });
});
