/**
 * Authentication and TLS through the CLI against real registries: htpasswd Basic, token (Bearer with
 * repository scopes) and TLS with a generated CA; login/logout write the auth file the other tools read.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FixtureImage, makeImageLayout, skopeo } from '../harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let work: string;
let image: FixtureImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gantry-auth-'));
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 2, layerSize: 64 * 1024 });
});

describe.each(['htpasswd', 'token'] as const)('%s auth', (auth) => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pushes and pulls with --dest-creds / --src-creds', async () => {
    const creds = `${registry.username}:${registry.password}`;
    const ref = `docker://${registry.host}/team/app:v1`;
    await gantryOk(['copy', '--dest-creds', creds, `oci:${image.layoutDir}:v1`, ref]);
    const copied = await gantryOk([
      'copy',
      '--json',
      '--src-creds',
      creds,
      '--dest-creds',
      creds,
      ref,
      `docker://${registry.host}/team/copy:v1`,
    ]);
    expect((JSON.parse(copied.stdout) as { digest: string }).digest).toBe(image.digest);
    const { stdout } = await skopeo(['inspect', '--tls-verify=false', '--creds', creds, ref]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.digest);
  });

  it('fails with a clear error naming the registry on bad credentials, and writes nothing', async () => {
    const result = await gantry([
      'copy',
      '--dest-creds',
      `${registry.username}:wrong-password`,
      `oci:${image.layoutDir}:v1`,
      `docker://${registry.host}/team/denied:v1`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('UNAUTHORIZED');
    expect(result.stderr).toContain(registry.host);
    expect(result.stderr).not.toContain('wrong-password');
  });

  it('login stores credentials that copy and skopeo use; logout removes them', async () => {
    const authfile = join(work, `${auth}-auth.json`);
    await gantryOk(
      ['login', '--authfile', authfile, '-u', registry.username!, '--password-stdin', registry.host],
      {
        input: `${registry.password}\n`,
      },
    );
    const stored = JSON.parse(await readFile(authfile, 'utf8')) as {
      auths: Record<string, { auth: string }>;
    };
    expect(Buffer.from(stored.auths[registry.host]!.auth, 'base64').toString()).toBe(
      `${registry.username}:${registry.password}`,
    );
    const ref = `docker://${registry.host}/team/login:v1`;
    await gantryOk(['copy', '--authfile', authfile, `oci:${image.layoutDir}:v1`, ref]);
    await skopeo(['inspect', '--tls-verify=false', '--authfile', authfile, ref]);
    await gantryOk(['logout', '--authfile', authfile, registry.host]);
    // Pushing needs credentials on both variants (the token server hands out anonymous pull-only tokens).
    const denied = await gantry([
      'copy',
      '--authfile',
      authfile,
      `oci:${image.layoutDir}:v1`,
      `${ref}-after-logout`,
    ]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('UNAUTHORIZED');
  });

  it('login with a wrong password fails and stores nothing', async () => {
    const authfile = join(work, `${auth}-bad.json`);
    const result = await gantry([
      'login',
      '--authfile',
      authfile,
      '-u',
      registry.username!,
      '-p',
      'nope',
      registry.host,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(registry.host);
    await expect(readFile(authfile)).rejects.toThrow();
  });
});

describe('TLS with a generated CA', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('verifies the registry with --dest-cert-dir, and refuses it without', async () => {
    const ref = `docker://${registry.host}/secure/app:v1`;
    const refused = await gantry(['copy', `oci:${image.layoutDir}:v1`, ref]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(registry.host);
    await gantryOk([
      'copy',
      '--dest-cert-dir',
      join(registry.certDir!, registry.host),
      `oci:${image.layoutDir}:v1`,
      ref,
    ]);
    const { stdout } = await skopeo(['inspect', '--cert-dir', join(registry.certDir!, registry.host), ref]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.digest);
    // --tls-verify=false still speaks TLS but accepts the unknown CA.
    await gantryOk(['inspect', '--tls-verify=false', ref]);
  });

  it('trusts a CA given in NODE_EXTRA_CA_CERTS, which bin/gantry hands to the client to read lazily', async () => {
    const ref = `docker://${registry.host}/secure/extra:v1`;
    // A bundle like a system one: certificates Node already trusts, then the test CA.
    const bundle = join(work, 'extra-bundle.pem');
    const { rootCertificates } = await import('node:tls');
    await writeFile(
      bundle,
      `${rootCertificates.slice(0, 3).join('\n')}\n${await readFile(registry.caCertPath!, 'utf8')}`,
    );
    const env = { ...process.env, CI: 'true', NODE_EXTRA_CA_CERTS: bundle };
    delete env.GANTRY_EXTRA_CA_CERTS;
    const sh = join(import.meta.dirname, '..', '..', 'bin', 'gantry');
    const copied = await run(sh, ['copy', '--quiet', `oci:${image.layoutDir}:v1`, ref], env);
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    const inspected = await run(sh, ['inspect', ref], env);
    expect(inspected.code).toBe(0);
    expect((JSON.parse(inspected.stdout) as { Digest: string }).Digest).toBe(image.digest);
    // The same file as GANTRY_EXTRA_CA_CERTS (what bin/gantry passes on) works with bin/gantry.cjs directly.
    await gantryOk(['inspect', ref], { env: { NODE_EXTRA_CA_CERTS: '', GANTRY_EXTRA_CA_CERTS: bundle } });
    // Without the extra CA the registry is refused, naming it.
    const refused = await gantry(['inspect', ref], {
      env: { NODE_EXTRA_CA_CERTS: '', GANTRY_EXTRA_CA_CERTS: '' },
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(registry.host);
  });

  it('names the extra CA file when it cannot be read', async () => {
    const missing = join(work, 'no-such-bundle.pem');
    const result = await gantry(['inspect', `docker://${registry.host}/secure/app:v1`], {
      env: { NODE_EXTRA_CA_CERTS: '', GANTRY_EXTRA_CA_CERTS: missing },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(missing);
  });
});

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

describe('mutual TLS', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true, clientCerts: true });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('presents client.cert/client.key from --dest-cert-dir, and is refused without them', async () => {
    const ref = `docker://${registry.host}/mtls/app:v1`;
    const caOnly = join(work, 'ca-only');
    await mkdir(caOnly, { recursive: true });
    await writeFile(join(caOnly, 'ca.crt'), await readFile(registry.caCertPath!));
    const refused = await gantry(['copy', '--dest-cert-dir', caOnly, `oci:${image.layoutDir}:v1`, ref]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(registry.host);
    await gantryOk([
      'copy',
      '--dest-cert-dir',
      join(registry.certDir!, registry.host),
      `oci:${image.layoutDir}:v1`,
      ref,
    ]);
    // The containers certs.d layout works too: --cert-dir pointing at the parent with a host directory.
    const info = await gantryOk(['inspect', '--cert-dir', registry.certDir!, ref]);
    expect((JSON.parse(info.stdout) as { Digest: string }).Digest).toBe(image.digest);
  });
});
