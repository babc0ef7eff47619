/**
 * transports/file-util: helpers shared by the file-based transports (OCI layout, OCI archive, Docker archive,
 * dir): verified blob writes through temp files, atomic small-file writes, hashing of files, and tar handling
 * (safe extraction, indexing entries by offset, writing archives atomically).
 */
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { asGantryError, GantryError, isGantryError } from '../errors/index.js';
import { type Descriptor, digestAlgorithm, digestHex } from '../oci/index.js';
import type { BlobOpener } from './types.js';

/** Suffix for temp files: unique per write so concurrent writers never share one. */
export function tempSuffix(): string {
  return `.tmp-${randomBytes(6).toString('hex')}`;
}

/** Hashes and counts bytes as they pass, for verifying what was written against a descriptor. */
export class DigestCounter {
  private readonly hash: Hash;
  size = 0;

  constructor(readonly algorithm: string) {
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new GantryError('INVALID_ARGUMENT', `unsupported digest algorithm ${algorithm}`);
    }
    this.hash = createHash(algorithm);
  }

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** Throws SIZE_MISMATCH / DIGEST_MISMATCH when the counted bytes are not what the descriptor promises. */
export function verifyCounted(counter: DigestCounter, descriptor: Descriptor, subject: string): void {
  if (counter.size !== descriptor.size) {
    throw new GantryError(
      'SIZE_MISMATCH',
      `blob ${descriptor.digest} is ${counter.size} bytes, expected ${descriptor.size}`,
      { subject },
    );
  }
  const got = counter.digest();
  if (got !== descriptor.digest) {
    throw new GantryError('DIGEST_MISMATCH', `blob hashed to ${got}, expected ${descriptor.digest}`, {
      subject,
    });
  }
}

const MAX_RESUMES = 3;

function isTransient(err: unknown): boolean {
  return isGantryError(err, 'NETWORK') || isGantryError(err, 'TIMEOUT');
}

/**
 * Yields a blob's bytes from the opener, reopening at the current offset after a transient (network/timeout)
 * failure, at most MAX_RESUMES times. Verification errors are never retried.
 */
export async function* blobChunks(open: BlobOpener): AsyncGenerator<Buffer> {
  let offset = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const stream = await open(offset);
      for await (const chunk of stream) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        offset += buf.length;
        yield buf;
      }
      return;
    } catch (err) {
      if (attempt >= MAX_RESUMES || !isTransient(err)) throw err;
    }
  }
}

/** Where a blob lives in an OCI layout: `blobs/<alg>/<hex>`. */
export function layoutBlobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', digestAlgorithm(digest), digestHex(digest));
}

/** Size of a regular file, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Streams a blob into `path` through a temp file in the same directory, verifying size and digest while
 * writing; the file appears under its final name only after the whole stream verified. On any failure the
 * temp file is removed. `temps` tracks in-flight temp files so an abort can remove them.
 */
export async function writeVerifiedBlob(opts: {
  open: BlobOpener;
  descriptor: Descriptor;
  path: string;
  subject: string;
  temps: Set<string>;
}): Promise<void> {
  const { descriptor, path, subject, temps } = opts;
  const counter = new DigestCounter(digestAlgorithm(descriptor.digest));
  const tmp = path + tempSuffix();
  await mkdir(dirname(path), { recursive: true });
  temps.add(tmp);
  try {
    await pipeline(
      blobChunks(opts.open),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          counter.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tmp, { flags: 'wx' }),
    );
    verifyCounted(counter, descriptor, subject);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw asGantryError(err, 'IO', `writing blob ${descriptor.digest}`, subject);
  } finally {
    temps.delete(tmp);
  }
}

/** Writes a small file atomically: temp file in the same directory, then rename. */
export async function writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = path + tempSuffix();
  try {
    await writeFile(tmp, data, { flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw asGantryError(err, 'IO', `writing ${basename(path)}`, path);
  }
}

/** Reads a whole small file; NOT_FOUND names the file when it is missing. */
export async function readSmallFile(path: string, subject: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GantryError('NOT_FOUND', `${path} does not exist`, { subject, cause: err });
    }
    throw asGantryError(err, 'IO', `reading ${path}`, subject);
  }
}

