// Tests for the verifying pass-through stream, in the style of containers/image's digesting-reader tests.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import { sha256Digest } from '../../src/oci/index.js';
import { readVerified, VerifyingStream } from '../../src/util/verify-stream.js';

// Non-periodic content, so reordering or shifting bytes really changes the blob.
const blob = Buffer.concat(
  Array.from({ length: 512 }, (_, i) => createHash('sha256').update(String(i)).digest()),
);
const digest = sha256Digest(blob);

/** Pipes `chunks` through a VerifyingStream; resolves with what came out, or with the error. */
async function run(
  chunks: Buffer[],
  options: Partial<ConstructorParameters<typeof VerifyingStream>[0]> = {},
): Promise<{ out: Buffer; error?: GantryError; progress: number[] }> {
  const out: Buffer[] = [];
  const progress: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  const verify = new VerifyingStream({
    digest,
    size: blob.length,
    subject: 'docker://r.io/app:v1',
    onBytes: (n) => progress.push(n),
    ...options,
  });
  try {
    await pipeline(Readable.from(chunks), verify, sink);
    return { out: Buffer.concat(out), progress };
  } catch (err) {
    expect(err).toBeInstanceOf(GantryError);
    return { out: Buffer.concat(out), error: err as GantryError, progress };
  }
}

const split = (b: Buffer, size: number): Buffer[] => {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return parts;
};

describe('VerifyingStream', () => {
  it.each([1, 7, 4096, blob.length])(
    'passes valid content through unchanged in %i-byte chunks',
    async (n) => {
      const { out, error } = await run(split(blob, n));
      expect(error).toBeUndefined();
      expect(out.equals(blob)).toBe(true);
    },
  );

  it('reports progress as a running total', async () => {
    const { progress } = await run(split(blob, 4096));
    expect(progress).toEqual([4096, 8192, 12288, 16384]);
  });

  it('accepts an empty blob', async () => {
    const empty = Buffer.alloc(0);
    const { error } = await run([], { digest: sha256Digest(empty), size: 0 });
    expect(error).toBeUndefined();
  });

  it('verifies sha512 digests', async () => {
    const sha512 = `sha512:${createHash('sha512').update(blob).digest('hex')}`;
    expect((await run([blob], { digest: sha512 })).error).toBeUndefined();
    const bad = `sha512:${'0'.repeat(128)}`;
    expect((await run([blob], { digest: bad })).error?.code).toBe('DIGEST_MISMATCH');
  });

  const bad: [string, Buffer[], 'SIZE_MISMATCH' | 'DIGEST_MISMATCH'][] = [
    ['one byte extra', [blob, Buffer.from('x')], 'SIZE_MISMATCH'],
    ['one byte extra in the same chunk', [Buffer.concat([blob, Buffer.from('x')])], 'SIZE_MISMATCH'],
    ['truncated by one byte', [blob.subarray(0, blob.length - 1)], 'SIZE_MISMATCH'],
    ['empty', [], 'SIZE_MISMATCH'],
    [
      'wrong content of the same length',
      [Buffer.concat([blob.subarray(0, 100), Buffer.from('X'), blob.subarray(101)])],
      'DIGEST_MISMATCH',
    ],
    ['reordered chunks', [blob.subarray(8192), blob.subarray(0, 8192)], 'DIGEST_MISMATCH'],
  ];
  it.each(bad)('fails on content %s, naming the source and digest', async (_what, chunks, code) => {
    const { error } = await run(chunks);
    expect(error?.code).toBe(code);
    expect(error?.subject).toBe('docker://r.io/app:v1');
    expect(error?.message).toContain('docker://r.io/app:v1');
    expect(error?.message).toContain(digest);
  });

  it('stops passing data on as soon as there is too much', async () => {
    const { out, error } = await run([blob, Buffer.from('extra')]);
    expect(error?.code).toBe('SIZE_MISMATCH');
    expect(out.length).toBeLessThanOrEqual(blob.length);
  });

  it('says how many bytes arrived when truncated', async () => {
    const { error } = await run([blob.subarray(0, 10)]);
    expect(error?.message).toContain(`should be ${blob.length} bytes, got 10`);
  });

  describe('resumed at an offset (size-only check)', () => {
    const offset = 5000;
    it('accepts the remaining bytes and counts progress from the offset', async () => {
      const { out, error, progress } = await run([blob.subarray(offset)], { offset });
      expect(error).toBeUndefined();
      expect(out.equals(blob.subarray(offset))).toBe(true);
      expect(progress).toEqual([blob.length]);
    });

    it('cannot detect wrong content of the right length (the registry verifies the whole blob)', async () => {
      const wrong = Buffer.alloc(blob.length - offset, 0x41);
      expect((await run([wrong], { offset })).error).toBeUndefined();
    });

    it.each([
      ['too short', blob.subarray(offset + 1)],
      ['too long', Buffer.concat([blob.subarray(offset), Buffer.from('x')])],
    ])('still fails with SIZE_MISMATCH when %s', async (_what, rest) => {
      expect((await run([rest], { offset })).error?.code).toBe('SIZE_MISMATCH');
    });
  });
});

describe('readVerified', () => {
  const read = (chunks: Buffer[], options: Partial<Parameters<typeof readVerified>[1]> = {}) =>
    readVerified(Readable.from(chunks), { digest, size: blob.length, subject: 'reg/app@cfg', ...options });

  it('returns the whole blob when size and digest match', async () => {
    expect((await read(split(blob, 1000))).equals(blob)).toBe(true);
  });

  it.each([
    ['changed content', [Buffer.from(blob).fill(0, 10, 11)], 'DIGEST_MISMATCH'],
    ['a short body', [blob.subarray(0, 100)], 'SIZE_MISMATCH'],
    ['a long body', [blob, Buffer.from('x')], 'SIZE_MISMATCH'],
  ])('fails on %s, naming the source', async (_why, chunks, code) => {
    const error = await read(chunks).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(GantryError);
    expect((error as GantryError).code).toBe(code);
    expect((error as GantryError).message).toContain('reg/app@cfg');
  });
});
