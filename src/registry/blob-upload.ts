/**
 * registry/blob-upload: pushes one blob. Monolithic by default (POST a session, then one streamed PUT with
 * Content-Length and `?digest=`), chunked when a chunk size is given (PATCH with Content-Range, following the
 * Location of every response). Resumes on connection errors and 5xx: asks the session how many bytes it holds
 * (`Range`) and reopens the source there; a vanished or ambiguous session restarts from 0. A failing source
 * stream (e.g. the engine's digest check) cancels the session and its error is rethrown unchanged.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import type { BlobOpener } from '../transports/types.js';
import type { Logger } from '../util/log.js';
import { backoffDelay, parseUploadRange } from './headers.js';
import type { RegistryHttp } from './http.js';
import type { RepoLocation } from './types.js';

export interface UploadOptions {
  chunkSize?: number;
  /** How many interruptions are survived before giving up. */
  maxResumes: number;
  retryBaseDelayMs: number;
  logger: Logger;
}

const OCTET_STREAM = 'application/octet-stream';

/** A 416 in chunked mode: the session's offset differs from ours; recovered like an interruption. */
class RangeMismatch extends Error {}

export async function uploadBlob(
  http: RegistryHttp,
  repo: RepoLocation,
  descriptor: Descriptor,
  open: BlobOpener,
  options: UploadOptions,
): Promise<void> {
  const upload = new Upload(http, repo, descriptor, options);
  await upload.run(open);
}

class Upload {
  private readonly subject: string;
  private readonly scopes: string[];
  private location = '';
  private chunkSize: number | undefined;
  /** An error the source stream raised: ends the upload, rethrown as is. */
  private sourceError: { error: unknown } | undefined;

  constructor(
    private readonly http: RegistryHttp,
    private readonly repo: RepoLocation,
    private readonly descriptor: Descriptor,
    private readonly options: UploadOptions,
  ) {
    this.subject = `${repo.registry}/${repo.repository}@${descriptor.digest}`;
    this.scopes = [`repository:${repo.repository}:pull,push`];
    this.chunkSize = options.chunkSize;
  }

  async run(open: BlobOpener): Promise<void> {
    await this.startSession();
    let offset = 0;
    let recovering = false;
    for (let failures = 0; ; ) {
      let source: Readable | undefined;
      try {
        if (recovering) {
          const resumed = await this.recover();
          if (resumed === 'done') return;
          offset = resumed;
          recovering = false;
        }
        if (this.descriptor.size === 0) {
          await this.commit(Buffer.alloc(0));
          return;
        }
        try {
          source = await open(offset);
        } catch (err) {
          this.sourceError = { error: err };
          throw err;
        }
        if (this.chunkSize) await this.sendChunks(source, offset, this.chunkSize);
        else await this.sendRest(source, offset);
        if (this.sourceError) throw this.sourceError.error;
        return;
      } catch (err) {
        source?.destroy();
        if (this.sourceError) {
          await this.cancel();
          throw this.sourceError.error;
        }
        if (!isResumable(err) || failures >= this.options.maxResumes) {
          await this.cancel();
          throw err;
        }
        failures++;
        this.options.logger.warn(`${this.subject}: upload interrupted (${(err as Error).message}); resuming`);
        await sleep(
          backoffDelay(failures, { baseDelayMs: this.options.retryBaseDelayMs, maxDelayMs: 5_000 }),
        );
        recovering = true;
      }
    }
  }

