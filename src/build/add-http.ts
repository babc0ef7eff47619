/**
 * build/add-http: `ADD http(s)://...` downloads, as BuildKit's HTTP source: the file is named after the URL
 * path's last segment (`__unnamed__` when there is none), gets mode 0600 and the Last-Modified time (the
 * epoch when absent), and `--checksum` is verified on the streamed bytes, failing closed (the partial file is
 * removed). Bounded retries on network errors, 5xx and 429; bounded redirects; an idle timeout. Downloads go
 * through the registry client's transport (Node's http/https, the machine's trust store).
 * Credentials in URLs never reach messages.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, rm, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import { type ResponseData, Transport } from '../registry/transport.js';

export function isHttpUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** Text (a URL, or a tool's message quoting URLs) with user info replaced, for messages, history and records. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@'"]+@/gi, '$1***@');
}

/** BuildKit's file name for a downloaded URL: the path's last segment, else `__unnamed__`. */
export function urlFileName(url: string): string {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return '__unnamed__';
  }
  const base = posix.basename(path);
  return base === '' || base === '.' || base === '/' || base === '..' ? '__unnamed__' : base;
}

export interface DownloadOptions {
  url: string;
  /** Existing directory the file is written into (as `urlFileName(url)`). */
  dir: string;
  /** `sha256:<hex>` (or sha384/sha512) the content must hash to. */
  checksum?: string;
  /** Names the instruction in errors (`Dockerfile:12`). */
  subject: string;
  attempts?: number;
  /** How long the server may send nothing (connecting, before the headers, mid-body). */
  idleTimeoutMs?: number;
}

export interface Downloaded {
  path: string;
  name: string;
  /** `sha256:<hex>` of the content. */
  digest: string;
  size: number;
  mtime: Date;
}

const MAX_REDIRECTS = 5;

class Retryable extends Error {}

function checksumAlgorithm(checksum: string, url: string, subject: string): { algo: string; hex: string } {
  const m = /^(sha256|sha384|sha512):([a-f0-9]+)$/.exec(checksum);
  if (!m) {
    throw new GantryError('INVALID_ARGUMENT', `invalid checksum ${checksum} for ${redactUrl(url)}`, {
      subject,
    });
  }
  return { algo: m[1] as string, hex: m[2] as string };
}

/** Downloads `url` into `dir`, verifying `checksum`; see the module comment. */
export async function download(o: DownloadOptions): Promise<Downloaded> {
  const shown = redactUrl(o.url);
  const want = o.checksum ? checksumAlgorithm(o.checksum, o.url, o.subject) : undefined;
  const name = urlFileName(o.url);
  const path = join(o.dir, name);
  const attempts = o.attempts ?? 3;
  const transport = new Transport({
    tlsVerify: true,
    certDir: undefined,
    extraCaFile: undefined,
    insecureRegistries: [],
    requestTimeoutMs: o.idleTimeoutMs ?? 60_000,
    userAgent: 'gantry',
  });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await attemptDownload({ ...o, transport, path, name, shown, ...(want ? { want } : {}) });
      } catch (err) {
        await rm(path, { force: true });
        if (!(err instanceof Retryable) || attempt >= attempts) {
          if (isGantryError(err)) throw err;
          throw new GantryError('NETWORK', `cannot download ${shown}: ${(err as Error).message}`, {
            subject: o.subject,
            cause: err,
          });
        }
        await sleep(200 * 2 ** (attempt - 1));
      }
    }
  } finally {
    await transport.close();
  }
}

interface Attempt extends DownloadOptions {
  transport: Transport;
  path: string;
  name: string;
  shown: string;
  want?: { algo: string; hex: string };
}

async function attemptDownload(a: Attempt): Promise<Downloaded> {
  let url = new URL(a.url);
  for (let hop = 0; ; hop++) {
    let res: ResponseData;
    try {
      res = await a.transport.send(url, {
        method: 'GET',
        headers: {
          'user-agent': 'gantry',
          ...(url.username || url.password
            ? {
                authorization: `Basic ${Buffer.from(
                  `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
                ).toString('base64')}`,
              }
            : {}),
        },
      });
    } catch (err) {
      throw new Retryable((err as Error).message);
    }
    const status = res.statusCode;
    const location = res.headers.location?.[0];
    if (status >= 300 && status < 400 && location) {
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) {
        throw new GantryError('NETWORK', `too many redirects downloading ${a.shown}`, { subject: a.subject });
      }
      url = new URL(location, url);
      continue;
    }
    if (status !== 200) {
      await res.body.dump();
      if (status === 429 || status >= 500) throw new Retryable(`HTTP ${status}`);
      const code =
        status === 404 ? 'NOT_FOUND' : status === 401 || status === 403 ? 'UNAUTHORIZED' : 'NETWORK';
      throw new GantryError(code, `cannot download ${a.shown}: HTTP ${status}`, {
        subject: a.subject,
        status,
      });
    }
    const sha256 = createHash('sha256');
    const checked = a.want ? createHash(a.want.algo) : undefined;
    let size = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sha256.update(chunk);
        checked?.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res.body, hasher, createWriteStream(a.path, { mode: 0o600 }));
    } catch (err) {
      throw new Retryable((err as Error).message);
    }
    if (a.want && checked) {
      const got = checked.digest('hex');
      if (got !== a.want.hex) {
        throw new GantryError(
          'DIGEST_MISMATCH',
          `ADD ${a.shown}: checksum mismatch: expected ${a.want.algo}:${a.want.hex}, got ${a.want.algo}:${got}`,
          { subject: a.subject },
        );
      }
    }
    const modified = res.headers['last-modified']?.[0];
    const parsed = modified === undefined ? undefined : new Date(modified);
    const mtime = parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date(0);
    await chmod(a.path, 0o600);
    await utimes(a.path, mtime, mtime);
    return { path: a.path, name: a.name, digest: `sha256:${sha256.digest('hex')}`, size, mtime };
  }
}
