/**
 * registry/http: the request loop every registry call goes through. It resolves the registry's base URL (HTTPS,
 * falling back to HTTP for loopback/insecure registries whose port does not speak TLS), learns the auth
 * challenge from `GET /v2/`, attaches Authorization only for the registry's own host, re-authenticates once on
 * 401, retries replayable requests on connection errors, 5xx (not 501) and 429 with jittered backoff, honours
 * Retry-After, records rate-limit headers, and turns failures into GantryErrors.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorCode, GantryError, isGantryError } from '../errors/index.js';
import { isLoopbackRegistry, registryEndpointHost } from '../reference/index.js';
import type { Logger } from '../util/log.js';
import { Authenticator } from './auth.js';
import { type Challenge, parseWwwAuthenticate } from './challenge.js';
import {
  backoffDelay,
  formatRegistryErrors,
  parseRateLimit,
  parseRegistryErrors,
  parseRetryAfter,
  type RateLimitInfo,
} from './headers.js';
import {
  classifyFailure,
  describeFailure,
  type ResponseData,
  type Transport,
  transportError,
} from './transport.js';
import type { CredentialResolver } from './types.js';

export interface HttpOptions {
  credentials: CredentialResolver | undefined;
  maxRetries: number;
  retryBaseDelayMs: number;
  logger: Logger;
}

/** Longest single backoff between retries. */
const MAX_BACKOFF_MS = 30_000;
/** Longest Retry-After we honour; a registry asking for more gets this much. */
const MAX_RETRY_AFTER_MS = 60_000;
/** The TLS 1.3 alert of a server that wanted a client certificate. */
const CERT_REQUIRED = 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';
/** Error bodies are read only this far. */
const ERROR_BODY_LIMIT = 64 * 1024;

export interface RegistryRequest {
  registry: string;
  method: string;
  /** A path under the registry's base URL (`/v2/...`), or an absolute URL such as an upload Location. */
  path: string;
  headers?: Record<string, string>;
  /** Buffers are replayed on retries; streams are sent once (callers resume uploads themselves). */
  body?: Buffer | Readable;
  /** Token scopes, e.g. `repository:foo:pull`. */
  scopes: readonly string[];
  signal?: AbortSignal;
}

export interface RegistryResponse {
  status: number;
  url: URL;
  header(name: string): string | undefined;
  headerValues(name: string): string[];
  body: ResponseData['body'];
}

export class RegistryHttp {
  private readonly auth: Authenticator;
  private readonly baseUrls = new Map<string, Promise<string>>();
  private readonly challenges = new Map<string, Challenge | undefined>();
  private readonly rateLimits = new Map<string, RateLimitInfo>();

  constructor(
    private readonly transport: Transport,
    private readonly options: HttpOptions,
  ) {
    this.auth = new Authenticator(
      options.credentials,
      (url, init) => this.fetchToken(url, init),
      options.logger,
    );
  }

  rateLimit(registry: string): RateLimitInfo | undefined {
    return this.rateLimits.get(registry);
  }

