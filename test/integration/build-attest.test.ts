/**
 * `gantry build --sign-by --provenance --sbom` end to end against a real registry, with the real cosign as the
 * oracle: the pushed image is signed in both forms (gantry and cosign verify it), and carries a SLSA provenance
 * v1 attestation (Dockerfile, build args, base image digest) and an SPDX 2.3 SBOM (every copied file with its
 * sha256; dpkg and apk packages) that gantry and cosign verify.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosign, emptyTrustedRoot, LOOPBACK_REGISTRY_FLAGS } from '../harness/cosign.js';
import { makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

const PASSWORD = 'build attest password';
const env = { COSIGN_PASSWORD: PASSWORD };
const SLSA_V1 = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document';
const SECRET = 'never-in-provenance';

let registry: TestRegistry;
let work: string;
let key: { key: string; pub: string };
let trustedRoot: string;

interface Verified {
  form: string;
  predicateType: string;
  statement: { subject: { name: string; digest: { sha256: string } }[]; predicate: unknown };
}

interface SpdxJson {
  spdxVersion: string;
  files: { fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[];
  packages: { name: string; versionInfo: string; externalRefs?: { referenceLocator: string }[] }[];
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'gantry-build-attest-'));
  trackTempDir(work);
  trustedRoot = await emptyTrustedRoot(work);
  await gantryOk(['generate-key-pair', '--output-key-prefix', join(work, 'build')], { env });
  key = { key: join(work, 'build.key'), pub: join(work, 'build.pub') };
});

afterAll(async () => {
  await registry?.stop();
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A build context holding `files` (path → content) and the Dockerfile. */
async function context(name: string, dockerfile: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

async function buildAndPush(dir: string, ref: string, ...extra: string[][]): Promise<string> {
  const digestFile = join(dir, '..', `${ref.replace(/\W/g, '_')}.digest`);
  await gantryOk(
    [
      'build',
      '--digestfile',
      digestFile,
      '-o',
      `type=registry,name=${ref}`,
      '--sign-by',
      key.key,
      '--provenance',
      '--sbom',
      ...extra.flat(),
      dir,
    ],
    { env: { ...env, BUILD_TOKEN: SECRET, GANTRY_STORE: join(work, 'store') } },
  );
  return readFile(digestFile, 'utf8');
}

async function verifiedAttestations(ref: string, type: string): Promise<Verified[]> {
  const { stdout } = await gantryOk([
    'verify-attestation',
    '--key',
    key.pub,
    '--type',
    type,
    '--output',
    'json',
    ref,
  ]);
  const json = JSON.parse(stdout) as { verified: Verified[]; rejected: { reason: string }[] };
  // The other attestation of the build is listed as of the wrong type; nothing else may be rejected.
  expect(json.rejected.filter((r) => r.reason !== 'wrong-type')).toEqual([]);
  expect(json.verified.map((v) => v.form).sort()).toEqual(['bundle', 'legacy']);
  return json.verified;
}

function cosignVerifyAttestation(ref: string, type: string) {
  return cosign(
    [
      'verify-attestation',
      '--key',
      key.pub,
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

describe('gantry build --sign-by --provenance --sbom', () => {
  it('signs the pushed image and attaches provenance and an SBOM that gantry and cosign verify', async () => {
    const baseImage = await makeImageLayout({ dir: join(work, 'base'), tag: 'v1', layers: 1, seed: 3 });
    const baseRef = await pushFixture(baseImage, registry, 'base:v1');
    const files = { 'app/main.txt': 'hello from the app\n', 'app/conf/settings.ini': 'mode=test\n' };
    const dir = await context(
      'app',
      `FROM ${baseRef}\nARG FLAVOUR=plain\nCOPY app/main.txt /srv/main.txt\nCOPY app/conf/ /srv/conf/\n`,
      files,
    );
    const ref = `${registry.host}/built/app:v1`;
    const digest = await buildAndPush(
      dir,
      ref,
      ['--build-arg', 'FLAVOUR=spicy', '--build-arg', `HTTP_PROXY=http://user:${SECRET}@proxy.example`],
      ['--secret', 'id=token,env=BUILD_TOKEN'],
    );

    expect((await gantry(['verify', '--key', key.pub, ref])).code).toBe(0);
    const cosignVerify = await cosign(
      [
        'verify',
        '--key',
        key.pub,
        '--insecure-ignore-tlog=true',
        '--trusted-root',
        trustedRoot,
        ...LOOPBACK_REGISTRY_FLAGS,
        ref,
      ],
      { env },
    );
    expect(cosignVerify.stderr).not.toMatch(/error/i);
    expect(cosignVerify.code).toBe(0);

    const [provenance] = await verifiedAttestations(ref, 'slsaprovenance1');
    expect(provenance?.predicateType).toBe(SLSA_V1);
    expect(provenance?.statement.subject).toEqual([
      { name: `${registry.host}/built/app`, digest: { sha256: digest.slice(7) } },
    ]);
    const predicate = provenance?.statement.predicate as {
      buildDefinition: {
        externalParameters: { dockerfile: string; buildArgs: Record<string, string> };
        resolvedDependencies: { name: string; uri?: string; digest: { sha256: string } }[];
      };
      runDetails: { builder: { id: string }; metadata: { startedOn: string; finishedOn: string } };
    };
    expect(predicate.buildDefinition.externalParameters.dockerfile).toBe('Dockerfile');
    // Proxy variables may carry credentials and are left out, as BuildKit does; secrets are never recorded.
    expect(predicate.buildDefinition.externalParameters.buildArgs).toEqual({ FLAVOUR: 'spicy' });
    expect(JSON.stringify(provenance?.statement)).not.toContain(SECRET);
    expect(predicate.buildDefinition.resolvedDependencies).toContainEqual({
      uri: `docker://${baseRef}`,
      name: baseRef,
      digest: { sha256: baseImage.digest.slice(7) },
    });
    expect(predicate.runDetails.builder.id).toMatch(/^https:\/\//);
    expect(Date.parse(predicate.runDetails.metadata.finishedOn)).toBeGreaterThanOrEqual(
      Date.parse(predicate.runDetails.metadata.startedOn),
    );

    const [sbom] = await verifiedAttestations(ref, 'spdxjson');
    expect(sbom?.predicateType).toBe(SPDX);
    const doc = sbom?.statement.predicate as SpdxJson;
    expect(doc.spdxVersion).toBe('SPDX-2.3');
    const byName = new Map(doc.files.map((f) => [f.fileName, f.checksums]));
    expect(byName.get('./srv/main.txt')).toContainEqual({
      algorithm: 'SHA256',
      checksumValue: sha256(files['app/main.txt']),
    });
    expect(byName.get('./srv/conf/settings.ini')).toContainEqual({
      algorithm: 'SHA256',
      checksumValue: sha256(files['app/conf/settings.ini']),
    });
    // The base image's files are in the flattened filesystem too.
    expect(doc.files.length).toBeGreaterThan(2);

    for (const type of ['slsaprovenance1', 'spdxjson']) {
      const result = await cosignVerifyAttestation(ref, type);
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.code).toBe(0);
    }
  });

  it('lists the packages of a Debian-like dpkg status file and an apk database in the SBOM', async () => {
    const dpkg = [
      'Package: libc6',
      'Status: install ok installed',
      'Architecture: amd64',
      'Version: 2.36-9+deb12u4',
      'Description: GNU C Library',
      ' shared libraries',
      '',
      'Package: zlib1g',
      'Status: install ok installed',
      'Architecture: amd64',
      'Version: 1:1.2.13.dfsg-1',
      '',
      'Package: removed-tool',
      'Status: deinstall ok config-files',
      'Version: 1.0',
      '',
    ].join('\n');
    const apk = ['P:musl', 'V:1.2.4-r2', 'A:x86_64', 'L:MIT', '', ''].join('\n');
    const dir = await context(
      'debian',
      'FROM scratch\nCOPY status /var/lib/dpkg/status\nCOPY installed /lib/apk/db/installed\n',
      { status: dpkg, installed: apk },
    );
    const ref = `${registry.host}/built/debian:v1`;
    await buildAndPush(dir, ref);
    const [sbom] = await verifiedAttestations(ref, 'spdxjson');
    const doc = sbom?.statement.predicate as SpdxJson;
    const packages = doc.packages.map((p) => `${p.name} ${p.versionInfo}`);
    expect(packages).toContain('libc6 2.36-9+deb12u4');
    expect(packages).toContain('zlib1g 1:1.2.13.dfsg-1');
    expect(packages).toContain('musl 1.2.4-r2');
    expect(packages.some((p) => p.startsWith('removed-tool'))).toBe(false);
    const purls = doc.packages.flatMap((p) => (p.externalRefs ?? []).map((r) => r.referenceLocator));
    expect(purls).toContain('pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64');
    expect(doc.files.map((f) => f.fileName)).toEqual(['./lib/apk/db/installed', './var/lib/dpkg/status']);
  });

  it('refuses --provenance without a registry output, before building', async () => {
    const dir = await context('nowhere', 'FROM scratch\nCOPY a /a\n', { a: 'a' });
    const result = await gantry(['build', '--provenance', '-o', `type=oci,dest=${join(work, 'l')}`, dir], {
      env: { GANTRY_STORE: join(work, 'store') },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('--output type=registry');
  });
});
