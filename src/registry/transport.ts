/**
 * registry/transport: the connection layer under the registry client, on Node's own http/https. One keep-alive
 * agent for plain HTTP and one per set of TLS options (CA bundle, client certificate, verification; read by
 * registry/tls.ts, loaded on the first HTTPS request), idle timeouts, and classification of low-level
 * failures (TLS, handshake, network, timeout) so callers can decide on retries and the HTTPS→HTTP fallback
 * for loopback and insecure registries. Why not undici, which the project first chose:
 * docs/registry-client.md ("HTTP stack").
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import { type ErrorCode, GantryError } from '../errors/index.js';
import { isLoopbackRegistry } from '../reference/index.js';
import type { TlsMaterial } from './tls.js';

export interface TransportOptions {
  tlsVerify: boolean;
  certDir: string | undefined;
  extraCaFile: string | undefined;
  insecureRegistries: readonly string[];
  requestTimeoutMs: number;
  userAgent: string;
}

export interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body?: Buffer | Readable | undefined;
  signal?: AbortSignal | undefined;
}

/** A response body: Node's IncomingMessage (a Readable of Buffers) that can also be drained. */
export type ResponseBody = IncomingMessage & {
  /** Reads and discards the rest so the connection can be reused; a long body closes the connection. */
  dump(): Promise<void>;
};

export interface ResponseData {
  statusCode: number;
  /** Lower-case names; every value of a repeated header kept apart (WWW-Authenticate, Link). */
  headers: Record<string, string[] | undefined>;
  body: ResponseBody;
}

/** dump() reads at most this much of a body before closing its connection instead. */
const DUMP_LIMIT = 256 * 1024;

type TlsModule = typeof import('./tls.js');

export class Transport {
  private plainAgent: HttpAgent | undefined;
  private readonly tlsAgents = new Map<string, HttpsAgent>();
  private readonly tlsByHost = new Map<string, Promise<TlsMaterial>>();

  constructor(private readonly options: TransportOptions) {}

  /** Whether plain HTTP may be used for this registry (after HTTPS failed to handshake). */
  httpAllowed(registry: string): boolean {
    return isLoopbackRegistry(registry) || this.isInsecure(registry);
  }

  private isInsecure(host: string): boolean {
    return this.options.insecureRegistries.includes(host);
  }

  /**
   * One request, no retries. Resolves once the response headers arrive; rejects with the raw Node error on
   * failure (see classifyFailure). A stream body is piped with its errors both ways: a failing source aborts
   * the request with the source's error, and a failing connection is thrown into the source.
   */
  async send(url: URL, opts: SendOptions): Promise<ResponseData> {
    const tls = url.protocol === 'https:' ? await loadTls() : undefined;
    const tlsAgent = tls ? await this.tlsAgentFor(tls, url.host) : undefined;
    const timeoutMs = this.options.requestTimeoutMs;
    return new Promise<ResponseData>((resolve, reject) => {
      const options = {
        method: opts.method,
        headers: { 'user-agent': this.options.userAgent, ...opts.headers },
        // Idle time on the socket, connecting included: a stalled registry fails instead of hanging.
        timeout: timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      };
      const req =
        tls && tlsAgent
          ? tls.httpsRequest(url, { ...options, agent: tlsAgent })
          : httpRequest(url, { ...options, agent: this.httpAgent() });
      let response: IncomingMessage | undefined;
      req.on('response', (message) => {
        response = message;
        resolve(responseData(message, timeoutMs));
      });
      // Also after the response: a body still streaming up may fail later, and that must not go unhandled.
      req.on('error', reject);
      req.on('timeout', () => {
        const error = timeoutError(timeoutMs);
        // Mid-body, the reader should hear "timed out", not the "aborted" the socket's end would give it.
        if (response && !response.complete) response.destroy(error);
        req.destroy(error);
      });
      const body = opts.body;
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req, () => undefined);
    });
  }

  async close(): Promise<void> {
    this.plainAgent?.destroy();
    this.plainAgent = undefined;
    for (const agent of this.tlsAgents.values()) agent.destroy();
    this.tlsAgents.clear();
  }

  private httpAgent(): HttpAgent {
    this.plainAgent ??= new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
    return this.plainAgent;
  }

  private async tlsAgentFor(tlsModule: TlsModule, host: string): Promise<HttpsAgent> {
    const tls = await this.tlsFor(tlsModule, host);
    const key = JSON.stringify(tls);
    let agent = this.tlsAgents.get(key);
    if (!agent) {
      const secure = tls.ca || tls.cert ? { secureContext: tlsModule.secureContextFor(tls) } : {};
      agent = new tlsModule.HttpsAgent({
        keepAlive: true,
        scheduling: 'lifo',
        rejectUnauthorized: tls.rejectUnauthorized,
        ...secure,
      });
      this.tlsAgents.set(key, agent);
    }
    return agent;
  }

  private tlsFor(tlsModule: TlsModule, host: string): Promise<TlsMaterial> {
    let material = this.tlsByHost.get(host);
    if (!material) {
      material = tlsModule.loadTlsMaterial({
        certDir: this.options.certDir,
        extraCaFile: this.options.extraCaFile,
        host,
        verify: this.options.tlsVerify && !this.isInsecure(host),
      });
      this.tlsByHost.set(host, material);
      material.catch(() => this.tlsByHost.delete(host));
    }
    return material;
  }
}

