/**
 * build/add-archive: ADD's auto-extraction of local tar archives (uncompressed, gzip, bzip2, xz, zstd), as
 * BuildKit's unpack does: a file is an archive when it decompresses to a valid first tar header; its entries
 * land under the destination directory with their modes, mtimes and owners (or the --chown owner). OCI
 * whiteouts are ordinary files here. Extraction refuses anything that would leave the target: `..` names,
 * writes through symlinks, symlinks or hard links pointing out; absolute names are rooted at the target, as
 * in BuildKit. Streams: gzip through zlib, the others through the bzip2/xz/zstd CLIs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { asGantryError, GantryError, isGantryError } from '../errors/index.js';
import type { Owner } from './copy-stage.js';

export type ArchiveCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const TOOLS: Record<Exclude<ArchiveCompression, 'none' | 'gzip'>, string> = {
  bzip2: 'bzip2',
  xz: 'xz',
  zstd: 'zstd',
};

/** The compression a file's first bytes announce. */
export function sniffCompression(head: Buffer): ArchiveCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return 'none';
}

/** A 512-byte block is a tar header when its checksum field matches (the test Go's tar reader applies). */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512 || block.every((b) => b === 0)) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const want = Number.parseInt(field, 8);
  return want === unsigned || want === signed;
}

interface Decompressed {
  stream: Readable;
  child?: ChildProcess;
  /** Resolves once the decompressor exited; rejects if it failed. */
  done: Promise<void>;
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function decompress(path: string, subject: string): Promise<Decompressed> {
  const kind = sniffCompression(await readHead(path, 6));
  if (kind === 'none') return { stream: createReadStream(path), done: Promise.resolve() };
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    const source = createReadStream(path);
    source.on('error', (err) => gunzip.destroy(err));
    return { stream: source.pipe(gunzip), done: Promise.resolve() };
  }
  const tool = TOOLS[kind];
  const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 2000) stderr += d;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (cause) =>
      reject(
        new GantryError('IO', `cannot run ${tool} to decompress ${kind} (install it)`, { subject, cause }),
      ),
    );
    child.on('close', (code, signal) =>
      code === 0 || signal === 'SIGTERM'
        ? resolve()
        : reject(new GantryError('INVALID_ARGUMENT', `${tool} failed: ${stderr.trim()}`, { subject })),
    );
  });
  return { stream: child.stdout as Readable, child, done };
}

/** Whether `path` is a regular file that decompresses to a tar archive (BuildKit's isArchivePath). */
export async function isArchive(path: string, subject: string): Promise<boolean> {
  const s = await lstat(path).catch(() => undefined);
  if (!s?.isFile() || s.size === 0) return false;
  const d = await decompress(path, subject);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of d.stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 512) break;
    }
  } catch {
    return false;
  } finally {
    d.stream.destroy();
    d.child?.kill('SIGTERM');
    await d.done.catch(() => undefined);
  }
  return isTarHeader(Buffer.concat(chunks).subarray(0, 512));
}

export interface ExtractOptions {
  archive: string;
  /** The archive as errors name it (its context path). */
  name: string;
  /** Existing directory the entries land in. */
  target: string;
  /** --chown: every entry's owner; absent keeps the archive's. */
  owner?: Owner;
  /** Receives each written path's owner (applied by the caller with applyOwners). */
  owners: Map<string, Owner>;
  subject: string;
}

export interface ExtractResult {
  entries: number;
  /** Entries not reproduced (devices, FIFOs), with why. */
  skipped: { path: string; reason: string }[];
}

/** The entry's path relative to the target, or an error if it climbs out. */
function entryPath(name: string, archive: string, subject: string): string {
  const relative = posix.normalize(name.replace(/^\/+/, '') || '.');
  if (relative === '..' || relative.startsWith('../')) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `archive ${archive} entry ${JSON.stringify(name)} leaves the destination`,
      { subject },
    );
  }
  return relative === '.' ? '' : relative.replace(/\/$/, '');
}

