/**
 * registry/blob-download: streams a blob from a registry. Follows redirects itself (at most 5) so the
 * registry's Authorization never reaches another host, asks for `Range: bytes=<offset>-` to start mid-blob, and
 * when the connection drops mid-body re-requests from the bytes delivered so far (a bounded number of times)
 * so the caller sees one seamless stream. Never buffers the blob.
 */
import { Readable } from 'node:stream';
import { GantryError, isGantryError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import type { Logger } from '../util/log.js';
import type { RegistryHttp, RegistryResponse } from './http.js';
import { classifyFailure, transportError } from './transport.js';
import type { RepoLocation } from './types.js';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface DownloadOptions {
  offset?: number;
  signal?: AbortSignal;
  /** How many times a dropped body is re-requested. */
  maxResumes: number;
  logger: Logger;
}

interface OpenedRange {
  body: RegistryResponse['body'];
  /** Bytes to discard first: the server ignored our Range header and started at 0. */
  skip: number;
}

export async function downloadBlob(
  http: RegistryHttp,
  repo: RepoLocation,
  descriptor: Descriptor,
  options: DownloadOptions,
): Promise<Readable> {
  const subject = `${repo.registry}/${repo.repository}@${descriptor.digest}`;
  const start = options.offset ?? 0;
  const first = await openRange(http, repo, descriptor, start, options.signal, subject);

  return new ResumingBlobStream(first, {
    start,
    size: descriptor.size,
    maxResumes: options.maxResumes,
    subject,
    signal: options.signal,
    logger: options.logger,
    reopen: (position) => openRange(http, repo, descriptor, position, options.signal, subject),
  });
}

interface ResumeOptions {
  start: number;
  size: number;
  maxResumes: number;
  subject: string;
  signal: AbortSignal | undefined;
  logger: Logger;
  reopen(position: number): Promise<OpenedRange>;
}

/**
 * One blob as one stream over however many responses it takes. A Readable fed by the response's 'data'
 * events rather than an async generator: a blob is thousands of socket reads, and a generator's promise hops
 * per read were a tenth of a copy's CPU. Only failures of reading a response resume; destroying this stream
 * (the consumer failed) ends the download as is.
 */
class ResumingBlobStream extends Readable {
  private position: number;
  private resumes = 0;
  private current: OpenedRange;
  private readonly detach: (() => void)[] = [];

  constructor(
    first: OpenedRange,
    private readonly options: ResumeOptions,
  ) {
    super();
    this.position = options.start;
    this.current = first;
    this.attach(first);
  }

  override _read(): void {
    this.current.body.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    this.current.body.destroy();
    callback(error);
  }

  private attach(range: OpenedRange): void {
    const body = range.body;
    const onData = (chunk: Buffer) => this.onData(range, chunk);
    const onEnd = () => this.onEnd();
    const onError = (err: Error) => this.onFailure(err);
    // A response closed without 'end' or 'error' was cut off too.
    const onClose = () =>
      this.onFailure(Object.assign(new Error('connection closed mid-body'), { code: 'ECONNRESET' }));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    this.detach.push(() => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      // The response may still fail after we stop listening (we destroy it): that must not go unhandled.
      body.on('error', () => undefined);
    });
  }

  private release(): void {
    for (const detach of this.detach.splice(0)) detach();
  }

  private onData(range: OpenedRange, data: Buffer): void {
    let chunk = data;
    if (range.skip > 0) {
      const dropped = Math.min(range.skip, chunk.length);
      range.skip -= dropped;
      chunk = chunk.subarray(dropped);
      if (chunk.length === 0) return;
    }
    this.position += chunk.length;
    if (!this.push(chunk)) range.body.pause();
  }

  private onEnd(): void {
    if (this.position >= this.options.size) {
      this.release();
      this.push(null);
      return;
    }
    const { position, options } = this;
    this.onFailure(
      new GantryError('NETWORK', `connection closed after ${position} of ${options.size} bytes`, {
        subject: options.subject,
      }),
    );
  }

  private onFailure(err: Error): void {
    this.release();
    if (this.destroyed) return;
    const { options } = this;
    const kind = classifyFailure(err);
    if (options.signal?.aborted || kind === 'aborted') {
      this.destroy(err);
      return;
    }
    if (this.resumes >= options.maxResumes || this.position >= options.size) {
      this.destroy(isGantryError(err) ? err : transportError(err, kind, options.subject, 'reading blob'));
      return;
    }
    this.resumes++;
    options.logger.debug(
      `${options.subject}: transfer interrupted at byte ${this.position} (${err.message}); resuming`,
    );
    this.current.body.destroy();
    options.reopen(this.position).then(
      (range) => {
        if (this.destroyed) {
          range.body.destroy();
          return;
        }
        this.current = range;
        this.attach(range);
      },
      (error: Error) => this.destroy(error),
    );
  }
}

async function openRange(
  http: RegistryHttp,
  repo: RepoLocation,
  descriptor: Descriptor,
  offset: number,
  signal: AbortSignal | undefined,
  subject: string,
): Promise<OpenedRange> {
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const scopes = [`repository:${repo.repository}:pull`];
  let path = `/v2/${repo.repository}/blobs/${descriptor.digest}`;
  for (let redirects = 0; ; redirects++) {
    // request() sends the registry's Authorization only to the registry's own host, so a redirect to
    // object storage goes out without it.
    const res = await http.request({ registry: repo.registry, method: 'GET', path, headers, scopes, signal });
    if (REDIRECT_STATUSES.has(res.status)) {
      const location = res.header('location');
      await res.body.dump();
      if (!location || redirects >= MAX_REDIRECTS) {
        throw new GantryError('REGISTRY_ERROR', `too many or empty redirects fetching the blob`, {
          subject,
          status: res.status,
        });
      }
      path = new URL(location, res.url).toString();
      continue;
    }
    if (res.status === 206) {
      const range = /^bytes (\d+)-/.exec(res.header('content-range') ?? '');
      if (range && Number(range[1]) !== offset) {
        await res.body.dump();
        throw new GantryError(
          'REGISTRY_ERROR',
          `asked for bytes from ${offset}, got ${res.header('content-range')}`,
          {
            subject,
          },
        );
      }
      return { body: res.body, skip: 0 };
    }
    if (res.status === 200) return { body: res.body, skip: offset };
    if (res.status === 404) {
      await res.body.dump();
      throw new GantryError('NOT_FOUND', 'blob not found', { subject, status: 404 });
    }
    throw await http.errorFor(res, subject, 'GET blob');
  }
}
