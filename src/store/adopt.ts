/**
 * store/adopt: turns a layer step's finished changes directory into exactly what unpacking the layer's blob
 * into the store would give (native/src/layer/unpack.rs, then as a non-root user the recorded owners applied
 * in a user namespace by native/src/sandbox/owners.rs), or says it cannot. Pure checks decide entry by entry
 * (`planEntry`); `conformChanges` walks the tree, reads every xattr with one `getfattr` call and makes the few
 * changes the tar round trip would make: mtimes in whole seconds (clamped to SOURCE_DATE_EPOCH), atimes equal
 * to them, opaque markers in every xattr namespace the unpacker may write, overlayfs bookkeeping xattrs (copy-up
 * origins, impure markers, the upper root's id) removed, the root directory's 0700. Anything the round
 * trip would change in ways this does not reproduce (devices and sockets, which unpacking skips; owners the
 * store would record differently; overlay metadata other than opaque markers and whiteout devices; gantry's
 * own records) makes it give up, and the caller unpacks the blob as before.
 */
import { spawn } from 'node:child_process';
import type { BigIntStats } from 'node:fs';
import { chmod, lstat, lutimes, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { callerIdMaps } from '../sandbox/idmap.js';
import type { IdMapEntry, IdMaps } from '../sandbox/spec.js';
import { quoteAttrName, unquoteAttrName } from '../util/attr-text.js';

export interface AdoptOptions {
  /** Owners the layer was written with instead of the files' own, by path relative to the directory. */
  owners?: readonly { path: string; uid: number; gid: number }[];
  /** The user namespace the layer was written in (a rootless RUN): the files show its ids there. */
  idMaps?: IdMaps;
  /** The layer's mtimes were clamped to this (seconds since the epoch). */
  sourceDateEpoch?: number;
}

/** What the process unpacking layers is: root sets owners; anyone else records them, applied through `maps`. */
export interface Unpacker {
  uid: number;
  gid: number;
  /** The caller's container id maps when owners are applied in a user namespace; absent as root. */
  maps?: IdMaps;
}

/** One entry as found on disk, relative to the directory (`''` is the directory itself). */
export interface FoundEntry {
  rel: string;
  kind: 'file' | 'dir' | 'symlink' | 'fifo' | 'whiteout' | 'other';
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch. */
  mtimeNs: bigint;
  atimeNs: bigint;
  /** Extended attributes by name (values as given by getfattr's hex dump, `0x…`). */
  xattrs: ReadonlyMap<string, string>;
}

/** What adopting needs done to one entry, or why it cannot be adopted. */
export type EntryPlan =
  | { ok: false; reason: string }
  | {
      ok: true;
      /** New atime and mtime, in seconds. */
      seconds?: number;
      /** Opaque markers (`=y`) to add: the upper has the one its overlay mount uses, unpacking writes all. */
      addOpaque?: string[];
      /** The directory itself: give it mkdtemp's mode. */
      chmod700?: boolean;
      /** Xattrs to remove: overlayfs bookkeeping that unpacking does not write. */
      remove?: string[];
    };

const OPAQUE_Y = `0x${Buffer.from('y').toString('hex')}`;
/**
 * Overlayfs bookkeeping in an upper directory that is no layer content (create.rs leaves it out) and that
 * unpacking never writes: copy-up origins, impure directories, and the upper root's filesystem id.
 */
const BOOKKEEPING = /^(trusted|user)\.overlay\.(origin|impure|uuid)$/;

function outsideToInside(map: readonly IdMapEntry[], id: number): number | undefined {
  const e = map.find((m) => id >= m.outside && id < m.outside + m.count);
  return e === undefined ? undefined : e.inside + (id - e.outside);
}

function insideToOutside(map: readonly IdMapEntry[], id: number): number | undefined {
  const e = map.find((m) => id >= m.inside && id < m.inside + m.count);
  return e === undefined ? undefined : e.outside + (id - e.inside);
}

/**
 * The ids an entry ends up with on disk after unpacking (the tar says `tar`): root chowns; otherwise the
 * unpacker records every owner but its own ids (a symlink or fifo: only non-root ones), and the store applies
 * the records through the caller's maps.
 */
function unpackedIds(
  u: Unpacker,
  kind: FoundEntry['kind'],
  tar: { uid: number; gid: number },
): { uid: number; gid: number } | undefined {
  if (u.uid === 0) return tar;
  const own = tar.uid === u.uid && tar.gid === u.gid;
  const unrecorded = own || ((kind === 'symlink' || kind === 'fifo') && tar.uid === 0 && tar.gid === 0);
  if (unrecorded) return { uid: u.uid, gid: u.gid };
  if (!u.maps?.useHelpers) return undefined;
  const uid = insideToOutside(u.maps.uid, tar.uid);
  const gid = insideToOutside(u.maps.gid, tar.gid);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/** The mtime (whole seconds) the tar gives an entry, as create.rs writes it. */
function tarSeconds(mtimeNs: bigint, epoch: number | undefined): number {
  const floor = mtimeNs >= 0n ? mtimeNs / 1_000_000_000n : (mtimeNs - 999_999_999n) / 1_000_000_000n;
  const clamped = epoch !== undefined && floor > BigInt(epoch) ? BigInt(epoch) : floor;
  return Number(clamped < 0n ? 0n : clamped);
}

/** Decides, without I/O, how one entry becomes its unpacked form. */
export function planEntry(
  e: FoundEntry,
  o: AdoptOptions & { unpacker: Unpacker; givenOwner?: { uid: number; gid: number } },
): EntryPlan {
  const u = o.unpacker;
  const root = e.rel === '';
  if (e.kind === 'other') return { ok: false, reason: `${e.rel}: devices and sockets are not unpacked` };
  if (e.rel.split('/').some((n) => n.startsWith('.wh.'))) return { ok: false, reason: `${e.rel}: .wh. name` };
  const addOpaque: string[] = [];
  const remove: string[] = [];
  for (const [name, value] of e.xattrs) {
    if (BOOKKEEPING.test(name)) {
      remove.push(name);
      continue;
    }
    if (/^(trusted|user)\.overlay\.opaque$/.test(name) && value === OPAQUE_Y && e.kind === 'dir' && !root) {
      // Unpacking marks an opaque directory in every namespace it may write (trusted.* only as root).
      const names = u.uid === 0 ? ['trusted.overlay.opaque', 'user.overlay.opaque'] : ['user.overlay.opaque'];
      addOpaque.push(...names.filter((n) => e.xattrs.get(n) !== OPAQUE_Y && !addOpaque.includes(n)));
      continue;
    }
    if (/^(trusted|user)\.overlay\./.test(name) || name.startsWith('user.gantry.')) {
      return { ok: false, reason: `${e.rel || '/'}: xattr ${name}` };
    }
    if (root) return { ok: false, reason: `/: xattr ${name}` };
    // Without root, unpacking sets only user.* xattrs (security.capability and the like are refused).
    if (u.uid !== 0 && !name.startsWith('user.')) return { ok: false, reason: `${e.rel}: xattr ${name}` };
  }
  // Without root, xattrs (and times) can only be changed on one's own entries.
  if (u.uid !== 0 && e.uid !== u.uid && remove.length > 0) {
    return { ok: false, reason: `${e.rel || '/'}: overlay xattrs on another owner's entry` };
  }
  if (root) {
    // The unpacked root is the unpacker's own scratch directory (mkdtemp: 0700); the tar does not describe it.
    if (e.uid !== u.uid) return { ok: false, reason: '/: not owned by the unpacker' };
    return { ok: true, chmod700: true, remove };
  }
  if (e.kind === 'whiteout') {
    // Unpacking makes whiteouts as itself and leaves their times alone.
    return e.uid === u.uid ? { ok: true, remove } : { ok: false, reason: `${e.rel}: whiteout owner` };
  }
  let tar = o.givenOwner ?? { uid: e.uid, gid: e.gid };
  if (!o.givenOwner && o.idMaps) {
    const uid = outsideToInside(o.idMaps.uid, e.uid);
    const gid = outsideToInside(o.idMaps.gid, e.gid);
    if (uid === undefined || gid === undefined) return { ok: false, reason: `${e.rel}: unmapped owner` };
    tar = { uid, gid };
  }
  const ids = unpackedIds(u, e.kind, tar);
  if (!ids || ids.uid !== e.uid || ids.gid !== e.gid) {
    return { ok: false, reason: `${e.rel}: unpacking would give another owner` };
  }
  const seconds = tarSeconds(e.mtimeNs, o.sourceDateEpoch);
  const ns = BigInt(seconds) * 1_000_000_000n;
  const fixes = { remove, ...(addOpaque.length > 0 ? { addOpaque } : {}) };
  if (e.mtimeNs === ns && e.atimeNs === ns) return { ok: true, ...fixes };
  if (u.uid !== 0 && e.uid !== u.uid)
    return { ok: false, reason: `${e.rel}: times of another owner's entry` };
  return { ok: true, seconds, ...fixes };
}

function kindOf(s: BigIntStats): FoundEntry['kind'] {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isCharacterDevice() && s.rdev === 0n) return 'whiteout';
  return 'other';
}

/** Entries relative to `dir` (itself first), parents before children. */
async function walk(dir: string): Promise<{ rel: string; stats: BigIntStats }[]> {
  const out = [{ rel: '', stats: await lstat(dir, { bigint: true }) }];
  const limit = pLimit(16);
  const visit = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    const children = await Promise.all(
      names.map((name) => {
        const child = rel === '' ? name : `${rel}/${name}`;
        return limit(async () => ({ rel: child, stats: await lstat(join(dir, child), { bigint: true }) }));
      }),
    );
    out.push(...children);
    for (const c of children) if (c.stats.isDirectory()) await visit(c.rel);
  };
  await visit('');
  return out;
}