  /**
   * Sends a request and returns the response for any status except those handled here: 401 (re-authenticated
   * once, then UNAUTHORIZED), 403 (UNAUTHORIZED), and retryable statuses (retried, then an error).
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const replayable = !(req.body instanceof Readable);
    let guessed = await this.guessBaseUrl(req, replayable);
    let base = guessed ?? (await this.baseUrl(req.registry));
    let url = new URL(req.path, base);
    // The registry's own origin: a redirect to another host, or to plain HTTP on the same one, gets no
    // Authorization.
    const ownHost = url.origin === new URL(base).origin;
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      const headers = { ...req.headers };
      const authorization = ownHost
        ? await this.auth.header(req.registry, this.challenges.get(req.registry), req.scopes)
        : undefined;
      if (authorization) headers.authorization = authorization;
      const res = await this.sendOnce(
        req.registry,
        url,
        { method: req.method, headers, body: req.body, signal: req.signal },
        { attempt, replayable, guessing: guessed !== undefined },
      );
      if (guessed && (res === 'wrong guess' || (res !== 'retry' && isPlainHttpRefused(res)))) {
        if (res !== 'wrong guess') await res.body.dump();
        this.options.logger.debug(`${req.registry}: ${guessed} did not answer as a registry; probing`);
        guessed = undefined;
        base = await this.baseUrl(req.registry);
        url = new URL(req.path, base);
        attempt--;
        continue;
      }
      if (res === 'retry' || res === 'wrong guess') continue;
      if (guessed) {
        this.baseUrls.set(req.registry, Promise.resolve(guessed));
        guessed = undefined;
      }
      if (res.status === 401 && ownHost) {
        const challenge = pickChallenge(parseWwwAuthenticate(res.headerValues('www-authenticate')));
        if (!reauthenticated && challenge && replayable) {
          reauthenticated = true;
          await res.body.dump();
          if (authorization) this.auth.invalidate(req.registry, req.scopes);
          this.challenges.set(req.registry, challenge);
          attempt--; // re-authentication is not a retry
          continue;
        }
        if (challenge) this.challenges.set(req.registry, challenge);
        if (authorization) this.auth.invalidate(req.registry, req.scopes);
        // HEAD responses have no body; the challenge's error (e.g. insufficient_scope) is all there is.
        const reason = challenge?.params.error_description ?? challenge?.params.error;
        throw await this.errorFor(res, req.registry, `${req.method} ${url.pathname}`, {
          fallbackDetail: reason,
        });
      }
      if (res.status === 403) throw await this.errorFor(res, req.registry, `${req.method} ${url.pathname}`);
      return res;
    }
  }

  /**
   * The base URL a request may try without probing `/v2/` first, saving a round trip per command: only for a
   * registry not yet resolved, a request that can be sent again, and no credentials (the probe's challenge
   * tells which credentials to send up front; an anonymous request learns it from its own 401 instead).
   * Loopback registries are guessed plain HTTP (as probe() would try first), others HTTPS.
   */
  private async guessBaseUrl(req: RegistryRequest, replayable: boolean): Promise<string | undefined> {
    if (!replayable || !req.path.startsWith('/') || this.baseUrls.has(req.registry)) return undefined;
    // A lookup that fails (e.g. a configured credential helper that is not installed) matters only if the
    // registry asks for credentials: leave it to the probe and the challenge, as without the guess.
    const credentialed = await this.auth.hasCredential(req.registry).catch(() => true);
    if (credentialed) return undefined;
    // Another request may have resolved it meanwhile.
    if (this.baseUrls.has(req.registry)) return undefined;
    const host = registryEndpointHost(req.registry);
    return isLoopbackRegistry(req.registry) ? `http://${host}/` : `https://${host}/`;
  }

  /** The registry's base URL (`https://host/`), resolved once: probes `/v2/` and learns the auth challenge. */
  baseUrl(registry: string): Promise<string> {
    let base = this.baseUrls.get(registry);
    if (!base) {
      base = this.probe(registry);
      this.baseUrls.set(registry, base);
      base.catch(() => this.baseUrls.delete(registry));
    }
    return base;
  }

  private async probe(registry: string): Promise<string> {
    const host = registryEndpointHost(registry);
    const plain = isLoopbackRegistry(registry) ? await this.probePlain(registry, host) : undefined;
    let base = plain ? `http://${host}/` : `https://${host}/`;
    let res: RegistryResponse;
    if (plain) {
      res = plain;
    } else {
      try {
        res = await this.sendRetrying(registry, new URL('/v2/', base), { method: 'GET', headers: {} });
      } catch (err) {
        const cause = (err as GantryError).cause ?? err;
        const kind = classifyFailure(cause);
        if (!this.transport.httpAllowed(registry) || !(kind === 'handshake' || hasCode(cause, 'ECONNRESET')))
          throw err;
        this.options.logger.debug(`${registry}: HTTPS handshake failed (${kind}); using plain HTTP`);
        base = `http://${host}/`;
        res = await this.sendRetrying(registry, new URL('/v2/', base), { method: 'GET', headers: {} });
      }
    }
    await res.body.dump();
    if (res.status === 401) {
      this.challenges.set(
        registry,
        pickChallenge(parseWwwAuthenticate(res.headerValues('www-authenticate'))),
      );
    } else if (res.status !== 200 && res.status !== 404) {
      // Some registries answer /v2/ oddly; the real requests will report real errors.
      this.options.logger.debug(`${registry}: GET /v2/ answered HTTP ${res.status}`);
    }
    return base;
  }

