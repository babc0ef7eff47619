/**
 * registry/client: the OCI distribution (v1.1) client the registry transport and the CLI use. Each method maps to
 * one protocol operation and verifies what it receives (manifest digests, sizes); connection handling, auth and
 * retries live in ./http.ts, blob streaming in ./blob-download.ts and ./blob-upload.ts.
 */

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GantryError, isGantryError } from '../errors/index.js';
import {
  ACCEPTED_MANIFEST_TYPES,
  type Descriptor,
  digestAlgorithm,
  encodeManifest,
  type ImageIndex,
  isDigest,
  isIndex,
  type Manifest,
  MediaType,
  parseManifest,
  type RawManifest,
  sha256Digest,
} from '../oci/index.js';
import type { BlobOpener } from '../transports/types.js';
import { type Logger, silentLogger } from '../util/log.js';
import { downloadBlob } from './blob-download.js';
import { uploadBlob } from './blob-upload.js';
import { parseLinkNext, type RateLimitInfo } from './headers.js';
import { RegistryHttp, type RegistryResponse, readLimited } from './http.js';
import {
  filterByArtifactType,
  referrerDescriptor,
  referrersTag,
  subjectOf,
  withReferrer,
} from './referrers.js';
import { Transport } from './transport.js';
import type { CredentialResolver, RepoLocation } from './types.js';

export interface RegistryClientOptions {
  /** Undefined = anonymous. */
  credentials?: CredentialResolver;
  /** Default true; false accepts any certificate (still TLS). */
  tlsVerify?: boolean;
  /** containers certs.d layout (`${certDir}/${host}/ca.crt`, client.cert + client.key) or the files directly. */
  certDir?: string;
  /**
   * A PEM bundle of CAs trusted in addition to the system roots, read on the first TLS connection. Default
   * `$GANTRY_EXTRA_CA_CERTS`, which bin/gantry sets from NODE_EXTRA_CA_CERTS (see there for why).
   */
  extraCaFile?: string;
  /** Hosts where plain HTTP is allowed; loopback hosts always try HTTPS, then HTTP. */
  insecureRegistries?: string[];
  /** Default 4. */
  maxRetries?: number;
  /** Default 250; exponential with full jitter, capped. */
  retryBaseDelayMs?: number;
  /** Headers timeout and body idle timeout; default 120 000. */
  requestTimeoutMs?: number;
  userAgent?: string;
  logger?: Logger;
}

/** Manifests are buffered; anything larger is not a manifest. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** Tag lists and referrer indexes are JSON bodies too, but may legitimately be large. */
const LISTING_LIMIT = 16 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;
/** Manifest PUTs tried when the registry briefly does not see blobs just linked (see putManifest). */
const BLOB_UNKNOWN_ATTEMPTS = 4;

export class RegistryClient {
  private readonly transport: Transport;
  private readonly http: RegistryHttp;
  private readonly logger: Logger;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;

  constructor(options: RegistryClientOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.maxRetries = options.maxRetries ?? 4;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 250;
    this.transport = new Transport({
      tlsVerify: options.tlsVerify ?? true,
      certDir: options.certDir,
      extraCaFile: options.extraCaFile ?? (process.env.GANTRY_EXTRA_CA_CERTS || undefined),
      insecureRegistries: options.insecureRegistries ?? [],
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      userAgent: options.userAgent ?? 'gantry',
    });
    this.http = new RegistryHttp(this.transport, {
      credentials: options.credentials,
      maxRetries: this.maxRetries,
      retryBaseDelayMs: this.retryBaseDelayMs,
      logger: this.logger,
    });
  }

  /** Checks that the registry answers and accepts our credentials (`login`). */
  async ping(registry: string): Promise<void> {
    const res = await this.http.request({ registry, method: 'GET', path: '/v2/', scopes: [] });
    if (res.status !== 200) throw await this.http.errorFor(res, registry, 'GET /v2/');
    await res.body.dump();
  }

