// Pure sandbox logic: subordinate id parsing and id maps, seccomp status parsing, and the isolation choice for
// the environments gantry meets (rootless host, root in a container without user namespaces, nothing works).
import { describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { buildIdMaps, parseSubordinateIds } from '../../src/sandbox/idmap.js';
import { chooseIsolation } from '../../src/sandbox/isolation.js';
import type { EnvironmentReport } from '../../src/sandbox/probe.js';
import { parseSeccomp } from '../../src/sandbox/probe.js';
import { thrown } from '../support/thrown.js';

describe('parseSubordinateIds', () => {
  const file = 'alice:100000:65536\n1001:300000:70000\nbob:200000:65536\nalice:bad:1\n\n#x\nalice:500000:0\n';
  it.each([
    ['by name', { name: 'alice', id: 1000 }, [{ start: 100000, count: 65536 }]],
    ['by uid', { name: 'carol', id: 1001 }, [{ start: 300000, count: 70000 }]],
    ['absent', { name: 'dave', id: 1002 }, []],
  ])('%s', (_label, owner, expected) => {
    expect(parseSubordinateIds(file, owner)).toEqual(expected);
  });
});

describe('buildIdMaps', () => {
  it('maps the caller to 0 and the first large enough range to 1..65536', () => {
    const { maps, warning } = buildIdMaps({
      uid: 1001,
      gid: 1002,
      subuid: [
        { start: 5000, count: 10 },
        { start: 100000, count: 65536 },
      ],
      subgid: [{ start: 200000, count: 100000 }],
    });
    expect(warning).toBeUndefined();
    expect(maps).toEqual({
      uid: [
        { inside: 0, outside: 1001, count: 1 },
        { inside: 1, outside: 100000, count: 65536 },
      ],
      gid: [
        { inside: 0, outside: 1002, count: 1 },
        { inside: 1, outside: 200000, count: 65536 },
      ],
      useHelpers: true,
    });
  });

  it('falls back to a single-id map with a warning naming the missing file', () => {
    const { maps, warning } = buildIdMaps({
      uid: 1001,
      gid: 1001,
      subuid: [{ start: 1, count: 65536 }],
      subgid: [],
    });
    expect(maps.useHelpers).toBe(false);
    expect(maps.uid).toEqual([{ inside: 0, outside: 1001, count: 1 }]);
    expect(warning).toMatch(/\/etc\/subgid/);
    expect(warning).not.toMatch(/\/etc\/subuid and/);
  });

  it('gives root the identity over the container ids, without helpers or a warning', () => {
    const { maps, warning } = buildIdMaps({ uid: 0, gid: 0, subuid: [], subgid: [] });
    expect(warning).toBeUndefined();
    expect(maps).toEqual({
      uid: [{ inside: 0, outside: 0, count: 65537 }],
      gid: [{ inside: 0, outside: 0, count: 65537 }],
      useHelpers: false,
    });
  });
});

describe('parseSeccomp', () => {
  it.each([
    ['Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n', { mode: 2, filters: 1 }],
    ['Seccomp:\t0\n', { mode: 0, filters: undefined }],
    ['', { mode: undefined, filters: undefined }],
  ])('%j', (text, expected) => {
    expect(parseSeccomp(text)).toEqual(expected);
  });
});

const works = { namespaces: true, overlayError: null, procError: null };
const base: EnvironmentReport = {
  uid: 1000,
  gid: 1000,
  user: 'alice',
  maxUserNamespaces: 15000,
  seccomp: { mode: 0, filters: 0 },
  rootless: works,
  chroot: { namespaces: false, error: 'clone: Operation not permitted (os error 1)' },
  fuseOverlayfs: false,
  newuidmap: true,
  subuid: [],
  subgid: [],
};

describe('chooseIsolation', () => {
  const host = { network: 'host' as const };

  it('auto prefers rootless with overlay', () => {
    expect(chooseIsolation(base, 'auto', host)).toMatchObject({
      level: 'rootless',
      rootfs: 'overlay',
      warnings: [],
    });
  });

  it('auto picks chroot for root where user namespaces are forbidden, and says why', () => {
    const report = {
      ...base,
      uid: 0,
      maxUserNamespaces: 0,
      rootless: { namespaces: false, error: 'clone: No space left on device (os error 28)' },
      chroot: works,
    };
    const choice = chooseIsolation(report, 'auto', host);
    expect(choice).toMatchObject({ level: 'chroot', rootfs: 'overlay' });
    expect(choice.reason).toMatch(/max_user_namespaces is 0/);
  });

  it.each([
    ['fuse-overlayfs when overlay fails and fuse is there', true, 'fuse-overlayfs', 0],
    ['copy mode, with a warning, when neither is there', false, 'copy', 1],
  ])('%s', (_label, fuse, mode, warnings) => {
    const report = {
      ...base,
      fuseOverlayfs: fuse,
      rootless: { ...works, overlayError: 'mount overlay: EPERM' },
    };
    const choice = chooseIsolation(report, 'auto', host);
    expect(choice.rootfs).toBe(mode);
    expect(choice.warnings).toHaveLength(warnings);
  });

  it('names what is missing and how to enable it when nothing works', () => {
    const report = {
      ...base,
      seccomp: { mode: 2, filters: 1 },
      rootless: { namespaces: false, error: 'clone: Operation not permitted (os error 1)' },
    };
    const err = thrown(() => chooseIsolation(report, 'auto', host));
    expect(isGantryError(err, 'NATIVE')).toBe(true);
    expect((err as Error).message).toMatch(/rootless: cannot create user namespaces/);
    expect((err as Error).message).toMatch(/seccomp filter/);
    expect((err as Error).message).toMatch(/chroot: chroot isolation needs root/);
    expect((err as Error).message).toMatch(/--isolation none/);
  });

  it('reports a masked /proc with the fix', () => {
    const report = { ...base, rootless: { ...works, procError: 'mount proc: EPERM' } };
    expect((thrown(() => chooseIsolation(report, 'rootless', host)) as Error).message).toMatch(
      /procMount: Unmasked/,
    );
  });

  it.each([
    ['none needs root', { ...base }, 'host'],
    ['none cannot give --network none', { ...base, uid: 0 }, 'none'],
  ] as const)('%s', (_label, report, network) => {
    expect(
      isGantryError(
        thrown(() => chooseIsolation(report, 'none', { network })),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });

  it('none is only used when asked for, with a warning', () => {
    expect(chooseIsolation({ ...base, uid: 0 }, 'none', host)).toMatchObject({
      level: 'none',
      rootfs: 'copy',
    });
    expect(chooseIsolation({ ...base, uid: 0 }, 'auto', host).level).toBe('rootless');
  });
});
