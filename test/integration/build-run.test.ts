// `gantry build` RUN steps through the sandbox, as the unprivileged user gantry-test (scripts/setup.sh creates
// it): shell form with ENV and WORKDIR, a secret readable in RUN and absent from every layer, the config and the
// history, a cache mount that persists across builds, cache hits for RUN, and a failing RUN that fails the build
// with its location and exit status and tags nothing. Outputs are checked with skopeo and umoci.
import { chownSync, mkdirSync } from 'node:fs';
import { chmod, cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeImageLayout } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import { gantryAsTestUser, testUser } from './sandbox-user.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gantry.cjs');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'build');
const SECRET = 'tok-3f9a1c77e2b54d0e';

const gantryAs = (args: string[], env: Record<string, string>) => gantryAsTestUser(BIN, args, env);

describe('gantry build RUN (as gantry-test)', () => {
  const ids = { uid: 0, gid: 0 };
  let base: string;
  let image: string;

  function userDir(name: string): string {
    const dir = join(base, name);
    mkdirSync(dir);
    chownSync(dir, ids.uid, ids.gid);
    return dir;
  }

  beforeAll(async () => {
    const { uid, gid } = testUser();
    Object.assign(ids, { uid, gid });
    base = await mkdtemp(join(tmpdir(), 'gantry-build-run-'));
    trackTempDir(base);
    await chmod(base, 0o755);
    const layout = join(base, 'base');
    const fixture = await makeImageLayout({ dir: layout, busybox: true, layers: 0 });
    image = `oci:${layout}:${fixture.tag}`;
    await run('chmod', ['-R', 'a+rX', layout]);
  });

  async function context(): Promise<string> {
    const dir = userDir(`ctx-${Math.random().toString(36).slice(2)}`);
    await cp(join(FIXTURES, 'run'), dir, { recursive: true });
    await run('chmod', ['-R', 'a+rX', dir]);
    return dir;
  }

  it('runs shell-form RUN with ENV and WORKDIR, reads a secret it never stores, and keeps cache mounts', async () => {
    const store = userDir('store');
    const out = userDir('out');
    const ctx = await context();
    const secretFile = join(userDir('secrets'), 'token');
    await writeFile(secretFile, SECRET);
    chownSync(secretFile, ids.uid, ids.gid);
    const args = (n: number) => [
      'build',
      '--build-arg',
      `BASE=${image}`,
      '--secret',
      `id=token,src=${secretFile}`,
      '--explain-cache',
      '-o',
      `type=oci,dest=${join(out, 'layout')},name=v${n}`,
      ctx,
    ];
    const first = await gantryAs(args(1), { GANTRY_STORE: store });
    expect(first.code, first.stderr).toBe(0);
    const unpacked = join(userDir('unpack'), 'b');
    await run('umoci', ['unpack', '--image', `${join(out, 'layout')}:v1`, unpacked]);
    const rootfs = join(unpacked, 'rootfs');
    expect(await readFile(join(rootfs, 'work', 'out.txt'), 'utf8')).toBe('stamp=one\ndata-line\n');
    expect((await readFile(join(rootfs, 'work', 'secret-size'), 'utf8')).trim()).toBe(String(SECRET.length));
    expect((await readFile(join(rootfs, 'work', 'cache-runs'), 'utf8')).trim()).toBe('1');
    // Files the container's root wrote belong to root in the layer, not to the building user.
    const { stdout: owners } = await run('stat', ['-c', '%u:%g %a', join(rootfs, 'work', 'out.txt')]);
    expect(owners.trim()).toBe('0:0 644');
    // COPY as a non-root user gives createLayer the owner to write (0:0 by default).
    const { stdout: copied } = await run('stat', ['-c', '%u:%g', join(rootfs, 'work', 'data.txt')]);
    expect(copied.trim()).toBe('0:0');
    // The secret's mount point is not left in the image.
    await expect(readdir(join(rootfs, 'run', 'secrets'))).rejects.toThrow();
    // Nowhere: not in any layer blob (uncompressed), the config, the history or the cache's records.
    const { stdout: config } = await run('skopeo', ['inspect', '--config', `oci:${join(out, 'layout')}:v1`]);
    expect(config).not.toContain(SECRET);
    expect(
      JSON.parse(config).history.some((h: { created_by: string }) => h.created_by.includes('secret')),
    ).toBe(true);
    const { stdout: layers } = await run('sh', [
      '-c',
      `for f in ${join(out, 'layout')}/blobs/sha256/*; do (gzip -dc "$f" 2>/dev/null || cat "$f"); done | grep -c ${SECRET} || true`,
    ]);
    expect(layers.trim()).toBe('0');
    const { stdout: records } = await run('sh', ['-c', `grep -rl ${SECRET} ${store}/cache/records || true`]);
    expect(records.trim()).toBe('');
    // A second build hits every step; a --no-cache build sees the cache mount's earlier runs.
    const second = await gantryAs(args(2), { GANTRY_STORE: store });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr.split('\n').filter((l) => l.includes(' RUN ') && l.includes('CACHED'))).toHaveLength(
      3,
    );
    const third = await gantryAs(['build', '--no-cache', ...args(3).slice(1)], { GANTRY_STORE: store });
    expect(third.code, third.stderr).toBe(0);
    const again = join(userDir('unpack3'), 'b');
    await run('umoci', ['unpack', '--image', `${join(out, 'layout')}:v3`, again]);
    expect((await readFile(join(again, 'rootfs', 'work', 'cache-runs'), 'utf8')).trim()).toBe('2');
  });

  it('fails on a failing RUN with its location and exit status, and tags nothing', async () => {
    const store = userDir('store-fail');
    const ctx = userDir('ctx-fail');
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${image}\nRUN echo before\nRUN echo failing-step-output; exit 7\n`,
    );
    await run('chmod', ['-R', 'a+rX', ctx]);
    const r = await gantryAs(['build', '-t', 'never', ctx], { GANTRY_STORE: store });
    // INVALID_ARGUMENT (the Dockerfile is at fault) exits 2; see docs/build.md.
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Dockerfile:3: .*exit status 7 \[INVALID_ARGUMENT\]/);
    expect(r.stdout + r.stderr).toContain('failing-step-output');
    const index = JSON.parse(await readFile(join(store, 'images', 'index.json'), 'utf8'));
    expect(
      index.manifests.map(
        (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'],
      ),
    ).not.toContain('never');
  });
});
