// Pure `gantry run` logic: the image's User against its /etc/passwd and /etc/group, Entrypoint/Cmd/Env/
// WorkingDir with -e/-w overrides, and -v parsing, with Docker's semantics.
import { describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { parseVolume, planProcess } from '../../src/run/config.js';
import { resolveUser } from '../../src/run/user.js';
import { thrown } from '../support/thrown.js';

const passwd =
  'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\nnobody:x:65534:65534::/:/bin/false\n';
const group = 'root:x:0:\napp:x:1000:\nwheel:x:10:app,other\ndocker:x:999:app\nstaff:x:50:\n';

describe('resolveUser', () => {
  it.each([
    ['empty is root', '', { uid: 0, gid: 0, groups: [0], home: '/root' }],
    [
      'a name gets its gid, home and supplementary groups',
      'app',
      { uid: 1000, gid: 1000, groups: [1000, 10, 999], home: '/home/app' },
    ],
    ['a numeric uid with an entry', '65534', { uid: 65534, gid: 65534, groups: [65534], home: '/' }],
    ['a numeric uid without an entry gets gid 0', '4242', { uid: 4242, gid: 0, groups: [0] }],
    [
      'name:group by name, no supplementary groups',
      'app:staff',
      { uid: 1000, gid: 50, groups: [50], home: '/home/app' },
    ],
    ['uid:gid numbers need no entries', '4242:4343', { uid: 4242, gid: 4343, groups: [4343] }],
  ])('%s', (_label, user, expected) => {
    expect(resolveUser(user, { passwd, group })).toEqual(expected);
  });

  it.each([
    ['an unknown name', 'ghost'],
    ['an unknown group', 'app:ghosts'],
  ])('refuses %s', (_label, user) => {
    expect(
      isGantryError(
        thrown(() => resolveUser(user, { passwd, group })),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });

  it('works without /etc/passwd for numeric users', () => {
    expect(resolveUser('7:8', {})).toEqual({ uid: 7, gid: 8, groups: [8] });
  });
});

describe('planProcess', () => {
  const config = {
    Env: ['PATH=/app/bin:/bin', 'MODE=image'],
    Entrypoint: ['/entry'],
    Cmd: ['serve'],
    WorkingDir: '/app',
  };

  it('uses Entrypoint + Cmd, the image env with defaults, and WorkingDir', () => {
    expect(planProcess(config, {}, '/home/app')).toEqual({
      args: ['/entry', 'serve'],
      env: ['PATH=/app/bin:/bin', 'HOME=/home/app', 'MODE=image'],
      cwd: '/app',
    });
  });

  it('a command replaces Cmd only; -e overrides and passes host values; -w wins', () => {
    const plan = planProcess(config, {
      command: ['sh', '-c', 'x'],
      env: ['MODE=flag', 'FROM_HOST', 'UNSET_ON_HOST', 'EMPTY='],
      workdir: '/tmp/../srv',
      hostEnv: { FROM_HOST: 'yes' },
    });
    expect(plan.args).toEqual(['/entry', 'sh', '-c', 'x']);
    expect(plan.env).toEqual(['PATH=/app/bin:/bin', 'HOME=/', 'MODE=flag', 'FROM_HOST=yes', 'EMPTY=']);
    expect(plan.cwd).toBe('/srv');
  });

  it.each([
    ['no command at all', {}, {}],
    ['a relative working directory', { Cmd: ['x'] }, { workdir: 'rel' }],
    ['an -e without a key', { Cmd: ['x'] }, { env: ['=v'] }],
  ])('refuses %s', (_label, cfg, overrides) => {
    expect(
      isGantryError(
        thrown(() => planProcess(cfg, overrides)),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });
});

describe('parseVolume', () => {
  const abs = (p: string) => `/host/${p}`;
  it.each([
    ['data:/data', { source: '/host/data', destination: '/data', readonly: false }],
    ['data:/data/../d:ro', { source: '/host/data', destination: '/d', readonly: true }],
    ['data:/data:rw', { source: '/host/data', destination: '/data', readonly: false }],
  ])('%s', (text, expected) => {
    expect(parseVolume(text, abs)).toEqual(expected);
  });

  it.each(['data', 'data:rel', ':/x', 'a:/b:rx', 'a:/b:ro:x'])('refuses %s', (text) => {
    expect(
      isGantryError(
        thrown(() => parseVolume(text, abs)),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });
});
