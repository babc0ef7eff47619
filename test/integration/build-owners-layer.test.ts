// The layer pieces rootless builds rely on for exact owners: createLayer's `owners` (symlinks included), a layer
// written inside a user namespace by `gantry-sandbox layer` is byte-for-byte the addon's (gzip and zstd), and
// an unpack as the unprivileged gantry-test user records a symlink's owner in its directory, where createLayer
// and `gantry-sandbox own` (which applies it as a subordinate id) read it back.
import { execFile } from 'node:child_process';
import { chown, lstat, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLayer } from '../../src/layer/index.js';
import type { IdMaps } from '../../src/sandbox/spec.js';
import { run, trackTempDir } from '../harness/procs.js';
import { writeTar } from './layer-fixtures.js';
import { installationForTestUser, testUser } from './sandbox-user.js';

const ADDON = join(import.meta.dirname, '../../native/index.js');

let dir: string;
let user: ReturnType<typeof testUser>;

beforeAll(async () => {
  user = testUser();
  dir = await mkdtemp(join(tmpdir(), 'gantry-owners-layer-'));
  trackTempDir(dir);
  await chown(dir, user.uid, user.gid);
});

/** `path uid:gid` of each tar entry, as stored. */
async function headers(blob: string): Promise<Map<string, string>> {
  const { stdout } = await run('tar', ['-tvf', blob, '--numeric-owner']);
  const out = new Map<string, string>();
  for (const line of stdout.trim().split('\n')) {
    const f = line.split(/\s+/);
    out.set((f[5] as string).replace(/\/$/, ''), (f[1] as string).replace('/', ':'));
  }
  return out;
}

/** Runs a script against the addon as gantry-test. */
function asTestUser(script: string): Promise<string> {
  const node = [process.execPath, '-e', `const n = require(${JSON.stringify(ADDON)}); ${script}`];
  return new Promise((resolve, reject) => {
    execFile('runuser', ['-u', 'gantry-test', '--', ...node], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${stderr}\n${err.message}`)) : resolve(stdout),
    );
  });
}

describe('layer owners for rootless builds', () => {
  it('writes the owners it is given, symlinks included', async () => {
    const changes = join(dir, 'given');
    await mkdir(join(changes, 'etc'), { recursive: true });
    await writeFile(join(changes, 'etc', 'app.conf'), 'x');
    await symlink('app.conf', join(changes, 'etc', 'link'));
    const output = join(dir, 'given.tar');
    await createLayer({
      changes,
      outputPath: output,
      compression: 'none',
      owners: [
        { path: '/etc/link', uid: 1000, gid: 1001 },
        { path: 'etc/app.conf', uid: 33, gid: 33 },
      ],
    });
    const h = await headers(output);
    expect(h.get('etc/link')).toBe('1000:1001');
    expect(h.get('etc/app.conf')).toBe('33:33');
    expect(h.get('etc')).toBe('0:0');
  });

  it('writes the same blob inside a user namespace as the addon does', async () => {
    // Root's own directory: in a namespace that maps only root, gantry-test's directories are closed.
    const own = await mkdtemp(join(tmpdir(), 'gantry-owners-root-'));
    trackTempDir(own);
    const changes = join(own, 'same');
    await mkdir(join(changes, 'usr', 'bin'), { recursive: true });
    for (let i = 0; i < 50; i++)
      await writeFile(join(changes, 'usr', 'bin', `tool${i}`), `#!/bin/sh\necho ${i}\n`);
    await symlink('tool1', join(changes, 'usr', 'bin', 'alias'));
    // As root, a namespace mapping root to itself sees the same owners as the addon outside it.
    const idMaps: IdMaps = {
      uid: [{ inside: 0, outside: 0, count: 1 }],
      gid: [{ inside: 0, outside: 0, count: 1 }],
      useHelpers: false,
    };
    for (const compression of ['gzip', 'zstd'] as const) {
      const options = { changes, compression, sourceDateEpoch: 1_700_000_000 };
      const plain = await createLayer({ ...options, outputPath: join(own, `plain.${compression}`) });
      const inside = await createLayer({
        ...options,
        outputPath: join(own, `inside.${compression}`),
        userNamespace: { idMaps, specFile: join(own, 'spec.json') },
      });
      expect(inside).toEqual(plain);
    }
  });

  it("records an unprivileged unpack's symlink owners in the directory; createLayer and own read them", async () => {
    const blob = join(dir, 'links.tar');
    await writeTar(blob, [
      { name: 'bin/', type: 'directory', uid: 0, gid: 0 },
      { name: 'bin/busybox', content: 'x', mode: 0o755, uid: 0, gid: 0 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox', uid: 0, gid: 0 },
      { name: 'home/', type: 'directory', uid: 0, gid: 0 },
      { name: 'home/app/', type: 'directory', uid: 1000, gid: 1000 },
      { name: 'home/app/link', type: 'symlink', linkname: '/bin/sh', uid: 1000, gid: 1000 },
    ]);
    const target = join(dir, 'unpacked');
    const again = join(dir, 'again.tar');
    const out = await asTestUser(`(async () => {
      require('node:fs').mkdirSync(${JSON.stringify(target)});
      const unpacked = await n.unpackLayer({ source: ${JSON.stringify(blob)}, target: ${JSON.stringify(target)} });
      await n.createLayer({ changes: ${JSON.stringify(target)}, outputPath: ${JSON.stringify(again)}, compression: 'none' });
      console.log(JSON.stringify(unpacked));
    })().catch((e) => { console.error(e); process.exit(1); });`);
    expect(JSON.parse(out).ownersRecorded).toBe(6);
    // Unpacked, everything is gantry-test's; the tar written from it has the recorded owners.
    expect((await lstat(join(target, 'home', 'app', 'link'))).uid).toBe(user.uid);
    const h = await headers(again);
    expect(h.get('home/app/link')).toBe('1000:1000');
    expect(h.get('home/app')).toBe('1000:1000');
    // Root's symlinks are not recorded: they keep gantry-test's ids, which stand for root in the namespace.
    expect(h.get('bin/sh')).toBe(`${user.uid}:${user.gid}`);
    // Applied in the user namespace (as gantry-test), container id 1000 is the subordinate id 1000 - 1 above.
    const idMaps: IdMaps = {
      uid: [
        { inside: 0, outside: user.uid, count: 1 },
        { inside: 1, outside: user.subuid, count: 65536 },
      ],
      gid: [
        { inside: 0, outside: user.gid, count: 1 },
        { inside: 1, outside: user.subgid, count: 65536 },
      ],
      useHelpers: true,
    };
    const spec = join(dir, 'own.json');
    await writeFile(spec, JSON.stringify({ idMaps, dir: target }));
    await run('runuser', ['-u', 'gantry-test', '--', installationForTestUser().helper, 'own', spec]);
    const link = await lstat(join(target, 'home', 'app', 'link'));
    expect([link.uid, link.gid]).toEqual([user.subuid + 999, user.subgid + 999]);
    const sh = await lstat(join(target, 'bin', 'sh'));
    expect([sh.uid, sh.gid]).toEqual([user.uid, user.gid]);
  });
});
