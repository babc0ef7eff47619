/**
 * registry/transport: the connection layer under the registry client. One keep-alive undici Agent per set of
 * TLS options (CA bundle, client certificate, verification), TLS material from a containers-style cert dir, and
 * classification of low-level failures (TLS, handshake, network, timeout) so callers can decide on retries and
 * the HTTPS→HTTP fallback for loopback and insecure registries.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type ErrorCode, GantryError } from '../errors/index.js';
import { isLoopbackRegistry } from '../reference/index.js';
import { Agent, request } from './undici-parts.js';

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

export type ResponseData = Dispatcher.ResponseData;

interface TlsMaterial {
  /** CAs trusted in addition to Node's built-in roots. */
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

export class Transport {
  private readonly agents = new Map<string, Agent>();
  private readonly tlsByHost = new Map<string, Promise<TlsMaterial>>();

  constructor(private readonly options: TransportOptions) {}

  /** Whether plain HTTP may be used for this registry (after HTTPS failed to handshake). */
  httpAllowed(registry: string): boolean {
    return isLoopbackRegistry(registry) || this.isInsecure(registry);
  }

  private isInsecure(host: string): boolean {
    return this.options.insecureRegistries.includes(host);
  }

  /** One request, no retries; throws the raw undici/Node error on failure (see classifyFailure). */
  async send(url: URL, opts: SendOptions): Promise<ResponseData> {
    const dispatcher = url.protocol === 'https:' ? await this.agentFor(url.host) : await this.agentFor('');
    return request(dispatcher, {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: opts.method as Dispatcher.HttpMethod,
      headers: { 'user-agent': this.options.userAgent, ...opts.headers },
      body: opts.body ?? null,
      signal: opts.signal,
      headersTimeout: this.options.requestTimeoutMs,
      bodyTimeout: this.options.requestTimeoutMs,
    });
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.destroy()));
  }

  private async agentFor(host: string): Promise<Agent> {
    const tls: TlsMaterial = host === '' ? { rejectUnauthorized: true } : await this.tlsFor(host);
    const key = JSON.stringify(tls);
    let agent = this.agents.get(key);
    if (!agent) {
      const { rejectUnauthorized } = tls;
      const secure = tls.ca || tls.cert ? { secureContext: secureContextFor(tls) } : {};
      agent = new Agent({
        // scripts/bundle.mjs leaves undici's HTTP/2 client out of the bundle.
        allowH2: false,
        keepAliveTimeout: 30_000,
        connect: { ...secure, rejectUnauthorized, timeout: Math.min(this.options.requestTimeoutMs, 30_000) },
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private tlsFor(host: string): Promise<TlsMaterial> {
    let material = this.tlsByHost.get(host);
    if (!material) {
      material = loadTlsMaterial({
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

/**
 * TLS material for a host: `${certDir}/${host}/` if it exists (containers certs.d layout), else the files
 * directly in certDir (skopeo --cert-dir). `*.crt` are CAs added to the system roots, as is the extra CA
 * bundle; `*.cert` + `*.key` are a client certificate pair.
 */
export async function loadTlsMaterial(options: {
  certDir: string | undefined;
  extraCaFile: string | undefined;
  host: string;
  verify: boolean;
}): Promise<TlsMaterial> {
  const { certDir, extraCaFile, host } = options;
  const material: TlsMaterial = { rejectUnauthorized: options.verify };
  const extra: string[] = [];
  if (extraCaFile) {
    try {
      extra.push(...certificatesBeyondRoots(await readFile(extraCaFile, 'utf8')));
    } catch (err) {
      throw new GantryError('INVALID_ARGUMENT', 'cannot read the extra CA certificates file', {
        subject: extraCaFile,
        cause: err,
      });
    }
  }
  let dir = certDir ? join(certDir, host) : undefined;
  let names = dir ? await listDir(dir) : [];
  if (names === undefined && certDir) {
    dir = certDir;
    names = (await listDir(dir)) ?? [];
  }
  names = (names ?? []).sort();
  const cas = names.filter((n) => n.endsWith('.crt'));
  for (const pem of await Promise.all(cas.map((n) => readFile(join(dir as string, n), 'utf8')))) {
    extra.push(pem);
  }
  if (extra.length > 0) material.ca = extra;
  const cert = names.find((n) => n.endsWith('.cert'));
  if (cert) {
    const keyName = `${cert.slice(0, -'.cert'.length)}.key`;
    if (names.includes(keyName)) {
      material.cert = await readFile(join(dir as string, cert), 'utf8');
      material.key = await readFile(join(dir as string, keyName), 'utf8');
    }
  }
  return material;
}

/**
 * One secure context per agent: given `ca` as connect options, Node would parse every certificate again for
 * each socket. Extra CAs are added to a context that starts from Node's root store, whose certificates Node
 * parsed once per process; passing roots and extras as `ca` instead re-parses all ~140 roots (~50 ms), so
 * that is only the fallback for a Node without SecureContext#addCACert.
 */
function secureContextFor(material: TlsMaterial): SecureContext {
  const { ca = [], cert, key } = material;
  const context = createSecureContext({ cert, key });
  const handle = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
  if (typeof handle?.addCACert !== 'function') {
    return createSecureContext({ ca: [...rootCertificates, ...ca], cert, key });
  }
  for (const pem of ca) handle.addCACert(pem);
  return context;
}

/**
 * The certificates of a PEM bundle that Node's built-in roots lack. NODE_EXTRA_CA_CERTS often names the whole
 * system bundle, which repeats the roots; adding only the rest keeps the default (cheap) trust store whenever
 * nothing is new.
 */
export function certificatesBeyondRoots(bundle: string): string[] {
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const roots = new Set(rootCertificates.map(body));
  const pems = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return pems.filter((pem) => !roots.has(body(pem)));
}

async function listDir(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ENOENT' ||
      (err as NodeJS.ErrnoException).code === 'ENOTDIR'
    ) {
      return undefined;
    }
    throw err;
  }
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
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** Classifies a thrown transport error by walking its `cause` chain (undici wraps socket errors). */
export function classifyFailure(err: unknown): FailureKind {
  let found: FailureKind = 'other';
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code ?? '';
    if (current.name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return 'aborted';
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