/** Every xattr under `dir` (symlinks' own, not followed), by absolute path; undefined when unreadable. */
function readXattrs(dir: string): Promise<Map<string, Map<string, string>> | undefined> {
  return new Promise((resolve) => {
    const args = ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', dir];
    const child = spawn('getfattr', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => {
      if (code !== 0) return resolve(undefined);
      const out = new Map<string, Map<string, string>>();
      let current: Map<string, string> | undefined;
      for (const line of Buffer.concat(chunks).toString('latin1').split('\n')) {
        if (line.startsWith('# file: ')) {
          current = new Map();
          out.set(unquoteAttrName(line.slice(8)), current);
        } else if (current && line.includes('=')) {
          const eq = line.indexOf('=');
          current.set(unquoteAttrName(line.slice(0, eq)), line.slice(eq + 1));
        }
      }
      resolve(out);
    });
  });
}

let unpackerOfCaller: Promise<Unpacker> | undefined;

/** This process as an unpacker: its ids and, without root, the maps the store applies owners with. */
function callerUnpacker(): Promise<Unpacker> {
  unpackerOfCaller ??= (async () => {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const maps = await callerIdMaps();
    return maps ? { uid, gid, maps } : { uid, gid };
  })();
  return unpackerOfCaller;
}

/** setfattr calls take this many paths at most, well under the argument size limit. */
const PATHS_PER_CALL = 500;