  async getManifest(
    repo: RepoLocation,
    reference: string,
    options: { accept?: readonly string[] } = {},
  ): Promise<RawManifest> {
    const subject = formatRef(repo, reference);
    const res = await this.http.request({
      registry: repo.registry,
      method: 'GET',
      path: manifestPath(repo, reference),
      headers: { accept: (options.accept ?? ACCEPTED_MANIFEST_TYPES).join(', ') },
      scopes: pull(repo),
    });
    if (res.status !== 200)
      throw await this.http.errorFor(res, subject, 'GET manifest', { notFound: 'manifest not found' });
    if (Number(res.header('content-length')) > MANIFEST_LIMIT) {
      res.body.destroy();
      throw new GantryError('MANIFEST_INVALID', `manifest larger than ${MANIFEST_LIMIT} bytes`, { subject });
    }
    const bytes = await readLimited(res.body, MANIFEST_LIMIT, subject);
    if (isDigest(reference)) verifyDigest(bytes, reference, subject, 'requested digest');
    const reported = res.header('docker-content-digest');
    if (reported) verifyDigest(bytes, reported, subject, 'Docker-Content-Digest');
    const { mediaType } = parseManifest(bytes, res.header('content-type'), subject);
    return { bytes, mediaType, digest: isDigest(reference) ? reference : sha256Digest(bytes) };
  }

  /** Digest, type and size of a manifest without fetching it; undefined when it does not exist. */
  async headManifest(
    repo: RepoLocation,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const res = await this.http.request({
      registry: repo.registry,
      method: 'HEAD',
      path: manifestPath(repo, reference),
      headers: { accept: ACCEPTED_MANIFEST_TYPES.join(', ') },
      scopes: pull(repo),
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.http.errorFor(res, formatRef(repo, reference), 'HEAD manifest');
    const digest = res.header('docker-content-digest');
    const mediaType = res.header('content-type')?.split(';')[0]?.trim();
    const size = Number(res.header('content-length'));
    if (
      digest &&
      isDigest(digest) &&
      mediaType &&
      mediaType !== 'application/json' &&
      Number.isSafeInteger(size)
    ) {
      return { digest, mediaType, size };
    }
    // Not every registry reports all three on HEAD; the manifest itself is authoritative.
    const raw = await this.getManifest(repo, reference);
    return { digest: raw.digest, mediaType: raw.mediaType, size: raw.bytes.length };
  }

  async putManifest(repo: RepoLocation, reference: string, manifest: RawManifest): Promise<void> {
    const subject = formatRef(repo, reference);
    if (isDigest(reference) && reference !== manifest.digest) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `manifest digest ${manifest.digest} differs from the reference`,
        { subject },
      );
    }
    let res: RegistryResponse;
    for (let attempt = 1; ; attempt++) {
      res = await this.http.request({
        registry: repo.registry,
        method: 'PUT',
        path: manifestPath(repo, reference),
        headers: { 'content-type': manifest.mediaType },
        body: manifest.bytes,
        scopes: pullPush(repo),
      });
      if (res.status === 201 || res.status === 200 || res.status === 204) break;
      const error = await this.http.errorFor(res, subject, 'PUT manifest');
      // distribution's filesystem storage rewrites a repository's blob links in place, so while concurrent
      // copies mount or upload the same blob into one repository a link can read empty for a moment and the
      // manifest is refused with MANIFEST_BLOB_UNKNOWN. Seen with 10 parallel copies; a short wait clears it.
      if (!error.message.includes('MANIFEST_BLOB_UNKNOWN') || attempt >= BLOB_UNKNOWN_ATTEMPTS) throw error;
      this.logger.warn(`${subject}: registry did not see the manifest's blobs yet; retrying (${attempt})`);
      await sleep(attempt * 250);
    }
    await res.body.dump();
    const stored = res.header('docker-content-digest');
    if (
      stored &&
      digestAlgorithm(stored) === digestAlgorithm(manifest.digest) &&
      stored !== manifest.digest
    ) {
      throw new GantryError(
        'DIGEST_MISMATCH',
        `registry stored the manifest as ${stored}, not ${manifest.digest}`,
        { subject },
      );
    }
    // The registry accepted the bytes; only a manifest with a subject concerns us, whatever its type.
    const parsed = parseJsonObject(manifest.bytes) as Manifest | undefined;
    const subjectDescriptor = parsed && subjectOf(parsed);
    if (subjectDescriptor && !res.header('oci-subject')) {
      // The registry did not index the referrer itself (no referrers API): maintain the fallback tag.
      const added = withReferrer(
        await this.fallbackIndex(repo, subjectDescriptor.digest),
        referrerDescriptor(manifest, parsed),
      );
      if (added) {
        const bytes = encodeManifest(added);
        await this.putManifest(repo, referrersTag(subjectDescriptor.digest), {
          bytes,
          mediaType: MediaType.ociIndex,
          digest: sha256Digest(bytes),
        });
      }
    }
  }

