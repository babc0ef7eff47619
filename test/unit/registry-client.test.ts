/**
 * RegistryClient behaviours that a real registry will not produce on demand, against small in-process
 * node:http servers on 127.0.0.1: wrong manifest bytes, schema1, cross-host redirects, token refresh.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType, sha256Digest } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
const clients: RegistryClient[] = [];

async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retryBaseDelayMs: 1, ...options });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest('c'), size: 1 },
    layers: [],
  }),
);

describe('manifest verification', () => {
  it('rejects bytes that do not hash to the requested digest', async () => {
    const host = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest }).end(manifest);
    });
    const wanted = sha256Digest('something else');
    await expect(client().getManifest({ registry: host, repository: 'a/b' }, wanted)).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
  });

  it('rejects a Docker-Content-Digest that does not match the bytes', async () => {
    const host = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'docker-content-digest': sha256Digest('x'),
      });
      res.end(manifest);
    });
    await expect(client().getManifest({ registry: host, repository: 'a/b' }, 'v1')).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
  });

  it('rejects schema1 manifests clearly and oversized ones as MANIFEST_INVALID', async () => {
    const host = await serve((req, res) => {
      if (req.url?.endsWith('/big')) {
        res
          .writeHead(200, { 'content-type': MediaType.ociManifest })
          .end(Buffer.alloc(5 * 1024 * 1024, 0x20));
        return;
      }
      res.writeHead(200, { 'content-type': MediaType.dockerSchema1Signed }).end('{"schemaVersion":1}');
    });
    const repo = { registry: host, repository: 'a/b' };
    await expect(client().getManifest(repo, 'old')).rejects.toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    await expect(client().getManifest(repo, 'big')).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
  });
});

describe('blob redirects', () => {
  it('follows a redirect to another host without the registry Authorization', async () => {
    const seen: (string | undefined)[] = [];
    const storage = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': '5' }).end('hello');
    });
    const registry = await serve((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      res.writeHead(307, { location: `http://${storage}/blob?sig=1` }).end();
    });
    const c = client({ credentials: async () => ({ kind: 'basic', username: 'u', password: 'p' }) });
    const stream = await c.getBlob(
      { registry, repository: 'a/b' },
      { mediaType: MediaType.ociLayerGzip, digest: sha256Digest('hello'), size: 5 },
    );
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect(seen).toEqual([undefined]);
  });
});

describe('bearer tokens', () => {
  it('refreshes a rejected token once, then fails with UNAUTHORIZED naming the registry and its message', async () => {
    let tokens = 0;
    let host = '';
    const tokenServer = await serve((_req, res) => {
      tokens++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `t${tokens}` }));
    });
    host = await serve((req, res) => {
      const ok = req.headers.authorization === 'Bearer t1' && req.url === '/v2/a/b/tags/list';
      if (req.url === '/v2/') {
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="http://${tokenServer}/token",service="svc"` })
          .end();
        return;
      }
      if (ok) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"tags":["x"]}');
        return;
      }
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://${tokenServer}/token",service="svc",error="invalid_token"`,
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token expired or revoked' }] }));
    });
    const c = client();
    expect(await c.listTags({ registry: host, repository: 'a/b' })).toEqual(['x']);
    expect(tokens).toBe(1);
    const err = await c.getManifest({ registry: host, repository: 'a/b' }, 'v1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((err as Error).message).toContain(host);
    expect((err as Error).message).toContain('token expired or revoked');
    // The cached token was rejected: exactly one refresh, then the error.
    expect(tokens).toBe(2);
    // Without a body (HEAD) the challenge's error is quoted instead.
    const headErr = await c
      .hasBlob({ registry: host, repository: 'a/b' }, sha256Digest('x'))
      .catch((e: unknown) => e);
    expect((headErr as Error).message).toContain('invalid_token');
  });

  it('posts identity tokens as an OAuth2 refresh_token grant', async () => {
    let form: URLSearchParams | undefined;
    const tokenServer = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        form = new URLSearchParams(body);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"access_token":"at","expires_in":300}');
      });
    });
    const host = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer at') {
        res.writeHead(200).end();
        return;
      }
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${tokenServer}/token",service="svc"` })
        .end();
    });
    await client({ credentials: async () => ({ kind: 'identityToken', token: 'refresh-me' }) }).ping(host);
    expect(form?.get('grant_type')).toBe('refresh_token');
    expect(form?.get('refresh_token')).toBe('refresh-me');
    expect(form?.get('client_id')).toBe('gantry');
    expect(form?.get('service')).toBe('svc');
  });
});
