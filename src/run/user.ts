/**
 * run/user: resolves an image's `User` (`name`, `uid`, `name:group`, `uid:gid`, ...) against the image's own
 * /etc/passwd and /etc/group, as runc does: a numeric uid needs no entry, a name must have one, and the
 * user's supplementary groups come from /etc/group. Pure.
 */
import { GantryError } from '../errors/index.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  groups: number[];
  /** From passwd, for HOME when the image sets none. */
  home?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID_RE = /^\d+$/;

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || !ID_RE.test(f[2] ?? '') || !ID_RE.test(f[3] ?? '')) return [];
    return [{ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]), home: f[5] as string }];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || !ID_RE.test(f[2] ?? '')) return [];
    return [
      { name: f[0] as string, gid: Number(f[2]), members: (f[3] as string).split(',').filter(Boolean) },
    ];
  });
}

/** `user` is the image's or `--user`'s value; empty means root. */
export function resolveUser(user: string, files: { passwd?: string; group?: string }): ResolvedUser {
  const passwd = parsePasswd(files.passwd ?? '');
  const groups = parseGroup(files.group ?? '');
  const [userPart = '', groupPart] = user.split(':', 2);
  const spec = userPart === '' ? '0' : userPart;
  const entry = ID_RE.test(spec)
    ? passwd.find((p) => p.uid === Number(spec))
    : passwd.find((p) => p.name === spec);
  if (!entry && !ID_RE.test(spec)) {
    throw new GantryError('INVALID_ARGUMENT', `user "${spec}" is not in the image's /etc/passwd`, {
      subject: user,
    });
  }
  const uid = entry?.uid ?? Number(spec);
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const g = ID_RE.test(groupPart) ? { gid: Number(groupPart) } : groups.find((e) => e.name === groupPart);
    if (!g) {
      throw new GantryError('INVALID_ARGUMENT', `group "${groupPart}" is not in the image's /etc/group`, {
        subject: user,
      });
    }
    gid = g.gid;
  }
  const supplementary =
    groupPart === undefined && entry
      ? groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid)
      : [];
  const resolved: ResolvedUser = { uid, gid, groups: [...new Set([gid, ...supplementary])] };
  if (entry) resolved.home = entry.home;
  return resolved;
}
