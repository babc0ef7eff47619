/**
 * build/copy-stage: writes the entries a COPY/ADD plan lists into an empty "changes" directory laid out like
 * the image root, ready for createLayer: modes (after --chmod), mtimes and owners (--chown, else 0:0 for
 * context files or the source's owner for stage files). Missing parent directories are created like BuildKit
 * does (0755, owned by the --chown owner or root) unless the image already has them, whose mode is then kept. Owners are set with lchown as
 * root; otherwise recorded for createLayer (build/upper-owners).
 */
import { spawn } from 'node:child_process';
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  readlink,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join, posix } from 'node:path';
import pLimit from 'p-limit';
import { applyChmod, type ChmodSpec } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { quoteAttrName } from '../util/attr-text.js';
import type { CopyEntry } from './copy-plan.js';
import { recordedOwners } from './lower.js';
import { recordOwners } from './upper-owners.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface StageCopyOptions {
  entries: readonly CopyEntry[];
  /** Empty directory that becomes the layer's content. */
  changes: string;
  chmod?: ChmodSpec;
  /** Owner for every entry; absent keeps `sourceOwner`'s answer. */
  owner?: Owner;
  /** The owner of a source entry when no --chown is given. */
  sourceOwner: (entry: CopyEntry) => Owner;
  /** Mode bits and owner of a directory that already exists in the image, kept for parents the copy writes. */
  existingDir: (path: string) => Promise<(Owner & { mode: number }) | undefined>;
  subject: string;
}

const isRoot = () => process.getuid?.() === 0;

export interface ParentOptions {
  changes: string;
  /** Owner of new parents (the --chown owner); root when absent. */
  owner?: Owner;
  existingDir: StageCopyOptions['existingDir'];
  /** Receives each created parent's owner. */
  owners: Map<string, Owner>;
  /** Host paths known to exist in the changes directory: spares an lstat of every parent for every entry. */
  known?: Set<string>;
}

/**
 * Creates the missing parents of `dest` (an image path) in the changes directory: the image's own mode and
 * owner where it has the directory, else 0755 and the --chown owner (as BuildKit's and Buildah's copiers).
 */
export async function makeParents(o: ParentOptions, dest: string): Promise<void> {
  const parts = posix.dirname(dest).split('/').filter(Boolean);
  let current = '';
  for (const part of parts) {
    current = `${current}/${part}`;
    const host = join(o.changes, current);
    if (o.known?.has(host)) continue;
    if (await lstat(host).catch(() => undefined)) {
      o.known?.add(host);
      continue;
    }
    const existing = await o.existingDir(current);
    const mode = existing?.mode ?? 0o755;
    await mkdir(host, { mode });
    await chmodExact(host, mode);
    o.known?.add(host);
    o.owners.set(host, existing ? { uid: existing.uid, gid: existing.gid } : (o.owner ?? { uid: 0, gid: 0 }));
  }
}

/** Files and symlinks written at once: each is a few small file operations, which overlap well. */
const WRITE_CONCURRENCY = 32;

/** The source's times: the plan's lstat, or (entries made outside a plan) a fresh one. */
async function sourceTimes(e: CopyEntry): Promise<{ atime: Date; mtime: Date }> {
  if (e.atime && e.mtime) return { atime: e.atime, mtime: e.mtime };
  return lstat(e.source);
}

/**
 * Stages every entry; returns how many were written. Owners go into `owners` when given, else are applied.
 * Parents and directories are made first, in plan order; then files and symlinks are written
 * WRITE_CONCURRENCY at a time (one at a time, in order, when a destination is listed twice, so the later
 * entry wins as it always did); directory times go last, as writing children changes them.
 */
