// planEntry: which changes-directory entries the store can keep as their unpacked form, and what it must fix.
import { describe, expect, it } from 'vitest';
import { type FoundEntry, planEntry, type Unpacker } from '../../src/store/adopt.js';

const SEC = 1_000_000_000n;
const root: Unpacker = { uid: 0, gid: 0 };
// A rootless caller 1000 whose container maps 0 to itself and 1..65536 to 100000..165535.
const maps = {
  uid: [
    { inside: 0, outside: 1000, count: 1 },
    { inside: 1, outside: 100000, count: 65536 },
  ],
  gid: [
    { inside: 0, outside: 1000, count: 1 },
    { inside: 1, outside: 100000, count: 65536 },
  ],
  useHelpers: true,
};
const rootless: Unpacker = { uid: 1000, gid: 1000, maps };

function entry(over: Partial<FoundEntry>): FoundEntry {
  return {
    rel: 'etc/file',
    kind: 'file',
    uid: 0,
    gid: 0,
    mtimeNs: 1_700_000_000n * SEC,
    atimeNs: 1_700_000_000n * SEC,
    xattrs: new Map(),
    ...over,
  };
}

describe('planEntry', () => {
  it('keeps an entry whose times are already whole seconds, and truncates or clamps the others', () => {
    expect(planEntry(entry({}), { unpacker: root })).toEqual({ ok: true, remove: [] });
    const subSecond = entry({ mtimeNs: 1_700_000_000n * SEC + 123n });
    expect(planEntry(subSecond, { unpacker: root })).toMatchObject({ ok: true, seconds: 1_700_000_000 });
    expect(planEntry(subSecond, { unpacker: root, sourceDateEpoch: 10 })).toMatchObject({
      ok: true,
      seconds: 10,
    });
    // The atime is set to the mtime too, as unpacking does.
    expect(planEntry(entry({ atimeNs: 5n }), { unpacker: root })).toMatchObject({ seconds: 1_700_000_000 });
  });

  it('refuses what unpacking skips or reads as a whiteout', () => {
    expect(planEntry(entry({ kind: 'other' }), { unpacker: root }).ok).toBe(false);
    expect(planEntry(entry({ rel: 'etc/.wh.passwd' }), { unpacker: root }).ok).toBe(false);
    const recorded = entry({ xattrs: new Map([['user.gantry.owner', '0x303a30']]) });
    expect(planEntry(recorded, { unpacker: root }).ok).toBe(false);
    const xattrWhiteout = entry({ xattrs: new Map([['user.overlay.whiteout', '0x79']]) });
    expect(planEntry(xattrWhiteout, { unpacker: root }).ok).toBe(false);
  });

  it('adds the opaque markers unpacking writes, and removes overlayfs bookkeeping', () => {
    const opaque = entry({ kind: 'dir', xattrs: new Map([['user.overlay.opaque', '0x79']]) });
    expect(planEntry(opaque, { unpacker: root })).toEqual({
      ok: true,
      remove: [],
      addOpaque: ['trusted.overlay.opaque'],
    });
    expect(planEntry(opaque, { unpacker: rootless })).toMatchObject({ ok: false });
    const copiedUp = entry({ uid: 1000, gid: 1000, xattrs: new Map([['user.overlay.origin', '0x']]) });
    expect(planEntry(copiedUp, { unpacker: rootless })).toEqual({
      ok: true,
      remove: ['user.overlay.origin'],
    });
    const top = entry({ rel: '', kind: 'dir', uid: 1000, xattrs: new Map([['user.overlay.uuid', '0x00']]) });
    expect(planEntry(top, { unpacker: rootless })).toEqual({
      ok: true,
      chmod700: true,
      remove: ['user.overlay.uuid'],
    });
  });

  it('keeps xattrs an unprivileged unpack could not set only as root', () => {
    const capable = entry({ xattrs: new Map([['security.capability', '0x01']]) });
    expect(planEntry(capable, { unpacker: root }).ok).toBe(true);
    expect(planEntry({ ...capable, uid: 1000, gid: 1000 }, { unpacker: rootless }).ok).toBe(false);
  });

  it("rootless: accepts owners the store's recorded-owner convention reproduces, refuses the rest", () => {
    // A rootless RUN: container root is the caller; container 33 is subordinate 100032.
    const run = { unpacker: rootless, idMaps: maps };
    expect(planEntry(entry({ uid: 1000, gid: 1000 }), run).ok).toBe(true);
    expect(planEntry(entry({ uid: 100032, gid: 100032 }), run).ok).toBe(true);
    // Its times cannot be set from outside the namespace.
    expect(planEntry(entry({ uid: 100032, gid: 100032, mtimeNs: 1n }), run).ok).toBe(false);
    // Container ids equal to the caller's own (1000, subordinate 100999) are left unrecorded by the unpack:
    // they would come out as the caller's, container root.
    expect(planEntry(entry({ uid: 100999, gid: 100999 }), run).ok).toBe(false);
    // A rootless COPY: the files are the caller's, the layer says who owns them.
    const copy = (uid: number) => ({ unpacker: rootless, givenOwner: { uid, gid: uid } });
    expect(planEntry(entry({ uid: 1000, gid: 1000 }), copy(0)).ok).toBe(true);
    expect(planEntry(entry({ uid: 1000, gid: 1000 }), copy(33)).ok).toBe(false);
    // Without subordinate ids the store keeps owner records on the files: nothing is adopted.
    const single = { uid: 1000, gid: 1000, maps: { ...maps, useHelpers: false } };
    expect(
      planEntry(entry({ uid: 1000, gid: 1000 }), { unpacker: single, givenOwner: { uid: 0, gid: 0 } }).ok,
    ).toBe(false);
  });
});