  private async startSession(): Promise<void> {
    const res = await this.http.request({
      registry: this.repo.registry,
      method: 'POST',
      path: `/v2/${this.repo.repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
      scopes: this.scopes,
    });
    if (res.status !== 202) throw await this.http.errorFor(res, this.subject, 'starting the upload');
    await res.body.dump();
    this.follow(res.header('location'), res.url);
    // Registries may announce a minimum chunk size (OCI 1.1); smaller chunks would be rejected.
    const min = Number(res.header('oci-chunk-min-length'));
    if (this.chunkSize && Number.isSafeInteger(min) && min > this.chunkSize) this.chunkSize = min;
  }

  /** Where the upload stands after an interruption: bytes held, or 'done' if the blob is already there. */
  private async recover(): Promise<number | 'done'> {
    const res = await this.http.request({
      registry: this.repo.registry,
      method: 'GET',
      path: this.location,
      scopes: this.scopes,
    });
    await res.body.dump();
    if (res.status === 204 || res.status === 202) {
      const received = parseUploadRange(res.header('range'));
      this.follow(res.header('location') ?? this.location, res.url);
      if (received !== undefined && received <= this.descriptor.size) {
        this.options.logger.debug(`${this.subject}: resuming upload at byte ${received}`);
        return received;
      }
      await this.cancel();
    } else if (res.status !== 404) {
      throw await this.http.errorFor(res, this.subject, 'checking the upload');
    }
    // The session is gone (distribution drops it when a write was cut off) or its state is ambiguous.
    if (await this.blobExists()) return 'done';
    this.options.logger.warn(`${this.subject}: upload session lost; starting over`);
    await this.startSession();
    return 0;
  }

  /** Monolithic: one PUT from 0, or after a resume a PATCH of the rest followed by the committing PUT. */
  private async sendRest(source: Readable, offset: number): Promise<void> {
    const size = this.descriptor.size;
    const body = Readable.from(this.track(source), { objectMode: false });
    if (offset === 0) {
      await this.commit(body);
      return;
    }
    await this.patch(body, offset, size - offset);
    await this.commit(Buffer.alloc(0));
  }

  private async sendChunks(source: Readable, offset: number, chunkSize: number): Promise<void> {
    const size = this.descriptor.size;
    const bytes = this.track(source);
    const reader = new ChunkReader(bytes, this.subject, (error) => {
      this.sourceError = { error };
    });
    for (let position = offset; position < size; ) {
      const length = Math.min(chunkSize, size - position);
      await this.patch(Readable.from(reader.take(length), { objectMode: false }), position, length);
      position += length;
    }
    // Read the source to its end so its own verification (which runs at EOF) gets to fail before we commit.
    await reader.expectEnd();
    await this.commit(Buffer.alloc(0));
  }

  private async patch(body: Readable, offset: number, length: number): Promise<void> {
    const res = await this.http.request({
      registry: this.repo.registry,
      method: 'PATCH',
      path: this.location,
      headers: {
        'content-type': OCTET_STREAM,
        'content-length': String(length),
        'content-range': `${offset}-${offset + length - 1}`,
      },
      body,
      scopes: this.scopes,
    });
    if (res.status === 416) {
      await res.body.dump();
      throw new RangeMismatch(`registry rejected range ${offset}-${offset + length - 1}`);
    }
    if (res.status !== 202 && res.status !== 204)
      throw await this.http.errorFor(res, this.subject, 'uploading a chunk');
    await res.body.dump();
    this.follow(res.header('location') ?? this.location, res.url);
  }

  private async commit(body: Buffer | Readable): Promise<void> {
    const url = new URL(this.location);
    url.searchParams.set('digest', this.descriptor.digest);
    const length = body instanceof Buffer ? body.length : this.descriptor.size;
    const res = await this.http.request({
      registry: this.repo.registry,
      method: 'PUT',
      path: url.toString(),
      headers: { 'content-type': OCTET_STREAM, 'content-length': String(length) },
      body,
      scopes: this.scopes,
    });
    if (res.status !== 201 && res.status !== 204)
      throw await this.http.errorFor(res, this.subject, 'committing the upload');
    await res.body.dump();
    const stored = res.header('docker-content-digest');
    if (stored && stored !== this.descriptor.digest) {
      throw new GantryError('DIGEST_MISMATCH', `registry stored the blob as ${stored}`, {
        subject: this.subject,
      });
    }
  }

  private async blobExists(): Promise<boolean> {
    const res = await this.http.request({
      registry: this.repo.registry,
      method: 'HEAD',
      path: `/v2/${this.repo.repository}/blobs/${this.descriptor.digest}`,
      scopes: this.scopes,
    });
    await res.body.dump();
    return res.status === 200;
  }

  /** Best effort: a session we abandon would otherwise linger until the registry's upload purging. */
  private async cancel(): Promise<void> {
    if (!this.location) return;
    try {
      const res = await this.http.request({
        registry: this.repo.registry,
        method: 'DELETE',
        path: this.location,
        scopes: this.scopes,
      });
      await res.body.dump();
    } catch (err) {
      this.options.logger.debug(
        `${this.subject}: could not cancel the upload session: ${(err as Error).message}`,
      );
    }
  }

  private follow(location: string | undefined, base: URL): void {
    if (!location)
      throw new GantryError('REGISTRY_ERROR', 'upload response without a Location', {
        subject: this.subject,
      });
    this.location = new URL(location, base).toString();
  }

  /**
   * Yields the source's bytes, remembering an error the source itself raised. Only errors from reading the
   * source count: when the connection dies, the request body stream is destroyed and Readable.from throws
   * that network error into this generator at its `yield`, which must stay a resumable network failure.
   */
  private async *track(source: Readable): AsyncGenerator<Buffer> {
    const chunks: AsyncIterator<Buffer> = source[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        // A premature close is us abandoning the source after the request failed, not the source failing.
        if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
          this.sourceError = { error: err };
        throw err;
      }
      if (next.done) return;
      yield next.value;
    }
  }
}

/** Cuts a byte stream into consecutive streams of given lengths, without buffering more than one read. */
class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private leftover: Buffer | undefined;

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly subject: string,
    /** Told about a source that is shorter than announced, which is the source's fault, not the registry's. */
    private readonly onSourceError: (error: unknown) => void,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async *take(length: number): AsyncGenerator<Buffer> {
    let remaining = length;
    while (remaining > 0) {
      let chunk = this.leftover;
      this.leftover = undefined;
      if (!chunk) {
        const next = await this.iterator.next();
        if (next.done) {
          const error = new GantryError('SIZE_MISMATCH', 'source ended before the expected size', {
            subject: this.subject,
          });
          this.onSourceError(error);
          throw error;
        }
        chunk = next.value;
      }
      if (chunk.length > remaining) {
        this.leftover = chunk.subarray(remaining);
        chunk = chunk.subarray(0, remaining);
      }
      remaining -= chunk.length;
      yield chunk;
    }
  }

  async expectEnd(): Promise<void> {
    const next = this.leftover ? { done: false } : await this.iterator.next();
    if (!next.done)
      throw new GantryError('SIZE_MISMATCH', 'source is longer than the expected size', {
        subject: this.subject,
      });
  }
}

function isResumable(err: unknown): boolean {
  if (err instanceof RangeMismatch) return true;
  if (!isGantryError(err)) return false;
  if (err.code === 'NETWORK' || err.code === 'TIMEOUT' || err.code === 'RATE_LIMITED') return true;
  // A 401 on a streamed request means the token lapsed mid-upload; recovery re-authenticates.
  if (err.code === 'UNAUTHORIZED' && err.status === 401) return true;
  return err.code === 'REGISTRY_ERROR' && err.status !== undefined && err.status >= 500 && err.status !== 501;
}
