/**
 * build/upper-owners: who owns each entry of a step's changes directory in the layer, when the building user
 * cannot simply lchown (not root). Steps say it here while they fill the directory; the layer step takes it
 * when it makes the layer:
 * - COPY/ADD record owners per path (`recordOwners`, through copy-stage's applyOwners); createLayer writes
 *   them, symlinks included (the `user.gantry.owner` xattr cannot go on a symlink).
 * - A rootless RUN's upper directory holds files owned by the caller (container root) and its subordinate ids
 *   (everyone else), some unreadable to the caller: `mapUpperOwners` says to make its layer inside a user
 *   namespace with the container's id maps, where each file shows the container's ids and all are readable
 *   (as root, it lchowns the entries to those ids instead).
 */
import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { LayerOwner, LayerUserNamespace } from '../layer/index.js';
import type { IdMaps } from '../sandbox/spec.js';
import type { Owner } from './copy-stage.js';
import { containerId } from './lower.js';

/** Changes directories of layer steps under way (between `openChanges` and `takeOwnership`). */
const open = new Set<string>();
/** Owners recorded by host path, until the layer step of the changes directory holding them takes them. */
const recorded = new Map<string, Owner>();
/** Changes directories a rootless RUN wrote: how to make their layers, and the instruction that wrote them. */
const namespaced = new Map<string, { userNamespace: LayerUserNamespace; subject: string }>();

const within = (dir: string, path: string) =>
  path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** A layer step starts filling `changes`: owners recorded below it from now on go into its layer. */
export function openChanges(changes: string): void {
  open.add(changes);
}

/**
 * Records the layer owner of each path that lies in an open changes directory; returns the others (e.g. a
 * cache mount's directory), which the caller records on the files themselves.
 */
export function recordOwners(owners: ReadonlyMap<string, Owner>): Map<string, Owner> {
  const rest = new Map<string, Owner>();
  for (const [path, owner] of owners) {
    if ([...open].some((dir) => within(dir, path))) recorded.set(path, owner);
    else rest.set(path, owner);
  }
  return rest;
}

/**
 * Gives the layer of `upper`, which a RUN (`subject`) wrote in a user namespace with `maps`, the ids the
 * container saw. Without root: marks it to be made inside such a namespace; `specFile` is a scratch path
 * beside it for the helper's spec. As root, lchowns each entry to its container ids instead: there the
 * namespace would see ids it does not map (image files the RUN copied up keep their real owners) as nobody.
 */
export async function mapUpperOwners(
  upper: string,
  maps: IdMaps,
  specFile: string,
  subject: string,
): Promise<void> {
  if (process.getuid?.() === 0) await chownInside(upper, maps);
  else namespaced.set(upper, { userNamespace: { idMaps: maps, specFile }, subject });
}

async function chownInside(dir: string, maps: IdMaps): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const s = await lstat(path);
    const [uid, gid] = [containerId(maps.uid, s.uid), containerId(maps.gid, s.gid)];
    if (uid !== s.uid || gid !== s.gid) {
      await lchown(path, uid, gid);
      // chown clears set-id bits the container set on purpose.
      if (!s.isSymbolicLink() && s.mode & 0o6000) await chmod(path, s.mode & 0o7777);
    }
    if (s.isDirectory()) await chownInside(path, maps);
  }
}

export interface ChangesOwnership {
  /** Owners by path relative to the changes directory. */
  owners: LayerOwner[];
  /** For a rootless RUN's changes: the user namespace to make the layer in, and the RUN that wrote them. */
  namespaced?: { userNamespace: LayerUserNamespace; subject: string };
}

/** Closes `changes` and takes what was recorded for it; also called when a step failed, to forget it. */
export function takeOwnership(changes: string): ChangesOwnership {
  open.delete(changes);
  const owners: LayerOwner[] = [];
  for (const [path, owner] of recorded) {
    if (!within(changes, path)) continue;
    owners.push({ path: path.slice(changes.length) || '/', ...owner });
    recorded.delete(path);
  }
  const run = namespaced.get(changes);
  namespaced.delete(changes);
  return run ? { owners, namespaced: run } : { owners };
}
