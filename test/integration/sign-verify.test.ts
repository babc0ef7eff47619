/**
 * `gantry verify` against tampering, through the CLI and a real registry: each attack (payload edited, signature
 * moved to another digest, wrong key, wrong identity, missing annotation) is rejected with its own reason, in
 * both storage forms. Also `gantry copy` carrying both forms and signing with `--sign-by`.
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
import { type FixtureImage, makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

const env = { COSIGN_PASSWORD: 'pw' };

let registry: TestRegistry;
let work: string;
let image: FixtureImage;
let other: FixtureImage;
let key: { key: string; pub: string };
let otherKey: { key: string; pub: string };
const client = new RegistryClient();
const store = new RegistrySignatureStore(client);

interface VerifyJson {
  verified: { form: string; source: string }[];
  rejected: { form: string; reason: string; message: string }[];
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-sign-verify-'));
  trackTempDir(work);
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1, seed: 1 });
  other = await makeImageLayout({ dir: join(work, 'other'), tag: 'v1', layers: 1, seed: 2 });
  for (const name of ['a', 'b']) {
    await gantryOk(['generate-key-pair', '--output-key-prefix', join(work, name)], { env });
  }
  key = { key: join(work, 'a.key'), pub: join(work, 'a.pub') };
  otherKey = { key: join(work, 'b.key'), pub: join(work, 'b.pub') };
});

afterAll(async () => {
  await client.close();
  await registry?.stop();
});

/** Pushes `fixture` as `repository:v1` and signs it in both forms. */
async function pushSigned(repository: string, fixture = image, extra: string[] = []): Promise<string> {
  const ref = await pushFixture(fixture, registry, `${repository}:v1`);
  await gantryOk(['sign', '--key', key.key, ...extra, ref], { env });
  return ref;
}

async function signedImage(ref: string): Promise<SignedImage> {
  const [host, ...rest] = ref.replace(/:v1$/, '').split('/');
  return resolveSignedImage(client, { registry: host as string, repository: rest.join('/'), tag: 'v1' });
}

/** Runs verify expecting failure; returns the JSON report and stderr. */
async function verifyFails(ref: string, args: string[] = []): Promise<VerifyJson & { stderr: string }> {
  const result = await gantry(['verify', '--key', key.pub, '--output', 'json', ...args, ref]);
  expect(result.code).toBe(1);
  return { ...(JSON.parse(result.stdout) as VerifyJson), stderr: result.stderr };
}

function reasons(report: VerifyJson): Record<string, string> {
  return Object.fromEntries(report.rejected.map((r) => [r.form, r.reason]));
}

