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
      callback(this.sizeError());
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
      callback(this.sizeError());
      return;
    }
    if (this.hash) {
      const actual = `${digestAlgorithm(this.options.digest)}:${this.hash.digest('hex')}`;
      if (actual !== this.options.digest) {
        callback(
          new GantryError(
            'DIGEST_MISMATCH',
            `blob ${this.options.digest} has wrong content: it hashes to ${actual}`,
            { subject: this.options.subject },
          ),
        );
        return;
      }
    }
    callback();
  }

  private sizeError(): GantryError {
    return new GantryError(
      'SIZE_MISMATCH',
      `blob ${this.options.digest} should be ${this.options.size} bytes, got ${this.received > this.options.size ? 'more' : this.received}`,
      { subject: this.options.subject },
    );
  }
}
