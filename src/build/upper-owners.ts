/**
 * build/upper-owners: who owns each entry of a step's changes directory in the layer, when the building user
 * cannot simply lchown (not root). Steps say it here while they fill the directory; the layer step takes it
 * when it makes the layer:
 * - COPY/ADD record owners per path (`recordOwners`, through copy-stage's applyOwners); createLayer writes
 *   them, symlinks included (the `user.gantry.owner` xattr cannot go on a symlink).
 * - A rootless RUN's upper directory holds files owned by the caller (container root) and its subordinate ids
 *   (everyone else), some unreadable to the caller: `mapUpperOwners` says to make its layer inside a user
 *   namespace with the container's id maps, where each file shows the container's ids and all are readable.
 */
import { sep } from 'node:path';
import type { LayerOwner, LayerUserNamespace } from '../layer/index.js';
import type { IdMaps } from '../sandbox/spec.js';
import type { Owner } from './copy-stage.js';

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
 * Marks `upper`, which a rootless RUN (`subject`) wrote, to be made into a layer inside a user namespace with
 * `maps`; `specFile` is a scratch path beside it for the helper's spec. Nothing is read yet: async only so the
 * call site awaits it like the other owner steps.
 */
export async function mapUpperOwners(
  upper: string,
  maps: IdMaps,
  specFile: string,
  subject: string,
): Promise<void> {
  namespaced.set(upper, { userNamespace: { idMaps: maps, specFile }, subject });
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
