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

  // Only failures of reading the response resume: an error the consumer throws in at `yield` (Readable.from
  // does so when the stream is destroyed, e.g. because the destination failed) ends the download as is.
  async function* seamless(): AsyncGenerator<Buffer> {
    let position = start;
    let current = first;
    let chunks = (current.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (let resumes = 0; ; ) {
      let chunk: Buffer | undefined;
      try {
        const next = await chunks.next();
        if (next.done) {
          if (position >= descriptor.size) return;
          throw new GantryError(
            'NETWORK',
            `connection closed after ${position} of ${descriptor.size} bytes`,
            {
              subject,
            },
          );
        }
        chunk = next.value;
      } catch (err) {
        if (options.signal?.aborted || classifyFailure(err) === 'aborted') throw err;
        if (resumes >= options.maxResumes || position >= descriptor.size) {
          throw isGantryError(err) ? err : transportError(err, classifyFailure(err), subject, 'reading blob');
        }
        resumes++;
        options.logger.debug(
          `${subject}: transfer interrupted at byte ${position} (${(err as Error).message}); resuming`,
        );
        current = await openRange(http, repo, descriptor, position, options.signal, subject);
        chunks = (current.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        continue;
      }
      if (current.skip > 0) {
        const dropped = Math.min(current.skip, chunk.length);
        current.skip -= dropped;
        chunk = chunk.subarray(dropped);
        if (chunk.length === 0) continue;
      }
      position += chunk.length;
      yield chunk;
    }
  }
  return Readable.from(seamless(), { objectMode: false });
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