export async function stageCopy(o: StageCopyOptions & { owners?: Map<string, Owner> }): Promise<number> {
  const owners = o.owners ?? new Map<string, Owner>();
  const parents: ParentOptions = {
    changes: o.changes,
    ...(o.owner ? { owner: o.owner } : {}),
    existingDir: o.existingDir,
    owners,
    known: new Set<string>(),
  };
  // Sources whose owner is the file's own: unpacked without root, a stage's files stand in the caller's ids
  // for the owners the unpack recorded (build/lower).
  const ownIds = (e: CopyEntry) => o.sourceOwner(e).uid === e.uid && o.sourceOwner(e).gid === e.gid;
  const recorded = o.owner ? new Map<string, Owner>() : await recordedOwners(o.entries.filter(ownIds));
  const modeOf = (e: CopyEntry) => (o.chmod ? applyChmod(o.chmod, e.mode, e.type === 'dir') : e.mode);
  const write = async (e: CopyEntry) => {
    const host = join(o.changes, e.dest);
    if (e.type === 'dir') {
      await mkdir(host, { recursive: true });
      await chmodExact(host, modeOf(e));
    } else if (e.type === 'symlink') {
      await symlink(await readlink(e.source), host);
    } else {
      await copyFile(e.source, host);
      await chmodExact(host, modeOf(e));
    }
    owners.set(host, o.owner ?? recorded.get(e.source) ?? o.sourceOwner(e));
    if (e.type !== 'dir') {
      const t = await sourceTimes(e);
      await lutimes(host, t.atime, t.mtime);
    }
  };
  const dests = new Set(o.entries.map((e) => e.dest));
  const deferred: CopyEntry[] = [];
  if (dests.size < o.entries.length) {
    for (const e of o.entries) {
      await makeParents(parents, e.dest);
      await write(e);
    }
  } else {
    for (const e of o.entries) {
      await makeParents(parents, e.dest);
      // Later entries' parent checks treat this path as present, as they did when it was written in order.
      parents.known?.add(join(o.changes, e.dest));
      if (e.type === 'dir') await write(e);
      else deferred.push(e);
    }
  }
  const limit = pLimit(WRITE_CONCURRENCY);
  await Promise.all(deferred.map((e) => limit(() => write(e))));
  // Setting a directory's times changes no other directory's, so these need no order; a directory listed
  // twice takes the first entry's times, as when they were set last to first.
  const dirs = new Map<string, CopyEntry>();
  for (const e of o.entries) if (e.type === 'dir' && !dirs.has(e.dest)) dirs.set(e.dest, e);
  await Promise.all(
    [...dirs.values()].map((e) =>
      limit(async () => {
        const t = await sourceTimes(e);
        await lutimes(join(o.changes, e.dest), t.atime, t.mtime);
      }),
    ),
  );
  if (!o.owners) await applyOwners(owners, `${o.changes}.owners`, o.subject);
  return o.entries.length;
}

/** mkdir's mode goes through the umask; the image needs the exact bits. */
async function chmodExact(path: string, mode: number): Promise<void> {
  await chmod(path, mode);
}

/**
 * Gives each path its owner: lchown as root; else paths in a layer step's changes directory are recorded for
 * createLayer (build/upper-owners), and the rest get the `user.gantry.owner` xattr (written by one
 * `setfattr --restore` call from the dump file `dump`) that restoreOwners applies in a user namespace.
 */
export async function applyOwners(owners: Map<string, Owner>, dump: string, subject: string): Promise<void> {
  if (isRoot()) {
    // Independent paths: lchown them a few at a time rather than one after another.
    const limit = pLimit(WRITE_CONCURRENCY);
    await Promise.all([...owners].map(([path, owner]) => limit(() => lchown(path, owner.uid, owner.gid))));
    return;
  }
  // Linux refuses user.* xattrs on symlinks: their owner stays the build user's (see docs/build.md).
  const lines: string[] = [];
  for (const [path, owner] of recordOwners(owners)) {
    const s = await lstat(path);
    if (s.isSymbolicLink()) continue;
    lines.push(`# file: ${quoteAttrName(path)}`, `user.gantry.owner="${owner.uid}:${owner.gid}"`, '');
  }
  if (lines.length === 0) return;
  await writeFile(dump, lines.join('\n'));
  await new Promise<void>((resolve, reject) => {
    const child = spawn('setfattr', [`--restore=${dump}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (cause) =>
      reject(
        new GantryError('IO', `cannot run setfattr (install the attr package): ${cause.message}`, {
          subject,
        }),
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new GantryError('IO', `setfattr could not record owners: ${err.trim()}`, { subject })),
    );
  });
}
