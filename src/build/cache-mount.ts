/**
 * build/cache-mount: the persistent directories behind `RUN --mount=type=cache`, under <store>/cache/mounts,
 * shared by every build using the store. As in BuildKit a directory is scoped by the mount's id and by what it
 * starts as (a `from=`/`source=` seed, or explicit uid/gid/mode); `sharing` decides who may use it at once:
 * shared (everyone), locked (one RUN at a time, waiting on a lock file), private (a RUN that finds it busy takes
 * another instance, created fresh). Locks are flock(1) locks held by a child process, so the kernel releases
 * them when a build dies. A directory appears by rename once complete, so concurrent builds never see (or
 * replace) a half-made one.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { CacheSharing } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { restoreOwners } from '../sandbox/helper.js';
import type { IdMapEntry, IdMaps } from '../sandbox/spec.js';
import { applyOwners } from './copy-stage.js';

/** What a new cache directory starts as. */
export type CacheSeed =
  | { kind: 'empty'; uid: number; gid: number; mode: number }
  /** `fill(dir)` moves the seed's files into the new directory `dir` (which does not exist yet). */
  | { kind: 'copy'; identity: string; fill: (dir: string) => Promise<void> };

export interface CacheMountRequest {
  /** <store>/cache/mounts */
  root: string;
  id: string;
  seed: CacheSeed;
  /** Whether uid/gid/mode were given (they then scope the directory, as in BuildKit). */
  explicitOwner: boolean;
  sharing: CacheSharing;
  /** Id maps of a rootless run: recorded owners are applied inside its user namespace. */
  idMaps?: IdMaps;
  subject: string;
}

export interface CacheMountLease {
  dir: string;
  release(): Promise<void>;
}

/** How long a locked mount waits for the RUN holding it; a RUN may legitimately take long. */
const LOCK_WAIT_SECONDS = 3600;
/** Private instances of one cache directory: more concurrent users than this is a runaway. */
const MAX_PRIVATE = 32;

/** The directory name: the id and, when it has one, the seed's identity. */
export function cacheDirName(r: Pick<CacheMountRequest, 'id' | 'seed' | 'explicitOwner'>): string {
  const scope =
    r.seed.kind === 'copy'
      ? `from:${r.seed.identity}`
      : r.explicitOwner
        ? `mkdir:${r.seed.uid}:${r.seed.gid}:${r.seed.mode.toString(8)}`
        : '';
  return createHash('sha256')
    .update(JSON.stringify([r.id, scope]))
    .digest('hex');
}

const isRoot = () => process.getuid?.() === 0;

/** The host id a container id maps to (the id itself where the map lacks it: nothing better exists). */
function toHost(map: readonly IdMapEntry[], id: number): number {
  const entry = map.find((e) => id >= e.inside && id < e.inside + e.count);
  return entry ? entry.outside + (id - entry.inside) : id;
}

type LockChild = ChildProcessByStdio<Writable, Readable, Readable>;

/** Takes the flock on `path` (waiting at most `waitSeconds`, 0: not at all); undefined when it is busy. */
async function lock(path: string, waitSeconds: number, subject: string): Promise<LockChild | undefined> {
  const wait = waitSeconds === 0 ? ['-n'] : ['-w', String(waitSeconds)];
  // The child holds the lock until its stdin closes: when gantry releases it, or dies.
  const child = spawn('flock', ['-x', ...wait, path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.startsWith('locked\n')) resolve(child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (cause) =>
      reject(new GantryError('IO', `cannot run flock (util-linux): ${cause.message}`, { subject, cause })),
    );
    child.on('close', (code) => {
      if (out.startsWith('locked\n')) return;
      if (code === 1 && err.trim() === '') resolve(undefined);
      else
        reject(
          new GantryError('IO', `flock ${path} failed: ${err.trim() || `exit status ${code}`}`, { subject }),
        );
    });
  });
}

async function unlock(child: LockChild): Promise<void> {
  // Already gone (killed from outside): the kernel dropped the lock with it.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stdin.end();
  await closed;
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

/** Makes the instance directory complete in a temporary place, then renames it into place. */
async function create(dir: string, r: CacheMountRequest): Promise<void> {
  const temp = join(r.root, `.new-${randomBytes(8).toString('hex')}`);
  try {
    if (r.seed.kind === 'copy') await r.seed.fill(temp);
    else {
      await mkdir(temp);
      await chmod(temp, r.seed.mode);
      const { uid, gid } = r.seed;
      if ((uid !== 0 || gid !== 0) && r.idMaps && isRoot()) {
        // Root running a user namespace: chown to the host ids the container's ids map to.
        await chown(temp, toHost(r.idMaps.uid, uid), toHost(r.idMaps.gid, gid));
      } else if (uid !== 0 || gid !== 0) {
        await applyOwners(new Map([[temp, { uid, gid }]]), `${temp}.owners`, r.subject);
      }
    }
    // Unprivileged, owners were recorded as xattrs; they become real inside the run's user namespace.
    const recorded = r.seed.kind === 'copy' || r.seed.uid !== 0 || r.seed.gid !== 0;
    if (r.idMaps && recorded && !isRoot()) await restoreOwners({ dir: temp, idMaps: r.idMaps });
    await rename(temp, dir);
  } finally {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    await rm(`${temp}.owners`, { force: true });
  }
}

/** Creates the instance unless it exists; callers not holding its lock take it for the check. */
async function ensure(dir: string, r: CacheMountRequest, locked: boolean): Promise<void> {
  if (await exists(dir)) return;
  const held = locked ? undefined : await lock(`${dir}.lock`, LOCK_WAIT_SECONDS, r.subject);
  try {
    if (!(await exists(dir))) await create(dir, r);
  } finally {
    if (held) await unlock(held);
  }
}

/** The cache directory for one RUN, held as its sharing mode says until `release`. */
export async function acquireCacheMount(r: CacheMountRequest): Promise<CacheMountLease> {
  await mkdir(r.root, { recursive: true, mode: 0o755 });
  const base = join(r.root, cacheDirName(r));
  if (r.sharing === 'shared') {
    const dir = `${base}-0`;
    await ensure(dir, r, false);
    return { dir, release: async () => undefined };
  }
  const candidates = r.sharing === 'locked' ? 1 : MAX_PRIVATE;
  for (let n = 0; n < candidates; n++) {
    const dir = `${base}-${n}`;
    const held = await lock(`${dir}.lock`, r.sharing === 'locked' ? LOCK_WAIT_SECONDS : 0, r.subject);
    if (!held) continue;
    try {
      await ensure(dir, r, true);
    } catch (err) {
      await unlock(held);
      throw err;
    }
    return { dir, release: () => unlock(held) };
  }
  throw new GantryError(
    'INVALID_ARGUMENT',
    r.sharing === 'locked'
      ? `cache mount ${r.id}: still locked by another build after ${LOCK_WAIT_SECONDS}s`
      : `cache mount ${r.id}: all ${MAX_PRIVATE} private instances are in use`,
    { subject: r.subject },
  );
}