describe('gantry verify', () => {
  it('accepts its own signatures in both forms, with their annotations', async () => {
    const ref = await pushSigned('good', image, ['-a', 'env=prod']);
    const text = await gantryOk(['verify', '--key', key.pub, '-a', 'env=prod', ref]);
    expect(text.stdout).toContain('legacy signature');
    expect(text.stdout).toContain('bundle signature');
    const bad = await verifyFails(ref, ['-a', 'env=dev']);
    expect(reasons(bad)).toEqual({ legacy: 'missing-annotation', bundle: 'missing-annotation' });
    expect(bad.stderr).toContain('annotation env is "prod", expected "dev"');
  });

  it('reports an unsigned image as NO_SIGNATURES', async () => {
    const ref = await pushFixture(image, registry, 'unsigned:v1');
    const result = await gantry(['verify', '--key', key.pub, ref]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no signatures found');
    expect(result.stderr).toContain('[NO_SIGNATURES]');
  });

  it('rejects a wrong key: the bundle names another key, the legacy signature does not verify', async () => {
    const ref = await pushSigned('wrong-key');
    const result = await gantry(['verify', '--key', otherKey.pub, '--output', 'json', ref]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VerifyJson;
    expect(reasons(report)).toEqual({ legacy: 'bad-signature', bundle: 'wrong-key' });
    expect(result.stderr).toContain('signed by another key');
  });

  it('rejects edited payloads in both forms', async () => {
    const ref = await pushFixture(image, registry, 'edited:v1');
    const signed = await pushSigned('edited-source');
    const target = await signedImage(ref);
    const source = await signedImage(signed);

    // Legacy: the same signature annotation over a payload that now claims an extra annotation.
    const [layer] = await store.readLegacy(source, 'sig');
    const payload = JSON.parse(layer!.content.toString('utf8'));
    payload.optional = { approved: 'yes' };
    await store.appendLegacy(target, 'sig', [{ ...layer!, content: Buffer.from(JSON.stringify(payload)) }]);

    // Bundle: the DSSE payload rewritten to name another repository, the signature kept.
    const [stored] = await store.listBundles(source);
    const bundle = structuredClone(stored!.bundle);
    if (!('dsseEnvelope' in bundle) || !bundle.dsseEnvelope) throw new Error('expected a DSSE bundle');
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
    statement.subject[0].name = ref.replace(/:v1$/, '');
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    await store.putBundle(target, bundle, {
      content: 'dsse-envelope',
      predicateType: stored!.descriptor.annotations?.['dev.sigstore.bundle.predicateType'],
    });

    const report = await verifyFails(ref);
    expect(reasons(report)).toEqual({ legacy: 'bad-signature', bundle: 'bad-signature' });
    expect(report.stderr).toContain('signature does not verify with the given key');
  });

  it('rejects signatures moved to another digest', async () => {
    const signed = await pushSigned('moved-source');
    const ref = await pushFixture(other, registry, 'moved-source:other');
    const [host, ...rest] = ref.split('/');
    const target = await resolveSignedImage(client, {
      registry: host as string,
      repository: rest.join('/').replace(/:other$/, ''),
      tag: 'other',
    });
    const source = await signedImage(signed);
    await store.appendLegacy(target, 'sig', await store.readLegacy(source, 'sig'));
    const [stored] = await store.listBundles(source);
    await store.putBundle(target, stored!.bundle, { content: 'dsse-envelope' });

    const report = await verifyFails(ref);
    expect(reasons(report)).toEqual({ legacy: 'wrong-digest', bundle: 'wrong-digest' });
    expect(report.stderr).toContain('[SIGNATURE_INVALID]');
    expect(report.stderr).toContain(`payload signs ${image.digest}, not this image (${other.digest})`);
  });

  it('rejects signatures that name another repository unless --identity names it', async () => {
    const signed = await pushSigned('origin');
    const mirror = `${registry.host}/mirror/app:v1`;
    await gantryOk(['copy', `docker://${signed}`, `docker://${mirror}`]);
    const report = await verifyFails(mirror);
    expect(reasons(report)).toEqual({ legacy: 'wrong-identity', bundle: 'wrong-identity' });
    expect(report.stderr).toContain('[UNTRUSTED_SIGNER]');
    expect(report.stderr).toContain(
      `payload names ${registry.host}/origin, expected ${registry.host}/mirror/app`,
    );
    const ok = await gantryOk([
      'verify',
      '--key',
      key.pub,
      '--identity',
      `${registry.host}/origin`,
      '-o',
      'json',
      mirror,
    ]);
    expect((JSON.parse(ok.stdout) as VerifyJson).verified.map((v) => v.form).sort()).toEqual([
      'bundle',
      'legacy',
    ]);
  });

  it('rejects a .sig layer without a signature annotation as an invalid payload', async () => {
    const ref = await pushFixture(image, registry, 'unsigned-layer:v1');
    const signed = await pushSigned('unsigned-layer-source', image, ['--format', 'legacy']);
    const [layer] = await store.readLegacy(await signedImage(signed), 'sig');
    const annotations = { ...layer!.annotations };
    delete annotations[Annotation.signature];
    await store.appendLegacy(await signedImage(ref), 'sig', [{ ...layer!, annotations }]);
    const report = await verifyFails(ref, ['--format', 'legacy']);
    expect(reasons(report)).toEqual({ legacy: 'invalid-payload' });
  });
});

describe('gantry copy', () => {
  it('--sign-by signs the destination digest in both forms', async () => {
    const src = await pushFixture(image, registry, 'to-sign:v1');
    const dest = `${registry.host}/signed-on-copy:v1`;
    await gantryOk(['copy', '--sign-by', key.key, `docker://${src}`, `docker://${dest}`], { env });
    const ok = await gantryOk(['verify', '--key', key.pub, '-o', 'json', dest]);
    expect((JSON.parse(ok.stdout) as VerifyJson).verified.map((v) => v.form).sort()).toEqual([
      'bundle',
      'legacy',
    ]);
    // The source stays unsigned.
    expect((await gantry(['verify', '--key', key.pub, src])).code).toBe(1);
  });

  it('--sign-by refuses destinations that cannot hold signatures before copying', async () => {
    const result = await gantry(
      ['copy', '--sign-by', key.key, `docker://${registry.host}/x/y:v1`, `oci:${join(work, 'layout')}:v1`],
      { env },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--sign-by needs a registry (docker://) destination');
  });
});