/** Opens a file for streaming from `offset`; fails with NOT_FOUND up front rather than as a stream error. */
export async function openFileStream(
  path: string,
  subject: string,
  range: { start?: number; end?: number } = {},
): Promise<Readable> {
  try {
    const handle = await open(path, 'r');
    return handle.createReadStream({ start: range.start ?? 0, end: range.end, autoClose: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GantryError('NOT_FOUND', `blob file ${path} does not exist`, { subject, cause: err });
    }
    throw asGantryError(err, 'IO', `opening ${path}`, subject);
  }
}

/** Digest of a file's content, streamed. */
export async function hashFile(path: string, algorithm = 'sha256'): Promise<string> {
  const counter = new DigestCounter(algorithm);
  for await (const chunk of createReadStream(path)) counter.update(chunk as Buffer);
  return counter.digest();
}

/** Resolves an archive member name below `root`, refusing absolute names and `..` escapes. */
export function safeMemberPath(root: string, name: string, subject: string): string {
  const target = resolve(root, name);
  const rel = relative(root, target);
  if (name.includes('\0') || isAbsolute(name) || rel.startsWith('..') || isAbsolute(rel)) {
    throw new GantryError('INVALID_ARGUMENT', `archive member ${JSON.stringify(name)} escapes the archive`, {
      subject,
    });
  }
  return target;
}

/**
 * Extracts a tar (as found in an OCI archive) into `root`, streaming each file. Only regular files and
 * directories are accepted: links and devices have no place in an image layout and could point outside.
 */
export async function extractTarSafely(file: string, root: string, subject: string): Promise<void> {
  const extract = tar.extract();
  const source = createReadStream(file);
  const done = pipeline(source, extract);
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      const target = safeMemberPath(root, name, subject);
      if (type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
      } else if (type === 'file' || type === 'contiguous-file') {
        if (target === root)
          throw new GantryError('INVALID_ARGUMENT', 'archive member names its root', { subject });
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { flags: 'wx' }));
      } else {
        throw new GantryError('INVALID_ARGUMENT', `archive member ${JSON.stringify(name)} is a ${type}`, {
          subject,
        });
      }
    }
    await done;
  } catch (err) {
    source.destroy();
    await done.catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !isGantryError(err)) {
      throw new GantryError('NOT_FOUND', `${file} does not exist`, { subject, cause: err });
    }
    throw asGantryError(err, 'IO', `extracting ${file}`, subject);
  }
}

/** One member of a tar being written: a file streamed from disk, bytes, a directory or a symlink. */
export type TarMember =
  | { name: string; file: string; size: number }
  | { name: string; data: Buffer }
  | { name: string; directory: true }
  | { name: string; symlink: string };

/** Lists a directory tree as tar members (directories first, sorted for reproducible archives). */
export async function membersOfDirectory(root: string, prefix = ''): Promise<TarMember[]> {
  const out: TarMember[] = [];
  const entries = (await readdir(join(root, prefix), { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const e of entries) {
    const name = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.push({ name: `${name}/`, directory: true });
      out.push(...(await membersOfDirectory(root, name)));
    } else if (e.isFile()) {
      const path = join(root, name);
      out.push({ name, file: path, size: (await stat(path)).size });
    }
  }
  return out;
}

/**
 * Writes members as a tar to `file` atomically: into a temp file in the same directory, renamed over `file`
 * only once complete, so readers never see a half-written archive.
 */
export async function writeTarAtomic(file: string, members: TarMember[], subject: string): Promise<void> {
  const tmp = file + tempSuffix();
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(tmp, { flags: 'wx' }));
  try {
    const base = { mtime: new Date(0), uid: 0, gid: 0 };
    for (const m of members) {
      if ('file' in m) {
        const entry = pack.entry({ ...base, name: m.name, size: m.size, mode: 0o444 });
        await pipeline(createReadStream(m.file), entry);
      } else if ('data' in m) {
        await new Promise<void>((ok, fail) => {
          pack.entry({ ...base, name: m.name, size: m.data.length, mode: 0o444 }, m.data, (e) =>
            e ? fail(e) : ok(),
          );
        });
      } else if ('directory' in m) {
        await new Promise<void>((ok, fail) => {
          pack.entry({ ...base, name: m.name, type: 'directory', mode: 0o755 }, (e) => (e ? fail(e) : ok()));
        });
      } else {
        await new Promise<void>((ok, fail) => {
          pack.entry({ ...base, name: m.name, type: 'symlink', linkname: m.symlink, mode: 0o777 }, (e) =>
            e ? fail(e) : ok(),
          );
        });
      }
    }
    pack.finalize();
    await written;
    await rename(tmp, file);
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    await rm(tmp, { force: true });
    throw asGantryError(err, 'IO', `writing archive ${file}`, subject);
  }
}

/** A member of an existing tar file, located by byte offset so it can be streamed without extraction. */
export interface TarIndexEntry {
  name: string;
  type: 'file' | 'symlink' | 'hardlink' | 'directory' | 'other';
  offset: number;
  size: number;
  linkname: string;
}

const BLOCK = 512;
/** Bounds the header walk of a corrupt archive; real archives with this many members are not images. */
const MAX_TAR_MEMBERS = 1_000_000;

