/**
 * build/copy-plan: which files a COPY/ADD takes from a source tree (the build context after .dockerignore, or
 * a stage's root filesystem) and where each lands, with BuildKit's rules: wildcards, a directory source copies
 * its contents, a file goes into `dest/` when dest ends in `/`, names a directory, or several sources are
 * given. Also hashes exactly those files (content, type, mode, link target) for the cache key.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { IgnoreMatcher } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { digestFiles } from '../native/index.js';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface CopyEntry {
  /** Absolute path on the host. */
  source: string;
  /** Absolute path in the image. */
  dest: string;
  type: EntryType;
  /** Permission bits of the source (0o7777). */
  mode: number;
  /** The source's owner on the host (meaningful for stage roots unpacked as root). */
  uid: number;
  gid: number;
  /** The entry is a source (or wildcard match) itself, not something found below one: ADD unpacks only these. */
  match?: boolean;
  /** The source's times when the plan saw it (spares staging a second lstat); absent for generated entries. */
  atime?: Date;
  mtime?: Date;
}

export interface CopyPlanOptions {
  /** Root of the source tree on the host. */
  root: string;
  /** Hides context paths (.dockerignore, COPY --exclude); absent for stage sources. */
  ignore?: IgnoreMatcher;
  sources: readonly string[];
  /** Absolute destination (already resolved against WORKDIR), keeping a trailing `/`. */
  dest: string;
  /** Whether `dest` is an existing directory in the image, which makes it a directory destination. */
  destIsDir: boolean;
  /** Whether `dest` exists in the image: a directory source then keeps the existing directory's metadata. */
  destExists: boolean;
  /** Names the instruction in errors (`Dockerfile:12`). */
  subject: string;
  /** The instruction has other sources too (heredocs, URLs): a file source then goes into `dest/`. */
  toDir?: boolean;
  /** COPY --parents: keep each match's path (below a `/./` pivot, if any) under dest. */
  parents?: boolean;
}

const GLOB_RE = /[*?[]/;

function globToRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i] as string;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${segment
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Cleans a source path to a context-relative one; `..` cannot leave the root (BuildKit clamps it). */
function relativeSource(source: string): string {
  const cleaned = posix.normalize(`/${source}`).slice(1);
  return cleaned.replace(/\/$/, '');
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Expands one source (with wildcards) to the context-relative paths it names, skipping ignored ones. */
async function expandSource(o: CopyPlanOptions, source: string): Promise<string[]> {
  const rel = relativeSource(source);
  if (!GLOB_RE.test(rel)) {
    if (rel !== '' && o.ignore?.matches(rel)) return [];
    return (await exists(join(o.root, rel))) ? [rel] : [];
  }
  let found = [''];
  for (const segment of rel.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      if (!GLOB_RE.test(segment)) {
        const p = base === '' ? segment : `${base}/${segment}`;
        if (await exists(join(o.root, p))) next.push(p);
        continue;
      }
      const re = globToRegExp(segment);
      const names = await readdir(join(o.root, base)).catch(() => [] as string[]);
      for (const name of names.sort()) if (re.test(name)) next.push(base === '' ? name : `${base}/${name}`);
    }
    found = next;
  }
  return found.filter((p) => !o.ignore?.matches(p));
}

function modeType(mode: number): EntryType | undefined {
  const kind = mode & 0o170000;
  if (kind === 0o100000) return 'file';
  if (kind === 0o040000) return 'dir';
  if (kind === 0o120000) return 'symlink';
  return undefined;
}

/** Adds `rel` (and, for a directory, everything below it that is not ignored) landing at `dest`. */
async function walk(o: CopyPlanOptions, rel: string, dest: string, out: CopyEntry[]): Promise<void> {
  const source = join(o.root, rel);
  const s = await lstat(source);
  const type = modeType(s.mode);
  if (!type) return;
  out.push({ source, dest, type, ...statFields(s) });
  if (type !== 'dir') return;
  for (const name of (await readdir(source)).sort()) {
    const child = rel === '' ? name : `${rel}/${name}`;
    if (!o.ignore?.matches(child)) {
      await walk(o, child, posix.join(dest, name), out);
      continue;
    }
    // An ignored directory may still hold `!` exceptions: keep it only for the entries they bring back.
    if (!o.ignore.hasExceptions || !(await lstat(join(o.root, child))).isDirectory()) continue;
    const inner: CopyEntry[] = [];
    await walk(o, child, posix.join(dest, name), inner);
    if (inner.length > 1) out.push(...inner);
  }
}

function statFields(s: Stats): Pick<CopyEntry, 'mode' | 'uid' | 'gid' | 'atime' | 'mtime'> {
  return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, atime: s.atime, mtime: s.mtime };
}