/** Runs setfattr with `args`; false when it fails. */
function setfattr(args: readonly string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('setfattr', args, { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

/**
 * Makes `dir` what unpacking its layer gives (see the header); returns why not when it cannot, having then
 * possibly changed some times already (the caller discards the directory). `scratch` is a free path for a
 * dump file.
 */
export async function conformChanges(
  dir: string,
  o: AdoptOptions & { scratch: string },
): Promise<string | undefined> {
  const unpacker = await callerUnpacker();
  if (o.idMaps && unpacker.maps && JSON.stringify(o.idMaps) !== JSON.stringify(unpacker.maps)) {
    return 'the layer was written with other id maps than the store applies';
  }
  const found = await walk(dir).catch(() => undefined);
  if (!found) return 'cannot read the directory';
  const xattrs = await readXattrs(dir);
  if (!xattrs) return 'cannot read extended attributes';
  const given = new Map((o.owners ?? []).map((w) => [w.path.replace(/^\/+|\/+$/g, ''), w]));
  const times: { path: string; seconds: number }[] = [];
  const opaque: { path: string; names: string[] }[] = [];
  let chmodRoot = false;
  const removals = new Map<string, string[]>();
  const inodes = new Set<string>();
  const unwritable: { path: string; mode: number }[] = [];
  for (const { rel, stats } of found) {
    const path = rel === '' ? dir : join(dir, rel);
    const givenOwner = given.get(rel);
    const plan = planEntry(
      {
        rel,
        kind: kindOf(stats),
        uid: Number(stats.uid),
        gid: Number(stats.gid),
        mtimeNs: stats.mtimeNs,
        atimeNs: stats.atimeNs,
        xattrs: xattrs.get(path) ?? new Map(),
      },
      { ...o, unpacker, ...(givenOwner ? { givenOwner } : {}) },
    );
    if (!plan.ok) return plan.reason;
    if (plan.seconds !== undefined) times.push({ path, seconds: plan.seconds });
    if (plan.addOpaque) opaque.push({ path, names: plan.addOpaque });
    if (plan.chmod700) chmodRoot = true;
    // Hard links share their xattrs: each inode's are removed once.
    const inode = `${stats.dev}:${stats.ino}`;
    const firstName = !inodes.has(inode);
    inodes.add(inode);
    if (firstName)
      for (const name of plan.remove ?? []) removals.set(name, [...(removals.get(name) ?? []), path]);
    // Changing a user.* xattr takes write permission, which the owner may have to lend itself for a moment.
    const mode = Number(stats.mode) & 0o7777;
    if (plan.remove?.length && unpacker.uid !== 0 && !(mode & 0o200)) unwritable.push({ path, mode });
  }
  const limit = pLimit(32);
  await Promise.all(times.map((t) => limit(() => lutimes(t.path, t.seconds, t.seconds))));
  if (opaque.length > 0) {
    const dump = opaque.flatMap((p) => [
      `# file: ${quoteAttrName(p.path)}`,
      ...p.names.map((n) => `${n}=${OPAQUE_Y}`),
      '',
    ]);
    await writeFile(o.scratch, dump.join('\n'));
    if (!(await setfattr([`--restore=${o.scratch}`]))) return 'cannot mark opaque directories';
  }
  await Promise.all(unwritable.map((w) => limit(() => chmod(w.path, w.mode | 0o200))));
  for (const [name, paths] of removals) {
    for (let i = 0; i < paths.length; i += PATHS_PER_CALL) {
      const batch = paths.slice(i, i + PATHS_PER_CALL);
      if (!(await setfattr(['-h', '-x', name, '--', ...batch]))) return `cannot remove ${name}`;
    }
  }
  await Promise.all(unwritable.map((w) => limit(() => chmod(w.path, w.mode))));
  if (chmodRoot) await chmod(dir, 0o700);
  return undefined;
}