  async deleteManifest(repo: RepoLocation, digest: string): Promise<void> {
    const subject = formatRef(repo, digest);
    const res = await this.http.request({
      registry: repo.registry,
      method: 'DELETE',
      path: manifestPath(repo, digest),
      scopes: [`repository:${repo.repository}:delete`],
    });
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) {
      throw await this.http.errorFor(res, subject, 'DELETE manifest', { notFound: 'manifest not found' });
    }
    await res.body.dump();
  }

  async hasBlob(repo: RepoLocation, digest: string): Promise<boolean> {
    const res = await this.http.request({
      registry: repo.registry,
      method: 'HEAD',
      path: `/v2/${repo.repository}/blobs/${digest}`,
      scopes: pull(repo),
    });
    await res.body.dump();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.http.errorFor(res, `${repo.registry}/${repo.repository}@${digest}`, 'HEAD blob');
  }

  getBlob(
    repo: RepoLocation,
    descriptor: Descriptor,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<Readable> {
    return downloadBlob(this.http, repo, descriptor, {
      ...options,
      maxResumes: Math.max(3, this.maxRetries + 1),
      logger: this.logger,
    });
  }

  /** Cross-repository mount on the same registry; false when the registry could not mount. */
  async mountBlob(repo: RepoLocation, digest: string, fromRepository: string): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from: fromRepository });
    const res = await this.http.request({
      registry: repo.registry,
      method: 'POST',
      path: `/v2/${repo.repository}/blobs/uploads/?${query}`,
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
      scopes: [...pullPush(repo), `repository:${fromRepository}:pull`],
    });
    await res.body.dump();
    if (res.status === 201) return true;
    if (res.status !== 202)
      throw await this.http.errorFor(res, `${repo.registry}/${repo.repository}@${digest}`, 'mount blob');
    // The registry opened a regular upload instead; close it so it does not linger.
    const location = res.header('location');
    if (location) {
      const cancel = await this.http.request({
        registry: repo.registry,
        method: 'DELETE',
        path: new URL(location, res.url).toString(),
        scopes: pullPush(repo),
      });
      await cancel.body.dump();
    }
    return false;
  }

  uploadBlob(
    repo: RepoLocation,
    descriptor: Descriptor,
    open: BlobOpener,
    options: { chunkSize?: number } = {},
  ): Promise<void> {
    return uploadBlob(this.http, repo, descriptor, open, {
      ...options,
      maxResumes: Math.max(3, this.maxRetries + 1),
      retryBaseDelayMs: this.retryBaseDelayMs,
      logger: this.logger,
    });
  }

  async listTags(repo: RepoLocation, options: { pageSize?: number } = {}): Promise<string[]> {
    const subject = `${repo.registry}/${repo.repository}`;
    const tags: string[] = [];
    let path: string | undefined =
      `/v2/${repo.repository}/tags/list` + (options.pageSize ? `?n=${options.pageSize}` : '');
    for (let page = 0; path !== undefined; page++) {
      if (page >= MAX_TAG_PAGES) {
        throw new GantryError('REGISTRY_ERROR', `tag list has more than ${MAX_TAG_PAGES} pages`, { subject });
      }
      const res: RegistryResponse = await this.http.request({
        registry: repo.registry,
        method: 'GET',
        path,
        scopes: pull(repo),
      });
      if (res.status !== 200)
        throw await this.http.errorFor(res, subject, 'list tags', { notFound: 'repository not found' });
      const body = parseJson(await readLimited(res.body, LISTING_LIMIT, subject), subject) as {
        tags?: unknown;
      };
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      path = parseLinkNext(res.headerValues('link'), res.url.toString());
    }
    return tags;
  }

  /** Manifests that name `digest` as their subject: the referrers API, else the fallback tag; [] if neither. */
  async listReferrers(
    repo: RepoLocation,
    digest: string,
    options: {
      artifactType?: string;
      /** The repository's tags, when the caller listed them: the fallback tag is fetched only if listed. */
      knownTags?: ReadonlySet<string>;
    } = {},
  ): Promise<Descriptor[]> {
    const subject = formatRef(repo, digest);
    const query = options.artifactType
      ? `?${new URLSearchParams({ artifactType: options.artifactType })}`
      : '';
    const res = await this.http.request({
      registry: repo.registry,
      method: 'GET',
      path: `/v2/${repo.repository}/referrers/${digest}${query}`,
      headers: { accept: MediaType.ociIndex },
      scopes: pull(repo),
    });
    if (res.status === 200) {
      const index = parseJson(
        await readLimited(res.body, LISTING_LIMIT, subject),
        subject,
      ) as Partial<ImageIndex>;
      const manifests = Array.isArray(index.manifests) ? index.manifests : [];
      const filtered = (res.header('oci-filters-applied') ?? '')
        .split(',')
        .some((f) => f.trim() === 'artifactType');
      return filtered ? manifests : filterByArtifactType(manifests, options.artifactType);
    }
    await res.body.dump();
    if (![400, 404, 405, 406, 501].includes(res.status))
      throw await this.http.errorFor(res, subject, 'list referrers');
    if (options.knownTags && !options.knownTags.has(referrersTag(digest))) return [];
    const fallback = await this.fallbackIndex(repo, digest);
    return filterByArtifactType(fallback?.manifests ?? [], options.artifactType);
  }

  /** Rate-limit information last seen for a registry. */
  rateLimit(registry: string): RateLimitInfo | undefined {
    return this.http.rateLimit(registry);
  }

  /** Closes pooled connections. */
  close(): Promise<void> {
    return this.transport.close();
  }

  private async fallbackIndex(repo: RepoLocation, subjectDigest: string): Promise<ImageIndex | undefined> {
    try {
      const raw = await this.getManifest(repo, referrersTag(subjectDigest), { accept: [MediaType.ociIndex] });
      const { manifest } = parseManifest(
        raw.bytes,
        raw.mediaType,
        formatRef(repo, referrersTag(subjectDigest)),
      );
      if (isIndex(manifest)) return manifest;
      this.logger.warn(`${formatRef(repo, referrersTag(subjectDigest))} is not an index; replacing it`);
      return undefined;
    } catch (err) {
      if (isGantryError(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
  }
}

function manifestPath(repo: RepoLocation, reference: string): string {
  return `/v2/${repo.repository}/manifests/${reference}`;
}

/** `host/repo:tag` or `host/repo@digest`, for messages. */
function formatRef(repo: RepoLocation, reference: string): string {
  return `${repo.registry}/${repo.repository}${isDigest(reference) ? '@' : ':'}${reference}`;
}

function pull(repo: RepoLocation): string[] {
  return [`repository:${repo.repository}:pull`];
}

function pullPush(repo: RepoLocation): string[] {
  return [`repository:${repo.repository}:pull,push`];
}

function verifyDigest(bytes: Buffer, expected: string, subject: string, what: string): void {
  const algorithm = digestAlgorithm(expected);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new GantryError('DIGEST_MISMATCH', `unsupported digest algorithm in ${what} ${expected}`, {
      subject,
    });
  }
  const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (actual !== expected) {
    throw new GantryError(
      'DIGEST_MISMATCH',
      `manifest content hashes to ${actual}, not the ${what} ${expected}`,
      { subject },
    );
  }
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseJson(bytes: Buffer, subject: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch (cause) {
    throw new GantryError('REGISTRY_ERROR', 'registry answered with invalid JSON', { subject, cause });
  }
  throw new GantryError('REGISTRY_ERROR', 'registry answered with unexpected JSON', { subject });
}