/** Refuses to go through a symlink on the way to `rel` (the archive made it; it could point anywhere). */
async function checkParents(
  target: string,
  rel: string,
  owners: Map<string, Owner>,
  fail: (why: string) => Error,
): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let current = target;
  for (const part of parts) {
    current = join(current, part);
    const s = await lstat(current).catch(() => undefined);
    if (!s) {
      // A parent the archive does not list is made as moby's untar makes it: 0755, owned by root.
      await mkdir(current, { mode: 0o755 });
      await chmod(current, 0o755);
      owners.set(current, { uid: 0, gid: 0 });
      continue;
    }
    if (s.isSymbolicLink()) throw fail('would be written through a symlink');
    if (!s.isDirectory()) throw fail('has a parent that is not a directory');
  }
}

/** Extracts `archive` into `target` safely; see the module comment. */
export async function extractArchive(o: ExtractOptions): Promise<ExtractResult> {
  const d = await decompress(o.archive, o.subject);
  const extract = tar.extract();
  const done = pipeline(d.stream, extract);
  const result: ExtractResult = { entries: 0, skipped: [] };
  const dirs: { path: string; mode: number; mtime: Date }[] = [];
  try {
    for await (const entry of extract) {
      const h = entry.header;
      result.entries++;
      const rel = entryPath(h.name, o.name, o.subject);
      const fail = (why: string) =>
        new GantryError('INVALID_ARGUMENT', `archive ${o.name} entry ${JSON.stringify(h.name)} ${why}`, {
          subject: o.subject,
        });
      const host = rel === '' ? o.target : join(o.target, rel);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const mtime = h.mtime ?? new Date(0);
      const owner = o.owner ?? { uid: h.uid ?? 0, gid: h.gid ?? 0 };
      if (rel !== '') await checkParents(o.target, rel, o.owners, fail);
      const existing = rel === '' ? undefined : await lstat(host).catch(() => undefined);
      // A later entry replaces an earlier one, except that a directory merges into a directory.
      if (existing && !(existing.isDirectory() && h.type === 'directory')) {
        await rm(host, { recursive: true, force: true });
      }
      switch (h.type) {
        case 'directory':
          await mkdir(host, { recursive: true });
          // Owner-writable until the end, so a read-only directory can still receive its entries.
          await chmod(host, mode | 0o700);
          dirs.push({ path: host, mode, mtime });
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file':
          if (rel === '') throw fail('names the destination itself');
          await pipeline(entry, createWriteStream(host, { flags: 'wx', mode: 0o600 }));
          await chmod(host, mode);
          await lutimes(host, mtime, mtime);
          break;
        case 'symlink': {
          const linkname = h.linkname ?? '';
          // As BuildKit's untar: a relative target is resolved from the link's directory and must stay inside.
          const resolved = posix.normalize(posix.join(posix.dirname(rel), linkname));
          if (!linkname.startsWith('/') && (resolved === '..' || resolved.startsWith('../'))) {
            throw fail(`is a symlink to ${JSON.stringify(linkname)}, outside the destination`);
          }
          if (rel === '') throw fail('names the destination itself');
          await symlink(linkname, host);
          await lutimes(host, mtime, mtime);
          entry.resume();
          break;
        }
        case 'link': {
          const linkRel = entryPath(h.linkname ?? '', o.name, o.subject);
          if (rel === '' || linkRel === '') throw fail('is a hard link to the destination itself');
          await checkParents(o.target, linkRel, o.owners, fail);
          const src = join(o.target, linkRel);
          const s = await lstat(src).catch(() => undefined);
          if (!s || s.isDirectory())
            throw fail(`is a hard link to ${JSON.stringify(h.linkname)}, not an earlier file`);
          await link(src, host);
          entry.resume();
          break;
        }
        default:
          result.skipped.push({ path: h.name, reason: `${h.type ?? 'unknown'} entries are not extracted` });
          entry.resume();
          continue;
      }
      o.owners.set(host, owner);
    }
    await done;
    await d.done;
  } catch (err) {
    d.stream.destroy();
    d.child?.kill('SIGTERM');
    await done.catch(() => undefined);
    await d.done.catch(() => undefined);
    if (isGantryError(err)) throw err;
    throw asGantryError(err, 'INVALID_ARGUMENT', `cannot extract ${o.name}`, o.subject);
  }
  // Directory modes and mtimes last: writing their children needed them writable and changed their mtimes.
  for (const { path, mode, mtime } of dirs.reverse()) {
    await chmod(path, mode);
    await lutimes(path, mtime, mtime);
  }
  return result;
}