function parseOctal(buf: Buffer): number {
  // GNU base-256 encoding for sizes >= 8 GiB: high bit of the first byte set.
  if ((buf[0]! & 0x80) !== 0) {
    let value = buf[0]! & 0x7f;
    for (let i = 1; i < buf.length; i++) value = value * 256 + buf[i]!;
    return value;
  }
  const text = buf.toString('ascii').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Normalises member names: `./a/b` and `a/b` are the same member. */
export function normalizeMemberName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/**
 * Reads a tar's headers once (no data) and returns its members by normalised name, honouring PAX and GNU
 * long names. Data of a member is then streamed with `openFileStream(file, .., {start, end})`.
 */
export async function indexTar(file: string, subject: string): Promise<Map<string, TarIndexEntry>> {
  const out = new Map<string, TarIndexEntry>();
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GantryError('NOT_FOUND', `${file} does not exist`, { subject, cause: err });
    }
    throw asGantryError(err, 'IO', `opening ${file}`, subject);
  }
  try {
    const total = (await handle.stat()).size;
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax = new Map<string, string>();
    for (let n = 0; n < MAX_TAR_MEMBERS && pos + BLOCK <= total; n++) {
      await handle.read(header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) break;
      const size = parseOctal(header.subarray(124, 136));
      const typeflag = String.fromCharCode(header[156]!);
      const dataStart = pos + BLOCK;
      const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
      if (!Number.isSafeInteger(size) || size < 0 || next > total) {
        throw new GantryError('MANIFEST_INVALID', `corrupt tar header at offset ${pos}`, { subject });
      }
      const readData = async (): Promise<Buffer> => {
        if (size > 1 << 20)
          throw new GantryError('MANIFEST_INVALID', 'oversized tar extension header', { subject });
        const buf = Buffer.alloc(size);
        await handle.read(buf, 0, size, dataStart);
        return buf;
      };
      if (typeflag === 'x') {
        pax = parsePax(await readData());
      } else if (typeflag === 'g') {
        // Global PAX headers carry archive-wide defaults that do not affect member names here.
      } else if (typeflag === 'L') {
        longName = cString(await readData());
      } else if (typeflag === 'K') {
        longLink = cString(await readData());
      } else {
        const prefix = header.subarray(257, 263).toString('ascii').startsWith('ustar')
          ? cString(header.subarray(345, 500))
          : '';
        const shortName = cString(header.subarray(0, 100));
        const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
        const linkname = pax.get('linkpath') ?? longLink ?? cString(header.subarray(157, 257));
        const paxSize = pax.get('size');
        const realSize = paxSize !== undefined ? Number.parseInt(paxSize, 10) : size;
        const type =
          typeflag === '0' || typeflag === '\0' || typeflag === '7'
            ? 'file'
            : typeflag === '2'
              ? 'symlink'
              : typeflag === '1'
                ? 'hardlink'
                : typeflag === '5'
                  ? 'directory'
                  : 'other';
        out.set(normalizeMemberName(name), { name, type, offset: dataStart, size: realSize, linkname });
        pax = new Map();
        longName = undefined;
        longLink = undefined;
        pos = dataStart + Math.ceil(realSize / BLOCK) * BLOCK;
        continue;
      }
      pos = next;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/**
 * Follows symlinks and hard links inside an indexed tar to a regular file (docker save's `<id>/layer.tar`
 * links), refusing targets outside the archive and bounding the chain.
 */
export function resolveTarMember(
  index: Map<string, TarIndexEntry>,
  name: string,
  subject: string,
): TarIndexEntry {
  let current = normalizeMemberName(name);
  for (let hops = 0; hops < 16; hops++) {
    const entry = index.get(current);
    if (!entry)
      throw new GantryError('NOT_FOUND', `archive has no member ${JSON.stringify(current)}`, { subject });
    if (entry.type === 'file') return entry;
    if (entry.type !== 'symlink' && entry.type !== 'hardlink') {
      throw new GantryError('MANIFEST_INVALID', `archive member ${JSON.stringify(current)} is not a file`, {
        subject,
      });
    }
    const base = entry.type === 'symlink' ? dirname(current) : '.';
    const target = join(base, entry.linkname).split(sep).join('/');
    if (target.startsWith('..') || isAbsolute(entry.linkname)) {
      throw new GantryError('INVALID_ARGUMENT', `archive link ${JSON.stringify(current)} points outside`, {
        subject,
      });
    }
    current = normalizeMemberName(target);
  }
  throw new GantryError('MANIFEST_INVALID', `too many links resolving ${JSON.stringify(name)}`, { subject });
}

/** The subject/artifactType/annotations of a stored manifest, for attachment discovery. */
export function manifestFacts(bytes: Buffer): {
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
} {
  try {
    const m = JSON.parse(bytes.toString('utf8')) as {
      subject?: { digest?: unknown };
      artifactType?: unknown;
      config?: { mediaType?: unknown };
      annotations?: Record<string, string>;
    };
    const subject = typeof m.subject?.digest === 'string' ? m.subject.digest : undefined;
    const artifactType =
      typeof m.artifactType === 'string'
        ? m.artifactType
        : typeof m.config?.mediaType === 'string'
          ? m.config.mediaType
          : undefined;
    return { subject, artifactType, annotations: m.annotations };
  } catch {
    return {};
  }
}

/** Throws DIGEST_MISMATCH when in-memory bytes (a manifest) do not hash to `digest`. */
export function assertBytesDigest(bytes: Buffer, digest: string, subject: string): void {
  const alg = digestAlgorithm(digest);
  const got = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
  if (got !== digest) {
    throw new GantryError('DIGEST_MISMATCH', `content hashes to ${got}, expected ${digest}`, { subject });
  }
}
