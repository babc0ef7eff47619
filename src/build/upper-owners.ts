/**
 * build/upper-owners: after a rootless RUN, files in the upperdir are owned by host ids (the caller for the
 * container's root, subordinate ids for the others). This maps them back through the user namespace's id maps
 * to the ids the container saw and records those for createLayer, so layers hold container ids.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { IdMapEntry, IdMaps } from '../sandbox/spec.js';
import { applyOwners, type Owner } from './copy-stage.js';

function inside(map: readonly IdMapEntry[], id: number): number | undefined {
  const entry = map.find((e) => id >= e.outside && id < e.outside + e.count);
  return entry === undefined ? undefined : entry.inside + (id - entry.outside);
}

/** Records container-side owners for every entry of `upper` whose host owner differs from it. */
export async function mapUpperOwners(
  upper: string,
  maps: IdMaps,
  dump: string,
  subject: string,
): Promise<void> {
  const owners = new Map<string, Owner>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const s = await lstat(path);
      const uid = inside(maps.uid, s.uid) ?? s.uid;
      const gid = inside(maps.gid, s.gid) ?? s.gid;
      if (uid !== s.uid || gid !== s.gid) owners.set(path, { uid, gid });
      if (s.isDirectory()) await walk(path);
    }
  };
  await walk(upper);
  await applyOwners(owners, dump, subject);
}
