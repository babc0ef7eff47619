/**
 * build/lower: an image's filesystem as the builder sees it — each layer unpacked once into the store (overlay
 * whiteouts, shared with `gantry run`; as a non-root user, owners the unpack recorded are applied in a user
 * namespace) and looked up top-down without merging, plus a flattened copy for COPY --from. Lookups never
 * follow symlinks out of a layer directory and report the ids the container sees.
 */
import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import { lstat, mkdtemp, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GantryError } from '../errors/index.js';
import { unpackLayer } from '../layer/index.js';
import { restoreOwners } from '../sandbox/helper.js';
import { callerIdMaps } from '../sandbox/idmap.js';
import type { IdMapEntry } from '../sandbox/spec.js';
import type { LayerStore } from '../store/index.js';
import { unquoteAttrName } from '../util/attr-text.js';
import type { Owner } from './copy-stage.js';

export interface BuiltLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  /** The blob on disk (store or cache). */
  path: string;
}

/** Unpacked directories of `layers`, base first, unpacking the ones the store lacks. */
export async function layerDirs(store: LayerStore, layers: readonly BuiltLayer[]): Promise<string[]> {
  return Promise.all(
    layers.map((layer) =>
      store.ensureLayer(layer.diffId, async (target) => {
        const result = await unpackLayer({
          source: layer.path,
          mediaType: layer.mediaType,
          target,
          whiteoutMode: 'overlay',
        });
        if (result.diffId !== layer.diffId) {
          throw new GantryError(
            'DIGEST_MISMATCH',
            `layer unpacks to ${result.diffId}, expected ${layer.diffId}`,
            {
              subject: layer.digest,
            },
          );
        }
        if (result.ownersRecorded > 0) await applyRecordedOwners(target);
      }),
    ),
  );
}

/**
 * An unprivileged unpack records owners it cannot set; with subordinate ids they are applied in a user
 * namespace, as `gantry run` does, so that RUN sees each file's real owner (a later `USER app` RUN may write
 * what app owns) and copy-ups keep it. Where that cannot be done (no user namespaces or newuidmap), the
 * records stay: COPY steps read them, and no rootless RUN could have run anyway.
 */
async function applyRecordedOwners(dir: string): Promise<void> {
  const idMaps = await callerIdMaps();
  if (idMaps?.useHelpers) await restoreOwners({ dir, idMaps }).catch(() => undefined);
}

/** The id inside a user namespace with `map` of the host id `id` (itself when the map does not cover it). */
export function containerId(map: readonly IdMapEntry[], id: number): number {
  const entry = map.find((e) => id >= e.outside && id < e.outside + e.count);
  return entry === undefined ? id : entry.inside + (id - entry.outside);
}

/** Gives a stat of a store file the container's ids (the caller is root, subordinate ids the rest). */
async function inContainer(s: Stats): Promise<Stats> {
  const maps = await callerIdMaps();
  if (!maps) return s;
  // The Stats object is this call's own: rewriting its ids in place keeps its methods.
  s.uid = containerId(maps.uid, s.uid);
  s.gid = containerId(maps.gid, s.gid);
  return s;
}

/**
 * The topmost layer's entry for an absolute image path, with the ids the container sees: undefined when
 * absent or whited out.
 */
export async function lookup(dirs: readonly string[], path: string): Promise<Stats | undefined> {
  for (const dir of [...dirs].reverse()) {
    const s = await lstat(join(dir, path)).catch(() => undefined);
    if (!s) continue;
    // overlayfs whiteout: a 0/0 character device hides the path in lower layers.
    if (s.isCharacterDevice() && s.rdev === 0) return undefined;
    return inContainer(s);
  }
  return undefined;
}

/** A small file's text from the image (e.g. /etc/passwd), or undefined. */
export async function readImageText(dirs: readonly string[], path: string): Promise<string | undefined> {
  const s = await lookup(dirs, path);
  if (!s?.isFile() || s.size > 4 * 1024 * 1024) return undefined;
  for (const dir of [...dirs].reverse()) {
    const here = await lstat(join(dir, path)).catch(() => undefined);
    if (here?.isFile()) return readFile(join(dir, path), 'utf8');
  }
  return undefined;
}

