/**
 * harness/token-server: a minimal Docker registry token server (the Bearer flow of distribution's token
 * auth) for tests. `GET /token?service=..&scope=..` checks Basic credentials against a user table and returns
 * an ES256 JWT whose `x5c` header carries the signing certificate the registry trusts (`rootcertbundle`).
 * Anonymous requests get pull-only tokens (unless `anonymousPull: false`); wrong credentials get 401. `POST /token` handles the OAuth2
 * `password` and `refresh_token` grants.
 */
import { randomBytes, sign } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SigningCert } from './certs.js';

export interface TokenServerOptions {
  issuer: string;
  service: string;
  signing: SigningCert;
  users: Record<string, string>;
  /** Give anonymous clients pull-only tokens (default true); when false they get 401, like a private registry. */
  anonymousPull?: boolean;
  /** Serve HTTPS with this certificate (the registry's), else plain HTTP. */
  tls?: { certPem: string; keyPem: string };
  tokenTtlSeconds?: number;
}

export interface TokenServer {
  url: string;
  /** Requests received so far, by outcome, so tests can assert on the auth flow. */
  stats: { issued: number; rejected: number };
  /** Listens again on the same port after `stop()` (the registry's config names this URL). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** `repository:name:pull,push` → Access (the name is everything between the first and the last ':'). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

/** Authenticated users get what they ask for; anonymous users only `pull`. */
function grant(requested: Access[], user: string | undefined): Access[] {
  return requested.map((a) => ({ ...a, actions: user ? a.actions : a.actions.filter((x) => x === 'pull') }));
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function signJwt(opts: TokenServerOptions, subject: string, access: Access[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'ES256', x5c: [opts.signing.certDerBase64] };
  // distribution 2.8 parses `aud` as a single string.
  const claims = {
    iss: opts.issuer,
    sub: subject,
    aud: opts.service,
    exp: now + (opts.tokenTtlSeconds ?? 300),
    nbf: now - 10,
    iat: now,
    jti: randomBytes(16).toString('hex'),
    access,
  };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS ES256 wants the raw r||s signature, not DER.
  const signature = sign('sha256', Buffer.from(signingInput), {
    key: opts.signing.keyPem,
    dsaEncoding: 'ieee-p1363',
  });
  return `${signingInput}.${b64url(signature)}`;
}

type BasicResult = { user: string } | 'anonymous' | 'invalid';

function checkBasic(req: IncomingMessage, users: Record<string, string>): BasicResult {
  const header = req.headers.authorization;
  if (!header) return 'anonymous';
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (!match?.[1]) return 'invalid';
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  return colon > 0 && users[user] === decoded.slice(colon + 1) ? { user } : 'invalid';
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > limit) req.destroy(new Error('token request body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const stats = { issued: 0, rejected: 0 };
  const refreshTokens = new Map<string, string>();
  const ttl = opts.tokenTtlSeconds ?? 300;

  const issue = (res: ServerResponse, user: string | undefined, scopes: string[], withRefresh: boolean) => {
    const requested = scopes.map(parseScope).filter((a): a is Access => a !== undefined);
    const token = signJwt(opts, user ?? '', grant(requested, user));
    stats.issued++;
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date().toISOString(),
    };
    if (withRefresh && user) {
      const refresh = randomBytes(24).toString('hex');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    sendJson(res, 200, body);
  };

  const reject = (res: ServerResponse, status: number, error: string) => {
    stats.rejected++;
    sendJson(
      res,
      status,
      { errors: [{ code: 'UNAUTHORIZED', message: error }] },
      {
        'www-authenticate': 'Basic realm="gantry-test-token"',
      },
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token') {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    if (req.method === 'GET') {
      if (url.searchParams.get('service') !== opts.service) {
        reject(res, 400, 'unknown service');
        return;
      }
      const auth = checkBasic(req, opts.users);
      if (auth === 'invalid') {
        reject(res, 401, 'invalid credentials');
        return;
      }
      if (auth === 'anonymous' && opts.anonymousPull === false) {
        reject(res, 401, 'authentication required');
        return;
      }
      const user = auth === 'anonymous' ? undefined : auth.user;
      issue(res, user, url.searchParams.getAll('scope'), url.searchParams.get('offline_token') === 'true');
      return;
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        const user = form.get('username') ?? '';
        if (opts.users[user] === undefined || opts.users[user] !== form.get('password')) {
          reject(res, 401, 'invalid credentials');
          return;
        }
        issue(res, user, scopes, form.get('access_type') === 'offline');
        return;
      }
      if (grantType === 'refresh_token') {
        const user = refreshTokens.get(form.get('refresh_token') ?? '');
        if (!user) {
          reject(res, 401, 'invalid refresh token');
          return;
        }
        issue(res, user, scopes, false);
        return;
      }
      reject(res, 400, 'unsupported grant_type');
      return;
    }
    sendJson(res, 405, { error: 'method not allowed' });
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    });
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, listener)
    : createHttpServer(listener);
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    stats,
    start: async () => {
      if (!server.listening) await listen(port);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