let tlsModule: Promise<TlsModule> | undefined;

function loadTls(): Promise<TlsModule> {
  tlsModule ??= import('./tls.js');
  return tlsModule;
}

function responseData(message: IncomingMessage, idleMs: number): ResponseData {
  // The idle timeout is for a registry that stops sending, not for a reader that stops reading: while the
  // body is paused for back-pressure (a slow destination), the socket's timer is off.
  const socket = message.socket;
  message.on('pause', () => {
    if (!message.complete) socket?.setTimeout(0);
  });
  message.on('resume', () => {
    if (!message.complete) socket?.setTimeout(idleMs);
  });
  const body = Object.assign(message, { dump: () => drain(message) });
  return { statusCode: message.statusCode ?? 0, headers: message.headersDistinct, body };
}

function drain(message: IncomingMessage): Promise<void> {
  if (message.destroyed || message.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    message.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DUMP_LIMIT) message.destroy();
    });
    // 'close' follows 'end' and any destroy; an error while draining does not matter to the caller.
    message.on('error', () => undefined);
    message.once('close', () => resolve());
    message.resume();
  });
}

function timeoutError(ms: number): Error {
  const span = ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
  return Object.assign(new Error(`no data from the registry for ${span}`), {
    code: 'ETIMEDOUT',
  });
}

export type FailureKind =
  /** Certificate verification failed: never retried, never downgraded to HTTP. */
  | 'tls'
  /** The peer does not speak TLS (or reset the handshake): a plain-HTTP server, for the loopback fallback. */
  | 'handshake'
  | 'timeout'
  | 'aborted'
  /** Connection refused/reset/closed: retried. */
  | 'network'
  /** Anything else (DNS failure, programming errors): not retried. */
  | 'other';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const HANDSHAKE_CODES = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Classifies a thrown transport error by walking its `cause` chain (our errors wrap Node's). */
export function classifyFailure(err: unknown): FailureKind {
  let found: FailureKind = 'other';
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code ?? '';
    if (current.name === 'AbortError' || code === 'ABORT_ERR') return 'aborted';
    if (TLS_CODES.has(code)) return 'tls';
    if (HANDSHAKE_CODES.has(code) || code.startsWith('ERR_SSL_')) return 'handshake';
    if (TIMEOUT_CODES.has(code)) return 'timeout';
    if (NETWORK_CODES.has(code) && found === 'other') found = 'network';
    current = current.cause;
  }
  return found;
}

export function transportError(
  err: unknown,
  kind: FailureKind,
  subject: string,
  action: string,
): GantryError {
  const codes: Record<FailureKind, ErrorCode> = {
    tls: 'TLS',
    handshake: 'TLS',
    timeout: 'TIMEOUT',
    aborted: 'NETWORK',
    network: 'NETWORK',
    other: 'NETWORK',
  };
  return new GantryError(codes[kind], `${action}: ${describeFailure(err)}`, { subject, cause: err });
}

export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${code && !err.message.includes(code) ? ` [${code}]` : ''}${cause}`;
}