/** An entry of a tree unpacked by `flatten`. */
export interface FlatEntry {
  /** Host path. */
  source: string;
  type: 'file' | 'dir' | 'symlink';
}

const RECORD = 'user.gantry.owner';
/** getfattr calls take this many paths at most, well under the argument size limit. */
const PATHS_PER_CALL = 500;

/**
 * The owners a flattened tree records for `entries`. Unpacked without root, every entry is the caller's and
 * its real owner is recorded (native/src/layer/unpack.rs): a file's or directory's in its own
 * `user.gantry.owner` xattr, a symlink's in its directory's `user.gantry.owner.<name>`, where an unrecorded
 * symlink is root's. Entries the map lacks are owned as the files say. Empty as root (nothing is recorded).
 */
export async function recordedOwners(entries: readonly FlatEntry[]): Promise<Map<string, Owner>> {
  const owners = new Map<string, Owner>();
  if (process.getuid?.() === 0 || entries.length === 0) return owners;
  const holders = [...new Set(entries.map((e) => (e.type === 'symlink' ? dirname(e.source) : e.source)))];
  const records = new Map<string, string>();
  for (let i = 0; i < holders.length; i += PATHS_PER_CALL) {
    for (const [key, value] of parseDump(await getfattr(holders.slice(i, i + PATHS_PER_CALL)))) {
      records.set(key, value);
    }
  }
  for (const e of entries) {
    const key =
      e.type === 'symlink'
        ? `${dirname(e.source)}\0${RECORD}.${basename(e.source)}`
        : `${e.source}\0${RECORD}`;
    const text = records.get(key);
    const m = text === undefined ? undefined : /^(\d+):(\d+)$/.exec(text);
    if (m) owners.set(e.source, { uid: Number(m[1]), gid: Number(m[2]) });
    else if (e.type === 'symlink') owners.set(e.source, { uid: 0, gid: 0 });
  }
  return owners;
}

/** `getfattr --dump` of gantry's records on `paths` (paths without any print nothing). */
async function getfattr(paths: readonly string[]): Promise<Buffer> {
  const args = [
    '--absolute-names',
    '--no-dereference',
    '--dump',
    '--match=^user\\.gantry\\.owner',
    '--',
    ...paths,
  ];
  const { stdout, stderr, code } = await new Promise<{ stdout: Buffer; stderr: string; code: number | null }>(
    (resolve, reject) => {
      const child = spawn('getfattr', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (cause) =>
        reject(
          new GantryError('IO', `cannot run getfattr (install the attr package): ${cause.message}`, {
            cause,
          }),
        ),
      );
      child.on('close', (status) => resolve({ stdout: Buffer.concat(out), stderr: err, code: status }));
    },
  );
  if (code !== 0) {
    throw new GantryError('IO', `getfattr could not read owner records: ${stderr.trim()}`, {
      subject: paths[0],
    });
  }
  return stdout;
}

/** getfattr's dump (`# file: PATH`, then `name="value"` lines) as `PATH\0name` → value, undoing its quoting. */
function parseDump(dump: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let file: string | undefined;
  for (const line of dump.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) file = unquoteAttrName(line.slice(8));
    else if (file !== undefined && line.includes('=')) {
      const eq = line.indexOf('=');
      out.set(
        `${file}\0${unquoteAttrName(line.slice(0, eq))}`,
        unquoteAttrName(line.slice(eq + 1).replace(/^"|"$/g, '')),
      );
    }
  }
  return out;
}

/** Unpacks `layers` in order into one fresh directory under `scratchRoot` (whiteouts applied). */
export async function flatten(scratchRoot: string, layers: readonly BuiltLayer[]): Promise<string> {
  const dir = await mkdtemp(join(scratchRoot, 'flat-'));
  for (const layer of layers) {
    await unpackLayer({ source: layer.path, mediaType: layer.mediaType, target: dir, whiteoutMode: 'apply' });
  }
  return dir;
}
