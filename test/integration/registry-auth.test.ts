/**
 * RegistryClient authentication and TLS against real docker-registry processes: htpasswd Basic, token auth
 * (credentials, identity tokens, anonymous pull-only), TLS with a cert dir and with verification off.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import { MediaType, sha256Digest } from '../../src/oci/index.js';
import { parseWwwAuthenticate, RegistryClient } from '../../src/registry/index.js';
import type { Credential } from '../../src/registry/types.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

function blob(size: number) {
  const bytes = randomBytes(size);
  const descriptor = { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(bytes), size };
  return { bytes, descriptor, open: async (offset: number) => Readable.from([bytes.subarray(offset)]) };
}

const creds =
  (reg: TestRegistry, password = reg.password!) =>
  async (host: string) =>
    host === reg.host ? ({ kind: 'basic', username: reg.username!, password } as Credential) : undefined;

async function rejection(promise: Promise<unknown>): Promise<GantryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GantryError);
  return err as GantryError;
}

describe('htpasswd registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(async () => reg?.stop());

  it('logs in, pushes and pulls with Basic credentials', async () => {
    const client = new RegistryClient({ credentials: creds(reg) });
    await client.ping(reg.host);
    const repo = { registry: reg.host, repository: 'basic/app' };
    const b = blob(200_000);
    await client.uploadBlob(repo, b.descriptor, b.open);
    expect(await client.hasBlob(repo, b.descriptor.digest)).toBe(true);
    await client.close();
  });

  it('names the registry on bad or missing credentials, without leaking the password', async () => {
    const client = new RegistryClient({ credentials: creds(reg, 'wrong-secret') });
    const err = await rejection(client.ping(reg.host));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    expect(err.message).not.toContain('wrong-secret');
    const anonymous = new RegistryClient();
    expect(
      (await rejection(anonymous.hasBlob({ registry: reg.host, repository: 'a/b' }, sha256Digest('x')))).code,
    ).toBe('UNAUTHORIZED');
    await client.close();
    await anonymous.close();
  });
});

describe('token-auth registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => reg?.stop());

  it('pushes with credentials, mounts across repositories and caches tokens per scope', async () => {
    const client = new RegistryClient({ credentials: creds(reg) });
    await client.ping(reg.host);
    const from = { registry: reg.host, repository: 'token/source' };
    const to = { registry: reg.host, repository: 'token/target' };
    const b = blob(100_000);
    await client.uploadBlob(from, b.descriptor, b.open);
    const issuedBefore = reg.tokenStats!.issued;
    // Same scope again: served from the token cache.
    const again = blob(1000);
    await client.uploadBlob(from, again.descriptor, again.open);
    expect(reg.tokenStats!.issued).toBe(issuedBefore);
    expect(await client.mountBlob(to, b.descriptor.digest, from.repository)).toBe(true);
    expect(await client.hasBlob(to, b.descriptor.digest)).toBe(true);
    await client.close();
  });

  it('lets anonymous clients pull but refuses their pushes with UNAUTHORIZED', async () => {
    const pusher = new RegistryClient({ credentials: creds(reg) });
    const repo = { registry: reg.host, repository: 'token/public' };
    const b = blob(5000);
    await pusher.uploadBlob(repo, b.descriptor, b.open);
    await pusher.close();

    const anonymous = new RegistryClient();
    expect(await anonymous.hasBlob(repo, b.descriptor.digest)).toBe(true);
    const other = blob(5000);
    const err = await rejection(anonymous.uploadBlob(repo, other.descriptor, other.open));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    await anonymous.close();
  });

  it('exchanges an identity token (refresh token) at the token server', async () => {
    const challenge = parseWwwAuthenticate(
      (await fetch(`${reg.url}/v2/`)).headers.get('www-authenticate') ?? '',
    );
    const service = challenge[0]!.params.service!;
    const basic = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    const res = await fetch(`${reg.tokenServerUrl}?service=${service}&offline_token=true`, {
      headers: { authorization: `Basic ${basic}` },
    });
    const { refresh_token } = (await res.json()) as { refresh_token: string };
    const client = new RegistryClient({
      credentials: async () => ({ kind: 'identityToken', token: refresh_token }),
    });
    const repo = { registry: reg.host, repository: 'token/identity' };
    const b = blob(3000);
    await client.uploadBlob(repo, b.descriptor, b.open);
    expect(await client.hasBlob(repo, b.descriptor.digest)).toBe(true);
    await client.close();
  });

  it('reports bad credentials as UNAUTHORIZED naming the registry', async () => {
    const client = new RegistryClient({ credentials: creds(reg, 'nope-nope') });
    const err = await rejection(client.ping(reg.host));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    expect(err.message).toContain('invalid credentials');
    expect(err.message).not.toContain('nope-nope');
    await client.close();
  });
});

describe('TLS registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true });
  });
  afterAll(async () => reg?.stop());

  it('trusts the CA from a certs.d-style cert dir', async () => {
    const client = new RegistryClient({ certDir: reg.certDir! });
    await client.ping(reg.host);
    const repo = { registry: reg.host, repository: 'tls/app' };
    const b = blob(10_000);
    await client.uploadBlob(repo, b.descriptor, b.open);
    expect(await client.hasBlob(repo, b.descriptor.digest)).toBe(true);
    await client.close();
  });

  it('accepts any certificate with tlsVerify=false', async () => {
    const client = new RegistryClient({ tlsVerify: false });
    await client.ping(reg.host);
    await client.close();
  });

  it('fails with TLS (and does not fall back to HTTP) when the CA is unknown', async () => {
    const client = new RegistryClient({ maxRetries: 0 });
    const err = await rejection(client.ping(reg.host));
    expect(err.code).toBe('TLS');
    expect(err.message).toContain(reg.host);
    await client.close();
  });
});