function notFound(o: CopyPlanOptions, source: string): GantryError {
  return new GantryError('NOT_FOUND', `source ${JSON.stringify(source)} not found in the build context`, {
    subject: o.subject,
  });
}

/**
 * COPY --parents (BuildKit): each match keeps its path relative to the source's `/./` pivot (the context root
 * when there is none) under dest, which is always a directory; the directories on the way are copied with
 * their own metadata.
 */
async function planParents(o: CopyPlanOptions): Promise<CopyEntry[]> {
  const dest = posix.normalize(o.dest);
  const out: CopyEntry[] = [];
  for (const source of o.sources) {
    const pivot = source.indexOf('/./');
    const base = pivot < 0 ? '' : relativeSource(source.slice(0, pivot));
    const baseDepth = base === '' ? 0 : base.split('/').length;
    const pattern = pivot < 0 ? source : source.slice(pivot + 3);
    const whole = relativeSource(base === '' ? pattern : `${base}/${pattern}`);
    const matches = await expandSource(o, whole);
    if (matches.length === 0 && !GLOB_RE.test(source)) throw notFound(o, source);
    for (const rel of matches) {
      const segments = rel === '' ? [] : rel.split('/');
      const kept = segments.slice(baseDepth);
      for (let i = 1; i < kept.length; i++) {
        const dir = [...segments.slice(0, baseDepth), ...kept.slice(0, i)].join('/');
        const s = await lstat(join(o.root, dir));
        out.push({
          source: join(o.root, dir),
          dest: posix.join(dest, ...kept.slice(0, i)),
          type: 'dir',
          ...statFields(s),
        });
      }
      const entries: CopyEntry[] = [];
      await walk(o, rel, posix.join(dest, ...kept), entries);
      if (entries[0]) entries[0].match = true;
      out.push(...(kept.length === 0 && (o.destExists || dest === '/') ? entries.slice(1) : entries));
    }
  }
  // Two matches may share parents (or one may contain another): the first entry for a path wins.
  const seen = new Set<string>();
  return out.filter((e) => !seen.has(e.dest) && seen.add(e.dest));
}

/** Every entry the instruction copies, parents before children, in a stable order. */
export async function planCopy(o: CopyPlanOptions): Promise<CopyEntry[]> {
  if (o.parents) return planParents(o);
  const wildcard = o.sources.some((s) => GLOB_RE.test(s));
  const toDir = o.dest.endsWith('/') || o.sources.length > 1 || wildcard || o.destIsDir || Boolean(o.toDir);
  const dest = posix.normalize(o.dest);
  const out: CopyEntry[] = [];
  for (const source of o.sources) {
    const matches = await expandSource(o, source);
    if (matches.length === 0 && !GLOB_RE.test(source)) throw notFound(o, source);
    for (const rel of matches) {
      const s = await lstat(join(o.root, rel));
      if (s.isDirectory()) {
        // A directory source copies its contents: the directory itself maps onto dest, whose metadata it
        // gives only when dest is new.
        const entries: CopyEntry[] = [];
        await walk(o, rel, dest, entries);
        out.push(...(o.destExists || dest === '/' ? entries.slice(1) : entries));
      } else {
        const target = toDir ? posix.join(dest, posix.basename(rel)) : dest;
        const at = out.length;
        await walk(o, rel, target, out);
        if (out[at]) (out[at] as CopyEntry).match = true;
      }
    }
  }
  return out;
}

/**
 * Per-destination fingerprints of the copied entries (type, mode, content or link target): the cache key
 * takes their digest, and `--explain-cache` names the paths whose fingerprint changed. Files are hashed in
 * one native call (src/native digestFiles); a destination listed twice keeps the later entry's fingerprint.
 */
export async function fingerprintEntries(entries: readonly CopyEntry[]): Promise<Record<string, string>> {
  const files = entries.filter((e) => e.type === 'file');
  const digests = await digestFiles(files.map((e) => e.source));
  const byEntry = new Map(files.map((e, i) => [e, (digests[i] as string).slice('sha256:'.length)]));
  const contents: string[] = new Array(entries.length);
  await Promise.all(
    entries.map(async (e, i) => {
      if (e.type === 'file') contents[i] = byEntry.get(e) as string;
      else if (e.type === 'symlink') contents[i] = await readlink(e.source);
      else contents[i] = '';
    }),
  );
  const out: Record<string, string> = {};
  entries.forEach((e, i) => {
    out[e.dest] = `${e.type}:${e.mode.toString(8)}:${contents[i]}`;
  });
  return out;
}
