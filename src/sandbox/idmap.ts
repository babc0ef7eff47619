/**
 * sandbox/idmap: reads /etc/subuid and /etc/subgid and builds a container's id maps — container 0 is the
 * caller, 1..65536 its first subordinate range of at least 65536 ids (for root: the identity). Pure apart from
 * `readIdRanges`.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { IdMaps } from './spec.js';

export interface IdRange {
  start: number;
  count: number;
}

/** Ids a container gets beyond root: 65536 covers every id the common base images use (nobody = 65534). */
export const CONTAINER_IDS = 65536;

/**
 * Ranges in a subuid/subgid file that belong to the user, given by name or by numeric id (shadow-utils
 * accepts both). Malformed lines are skipped, as newuidmap does.
 */
export function parseSubordinateIds(text: string, owner: { name: string; id: number }): IdRange[] {
  const ranges: IdRange[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who !== owner.name && who !== String(owner.id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0)
      ranges.push({ start: s, count: c });
  }
  return ranges;
}

export interface CallerIds {
  uid: number;
  gid: number;
  subuid: IdRange[];
  subgid: IdRange[];
}

/**
 * The maps for a container in a user namespace. For root they are the identity over the container's ids, as
 * rootful buildah and podman see them (root may write any map, and files keep their real owners). Otherwise
 * the caller is root and a subordinate range the rest; without a large enough range on both sides the map is
 * the caller alone, which runs single-user images only; `warning` says so.
 */
export function buildIdMaps(ids: CallerIds): { maps: IdMaps; warning?: string } {
  if (ids.uid === 0 && ids.gid === 0) {
    const identity = [{ inside: 0, outside: 0, count: CONTAINER_IDS + 1 }];
    return { maps: { uid: identity, gid: identity, useHelpers: false } };
  }
  const pick = (ranges: IdRange[]) => ranges.find((r) => r.count >= CONTAINER_IDS);
  const subuid = pick(ids.subuid);
  const subgid = pick(ids.subgid);
  if (subuid && subgid) {
    return {
      maps: {
        uid: [
          { inside: 0, outside: ids.uid, count: 1 },
          { inside: 1, outside: subuid.start, count: CONTAINER_IDS },
        ],
        gid: [
          { inside: 0, outside: ids.gid, count: 1 },
          { inside: 1, outside: subgid.start, count: CONTAINER_IDS },
        ],
        useHelpers: true,
      },
    };
  }
  const missing = [subuid ? undefined : '/etc/subuid', subgid ? undefined : '/etc/subgid'].filter(Boolean);
  return {
    maps: {
      uid: [{ inside: 0, outside: ids.uid, count: 1 }],
      gid: [{ inside: 0, outside: ids.gid, count: 1 }],
      useHelpers: false,
    },
    warning:
      `no subordinate id range of ${CONTAINER_IDS} ids for this user in ${missing.join(' and ')}: ` +
      'the container maps only root, so images that use other users may fail ' +
      `(add one with: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER)`,
  };
}

/** The caller's subordinate ranges; a missing file means none. */
export async function readIdRanges(owner: { name: string; uid: number; gid: number }): Promise<CallerIds> {
  const read = (path: string) => readFile(path, 'utf8').catch(() => '');
  const [subuid, subgid] = await Promise.all([read('/etc/subuid'), read('/etc/subgid')]);
  return {
    uid: owner.uid,
    gid: owner.gid,
    subuid: parseSubordinateIds(subuid, { name: owner.name, id: owner.uid }),
    subgid: parseSubordinateIds(subgid, { name: owner.name, id: owner.uid }),
  };
}

let mapsOfCaller: Promise<IdMaps | undefined> | undefined;

/**
 * The id maps a rootless container of this process's user gets (as the builder and `gantry run` build them),
 * read once per process; undefined as root, where unpacking sets owners itself.
 */
export function callerIdMaps(): Promise<IdMaps | undefined> {
  mapsOfCaller ??= (async () => {
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    if (uid === undefined || gid === undefined || uid === 0) return undefined;
    let name = String(uid);
    try {
      name = userInfo().username;
    } catch {
      // No passwd entry: subordinate ranges may still be listed under the numeric id.
    }
    return buildIdMaps(await readIdRanges({ name, uid, gid })).maps;
  })();
  return mapsOfCaller;
}