  /**
   * Loopback registries are asked in plain HTTP first: most are plain (CI and test registries), it saves a TLS
   * handshake on every command, and loopback traffic cannot be intercepted; the probe carries no credentials.
   * A TLS port answers plain HTTP with 400 or by closing the connection: then undefined, and HTTPS is tried.
   */
  private async probePlain(registry: string, host: string): Promise<RegistryResponse | undefined> {
    const url = new URL('/v2/', `http://${host}/`);
    let res: RegistryResponse;
    try {
      res = wrapResponse(await this.transport.send(url, { method: 'GET', headers: {} }), url);
    } catch {
      return undefined;
    }
    if (res.status === 400) {
      await res.body.dump();
      return undefined;
    }
    this.noteRateLimit(registry, res);
    if (res.status !== 429 && res.status < 500) return res;
    await res.body.dump();
    return this.sendRetrying(registry, url, { method: 'GET', headers: {} });
  }

  /** A request outside the auth flow (probe, token server, redirected blob), with retries. */
  async sendRetrying(
    registry: string,
    url: URL,
    init: { method: string; headers: Record<string, string>; body?: Buffer; signal?: AbortSignal },
  ): Promise<RegistryResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.sendOnce(registry, url, init, { attempt, replayable: true });
      if (res !== 'retry' && res !== 'wrong guess') return res;
    }
  }

  /** One attempt; returns 'retry' after sleeping when the failure is transient and retries are left. */
  private async sendOnce(
    registry: string,
    url: URL,
    init: {
      method: string;
      headers: Record<string, string>;
      body?: Buffer | Readable | undefined;
      signal?: AbortSignal | undefined;
    },
    state: { attempt: number; replayable: boolean; guessing?: boolean },
  ): Promise<RegistryResponse | 'retry' | 'wrong guess'> {
    const canRetry = state.replayable && state.attempt < this.options.maxRetries;
    let raw: ResponseData;
    try {
      raw = await this.transport.send(url, init);
    } catch (err) {
      // Set-up errors (an unreadable CA file) are already clear and not about the network.
      if (isGantryError(err)) throw err;
      const kind = classifyFailure(err);
      if (kind === 'aborted') throw err;
      // A connection that fails on a guessed base URL is not retried: the probe knows better (and retries).
      if (state.guessing) return 'wrong guess';
      if (canRetry && (kind === 'network' || kind === 'timeout')) {
        const delay = this.backoff(state.attempt);
        this.options.logger.warn(
          `${registry}: ${init.method} ${url.pathname} failed (${describeFailure(err)}); retrying in ${delay} ms`,
        );
        await sleep(delay, undefined, { signal: init.signal });
        return 'retry';
      }
      const error = transportError(err, kind, registry, `${init.method} ${url.pathname}`);
      if (url.protocol === 'https:' && (hasCode(err, 'ECONNRESET') || hasCode(err, CERT_REQUIRED))) {
        // TLS 1.3 servers that require a client certificate accept the handshake and then close the
        // connection, which looks like any dropped connection; say what usually causes it.
        throw new GantryError(
          error.code,
          `${init.method} ${url.pathname}: ${describeFailure(err)}; if the registry requires a client certificate, put client.cert and client.key in --cert-dir`,
          { subject: registry, cause: err },
        );
      }
      throw error;
    }
    const res = wrapResponse(raw, url);
    this.noteRateLimit(registry, res);
    const retryable = res.status === 429 || (res.status >= 500 && res.status !== 501);
    if (!retryable) return res;
    if (!canRetry) throw await this.errorFor(res, registry, `${init.method} ${url.pathname}`);
    await res.body.dump();
    let delay = this.backoff(state.attempt);
    if (res.status === 429) {
      const retryAfter = parseRetryAfter(res.header('retry-after'));
      if (retryAfter !== undefined) delay = Math.min(retryAfter, MAX_RETRY_AFTER_MS);
      this.options.logger.warn(
        `${registry}: rate limited (HTTP 429); waiting ${(delay / 1000).toFixed(1)} s before retrying`,
      );
    } else {
      this.options.logger.warn(
        `${registry}: ${init.method} ${url.pathname} answered HTTP ${res.status}; retrying in ${delay} ms`,
      );
    }
    await sleep(delay, undefined, { signal: init.signal });
    return 'retry';
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, { baseDelayMs: this.options.retryBaseDelayMs, maxDelayMs: MAX_BACKOFF_MS });
  }

  private async fetchToken(
    url: URL,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: Buffer },
  ): Promise<{ status: number; body: string }> {
    const res = await this.sendRetrying(url.host, url, init);
    return {
      status: res.status,
      body: (await readLimited(res.body, ERROR_BODY_LIMIT, url.host)).toString('utf8'),
    };
  }

  private noteRateLimit(registry: string, res: RegistryResponse): void {
    const info = parseRateLimit((name) => res.header(name));
    if (!info) return;
    const previous = this.rateLimits.get(registry);
    this.rateLimits.set(registry, info);
    if (
      info.remaining !== undefined &&
      info.limit !== undefined &&
      info.remaining <= Math.max(1, Math.floor(info.limit / 10)) &&
      previous?.remaining !== info.remaining
    ) {
      this.options.logger.warn(
        `${registry}: rate limit nearly exhausted (${info.remaining} of ${info.limit} requests left)`,
      );
    }
  }

  /** Reads a failed response's error body and builds the GantryError for it. */
  async errorFor(
    res: RegistryResponse,
    subject: string,
    action: string,
    extra: { notFound?: string; fallbackDetail?: string | undefined } = {},
  ): Promise<GantryError> {
    let errors: ReturnType<typeof parseRegistryErrors> = [];
    try {
      errors = parseRegistryErrors((await readLimited(res.body, ERROR_BODY_LIMIT, subject)).toString('utf8'));
    } catch {
      // The body is only for the message; the status still says what went wrong.
    }
    const detail =
      errors.length > 0
        ? `: ${formatRegistryErrors(errors)}`
        : extra.fallbackDetail
          ? `: ${extra.fallbackDetail}`
          : '';
    const code = errorCode(
      res.status,
      errors.map((e) => e.code),
    );
    const what =
      res.status === 401
        ? 'authentication failed'
        : res.status === 403
          ? 'access denied'
          : res.status === 429
            ? 'rate limited by the registry'
            : res.status === 404 && extra.notFound
              ? extra.notFound
              : `${action} failed`;
    return new GantryError(code, `${what} (HTTP ${res.status})${detail}`, { subject, status: res.status });
  }
}

