/**
 * util/verify-stream: a pass-through stream that hashes and counts what flows through it and fails at EOF when
 * the content does not match the descriptor it was read for. The copy engine wraps every blob in one, so no
 * destination ever commits content that differs from what the manifest promises.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { GantryError } from '../errors/index.js';
import { digestAlgorithm } from '../oci/index.js';

export interface VerifyOptions {
  digest: string;
  size: number;
  /** Bytes already delivered before this stream starts (a resumed transfer): only the size is checked then. */
  offset?: number;
  /** What to name in the error, e.g. the source reference. */
  subject: string;
  /** Called with the running byte count (including the offset) as data passes, for progress display. */
  onBytes?: (received: number) => void;
}

/** Socket reads arrive in 64 KiB pieces; passing them on in bigger ones cuts per-chunk work downstream. */
const COALESCE_BYTES = 1 << 20;

export class VerifyingStream extends Transform {
  private readonly hash: Hash | undefined;
  private received: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly options: VerifyOptions) {
    super();
    this.received = options.offset ?? 0;
    // A resumed stream cannot know the hash state of the bytes before the offset; the destination
    // registry verifies the digest of the whole blob when the upload is completed.
    this.hash = this.received === 0 ? createHash(digestAlgorithm(options.digest)) : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.options.size) {
      callback(sizeError(this.options, this.received));
      return;
    }
    this.hash?.update(chunk);
    this.options.onBytes?.(this.received);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= COALESCE_BYTES) this.pushPending();
    callback();
  }

  private pushPending(): void {
    if (this.pendingBytes === 0) return;
    this.push(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  override _flush(callback: TransformCallback): void {
    this.pushPending();
    if (this.received !== this.options.size) {
      callback(sizeError(this.options, this.received));
      return;
    }
    const actual = this.hash && `${digestAlgorithm(this.options.digest)}:${this.hash.digest('hex')}`;
    callback(actual && actual !== this.options.digest ? digestError(this.options, actual) : undefined);
  }
}

/**
 * Reads a small blob (a config, an attachment) whole and verifies it: the same checks as VerifyingStream
 * without a stream stage per chunk, which for a few KiB is most of the work.
 */
export async function readVerified(stream: AsyncIterable<Buffer>, options: VerifyOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of stream) {
    received += chunk.length;
    if (received > options.size) throw sizeError(options, received);
    chunks.push(chunk);
  }
  if (received !== options.size) throw sizeError(options, received);
  const bytes = Buffer.concat(chunks, received);
  const actual = `${digestAlgorithm(options.digest)}:${createHash(digestAlgorithm(options.digest)).update(bytes).digest('hex')}`;
  if (actual !== options.digest) throw digestError(options, actual);
  return bytes;
}

function sizeError(options: VerifyOptions, received: number): GantryError {
  return new GantryError(
    'SIZE_MISMATCH',
    `blob ${options.digest} should be ${options.size} bytes, got ${received > options.size ? 'more' : received}`,
    { subject: options.subject },
  );
}

function digestError(options: VerifyOptions, actual: string): GantryError {
  return new GantryError(
    'DIGEST_MISMATCH',
    `blob ${options.digest} has wrong content: it hashes to ${actual}`,
    {
      subject: options.subject,
    },
  );
}
