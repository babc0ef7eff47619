/**
 * harness/fault-proxy: a plain-HTTP proxy in front of a TestRegistry that forwards everything (streaming both
 * ways, headers preserved, upstream `Location` headers rewritten to the proxy) and injects faults by rule:
 * answer with a canned status, corrupt a response body, or drop the connection after n bytes.
 */
import { readFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import type { TestRegistry } from './registry.js';

/** What a rule's `match` sees of an incoming request. */
export interface FaultRequest {
  method: string;
  /** Path and query, e.g. '/v2/app/blobs/sha256:...'. */
  path: string;
  headers: IncomingHttpHeaders;
}

interface RuleBase {
  name: string;
  match: (req: FaultRequest) => boolean;
  /** Apply to the first `times` matching requests only (default: every one). */
  times?: number;
}

export type FaultRule = RuleBase &
  (
    | { action: 'status'; status: number; headers?: Record<string, string>; body?: string }
    /** Forward, but invert bytes of the response body; its length stays the same. */
    | { action: 'corrupt-body' }
    /** Forward only the first `n` body bytes of the response (default) or request, then cut the connection. */
    | { action: 'drop-after-bytes'; n: number; direction?: 'response' | 'request' }
  );

export interface FaultProxy {
  /** '127.0.0.1:PORT' — use instead of the registry's host. */
  host: string;
  url: string;
  /** How many times the named rule has been applied. */
  hits(ruleName: string): number;
  /** Every request seen, as `METHOD path`, in arrival order (clear it with `requests.length = 0`). */
  requests: string[];
  stop(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

/** Inverts every byte of the body: the length is kept, the digest never matches. */
class Corrupt extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = Buffer.from(chunk);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ 0xff;
    done(null, out);
  }
}

/** Passes the first `limit` bytes, then calls `cut` once. */
class Truncate extends Transform {
  private left: number;
  private cutScheduled = false;
  constructor(
    limit: number,
    private readonly cut: () => void,
  ) {
    super();
    this.left = limit;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const part = chunk.subarray(0, Math.max(0, this.left));
    this.left -= part.length;
    if (part.length > 0) this.push(part);
    if (this.left <= 0 && !this.cutScheduled) {
      this.cutScheduled = true;
      // Let the last bytes reach the socket before it is destroyed.
      setImmediate(this.cut);
    }
    done();
  }
}

export async function startFaultProxy(target: TestRegistry, rules: FaultRule[]): Promise<FaultProxy> {
  const upstream = new URL(target.url);
  const ca = target.caCertPath ? readFileSync(target.caCertPath) : undefined;
  const counts = new Map<string, number>(rules.map((r) => [r.name, 0]));
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  let proxyOrigin = '';

  const pickRule = (req: FaultRequest): FaultRule | undefined => {
    const rule = rules.find(
      (r) => (counts.get(r.name) ?? 0) < (r.times ?? Number.POSITIVE_INFINITY) && r.match(req),
    );
    if (rule) counts.set(rule.name, (counts.get(rule.name) ?? 0) + 1);
    return rule;
  };

  const rewriteHeaders = (headers: IncomingHttpHeaders): OutgoingHttpHeaders => {
    const out: OutgoingHttpHeaders = {};
    for (const [key, value] of Object.entries(headers)) {
      if (value !== undefined && !HOP_BY_HOP.includes(key)) out[key] = value;
    }
    if (typeof out.location === 'string' && out.location.startsWith(upstream.origin)) {
      out.location = proxyOrigin + out.location.slice(upstream.origin.length);
    }
    return out;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const info: FaultRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(`${info.method} ${info.path}`);
    const rule = pickRule(info);
    if (rule?.action === 'status') {
      req.resume();
      res.writeHead(rule.status, { 'content-type': 'application/json', ...rule.headers });
      res.end(rule.body ?? JSON.stringify({ errors: [{ code: 'INJECTED', message: `fault ${rule.name}` }] }));
      return;
    }
    const cutClient = () => {
      req.socket.destroy();
      upstreamReq.destroy();
    };
    const headers = rewriteHeaders(req.headers);
    headers.host = upstream.host;
    const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamReq = send(
      upstream.origin + info.path,
      { method: info.method, headers, ...(ca ? { ca } : {}) },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, rewriteHeaders(upRes.headers));
        if (rule?.action === 'corrupt-body') upRes.pipe(new Corrupt()).pipe(res);
        else if (rule?.action === 'drop-after-bytes' && rule.direction !== 'request') {
          upRes.pipe(new Truncate(rule.n, cutClient)).pipe(res);
        } else upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      },
    );
    upstreamReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    if (rule?.action === 'drop-after-bytes' && rule.direction === 'request') {
      req.pipe(new Truncate(rule.n, cutClient)).pipe(upstreamReq);
    } else req.pipe(upstreamReq);
  };

  const server = createServer(handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  proxyOrigin = `http://${host}`;
  return {
    host,
    url: proxyOrigin,
    hits: (name) => counts.get(name) ?? 0,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