function errorCode(status: number, codes: readonly string[]): ErrorCode {
  const has = (...names: string[]) => codes.some((c) => names.includes(c));
  // Checked first: distribution adds DIGEST_INVALID next to each MANIFEST_BLOB_UNKNOWN of a manifest PUT.
  if (has('MANIFEST_INVALID', 'MANIFEST_UNVERIFIED', 'MANIFEST_BLOB_UNKNOWN', 'TAG_INVALID'))
    return 'MANIFEST_INVALID';
  if (has('DIGEST_INVALID')) return 'DIGEST_MISMATCH';
  if (has('SIZE_INVALID')) return 'SIZE_MISMATCH';
  if (status === 401 || status === 403 || has('UNAUTHORIZED', 'DENIED')) return 'UNAUTHORIZED';
  if (status === 429 || has('TOOMANYREQUESTS')) return 'RATE_LIMITED';
  if (status === 404) return 'NOT_FOUND';
  return 'REGISTRY_ERROR';
}

/** Bearer is preferred when a registry offers several schemes. */
function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function wrapResponse(raw: ResponseData, url: URL): RegistryResponse {
  const values = (name: string): string[] => raw.headers[name] ?? [];
  return {
    status: raw.statusCode,
    url,
    header: (name) => values(name.toLowerCase())[0],
    headerValues: (name) => values(name.toLowerCase()),
    body: raw.body,
  };
}

/**
 * A TLS port asked in plain HTTP: Go's servers answer 400 "Client sent an HTTP request to an HTTPS server"
 * without the headers a registry sends.
 */
function isPlainHttpRefused(res: RegistryResponse): boolean {
  return (
    res.url.protocol === 'http:' &&
    res.status === 400 &&
    res.header('docker-distribution-api-version') === undefined
  );
}

function hasCode(err: unknown, code: string): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if ((current as NodeJS.ErrnoException).code === code) return true;
    current = current.cause;
  }
  return false;
}

/** Reads a whole body up to `limit` bytes; larger bodies are an error (callers choose the code). */
export async function readLimited(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
  subject: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) {
      body.destroy();
      throw new GantryError('MANIFEST_INVALID', `response body larger than ${limit} bytes`, { subject });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
