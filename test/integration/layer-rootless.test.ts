// unpackLayer without root (as the unprivileged gantry-test user when the suite runs as root): ownership that
// cannot be set is recorded in user.gantry.owner and counted, read-only directories still receive their
// entries and keep their modes, and createLayer reads the recorded owners back into the tar.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/procs.js';
import { writeTar } from './layer-fixtures.js';

const ADDON = join(import.meta.dirname, '../../native/index.js');
const asRoot = process.getuid?.() === 0;

/** Runs a script against the addon as an unprivileged user: gantry-test under root, else ourselves. */
function unprivileged(script: string): Promise<string> {
  const node = [process.execPath, '-e', `const n = require(${JSON.stringify(ADDON)}); ${script}`];
  const [file, ...args] = asRoot ? ['runuser', '-u', 'gantry-test', '--', ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${stderr}\n${err.message}`)) : resolve(stdout),
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-layer-rootless-'));
  if (asRoot) await chown(dir, ...(await ids()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ids(): Promise<[number, number]> {
  const { stdout } = await run('id', ['-u', 'gantry-test']);
  const gid = (await run('id', ['-g', 'gantry-test'])).stdout;
  return [Number(stdout.trim()), Number(gid.trim())];
}

describe('unpackLayer without root', () => {
  it('records foreign owners, honours read-only directories, and round-trips owners through createLayer', async () => {
    const target = join(dir, 'target');
    const blob = join(dir, 'layer.tgz');
    await writeTar(blob, [
      { name: 'etc/', type: 'directory', uid: 0, gid: 0 },
      { name: 'etc/shadow', content: 'secret', mode: 0o640, uid: 0, gid: 42 },
      { name: 'ro/', type: 'directory', mode: 0o555, uid: 0, gid: 0 },
      { name: 'ro/inner/', type: 'directory', mode: 0o500, uid: 0, gid: 0 },
      { name: 'ro/inner/file', content: 'x', mode: 0o400, uid: 1000, gid: 1000 },
    ]);
    const upper = join(dir, 'upper.tgz');
    await writeTar(upper, [
      { name: 'ro/inner/.wh.file' },
      { name: 'ro/added', content: 'y', uid: 0, gid: 0 },
    ]);
    if (asRoot) await chown(blob, ...(await ids()));
    const out = await unprivileged(`(async () => {
      require('node:fs').mkdirSync(${JSON.stringify(target)});
      const first = await n.unpackLayer({ source: ${JSON.stringify(blob)}, target: ${JSON.stringify(target)} });
      const second = await n.unpackLayer({ source: ${JSON.stringify(upper)}, target: ${JSON.stringify(target)} });
      const layer = await n.createLayer({ changes: ${JSON.stringify(target)}, outputPath: ${JSON.stringify(join(dir, 'again.tgz'))} });
      console.log(JSON.stringify({ first, second, layer }));
    })().catch((e) => { console.error(e); process.exit(1); });`);
    const { first, second } = JSON.parse(out) as Record<
      string,
      { ownersRecorded: number; skipped: unknown[] }
    >;
    expect(first!.ownersRecorded).toBe(5);
    expect(first!.skipped).toEqual([]);
    expect(second!.ownersRecorded).toBe(1);
    expect((await stat(join(target, 'ro'))).mode & 0o7777).toBe(0o555);
    expect((await stat(join(target, 'ro/inner'))).mode & 0o7777).toBe(0o500);
    const listing = (await run('tar', ['-tvzf', join(dir, 'again.tgz')])).stdout;
    expect(listing).toMatch(/^-rw-r----- 0\/42 .* etc\/shadow$/m);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 .* ro\/added$/m);
    expect(listing).toMatch(/^dr-xr-xr-x 0\/0 .* ro\/$/m);
    expect(listing).not.toContain('ro/inner/file');
  });
});
