// `gantry build --cache-from` fetches cached layers lazily, against a real docker-registry: on a fresh store a
// fully cached rebuild fetches only the layers its output holds (not the layers of a build stage that only
// feeds a cached COPY --from), and a rebuild after one copied file changed fetches only the layer that step
// builds on. The outputs are the same as a build without the cache.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FixtureImage, makeImageLayout } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantryOk } from '../support/cli.js';

let base: string;
let registry: TestRegistry;
let tools: FixtureImage;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

async function imageFile(layout: string, path: string): Promise<string> {
  const dir = join(await fresh('unpack'), 'b');
  await run('umoci', ['unpack', '--image', `${layout}:v1`, dir]);
  return readFile(join(dir, 'rootfs', path), 'utf8');
}

function fetched(stderr: string): number {
  const m = /fetched (\d+) cached layers/.exec(stderr);
  if (!m) throw new Error(`no fetch count in:\n${stderr}`);
  return Number(m[1]);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-lazy-'));
  trackTempDir(base);
  registry = await startRegistry();
  tools = await makeImageLayout({ dir: join(base, 'tools'), tag: 'v1', layers: 0, busybox: true });
});

afterAll(async () => {
  await registry?.stop();
});

describe('gantry build --cache-from (lazy)', () => {
  it('fetches only the cached layers a later miss or the output needs', async () => {
    const context = await fresh('context');
    await writeFile(
      join(context, 'Dockerfile'),
      [
        `FROM oci:${tools.layoutDir}:v1 AS build`,
        'RUN echo one > /one.txt',
        'RUN cat /one.txt > /two.txt && echo two >> /two.txt',
        'FROM scratch',
        'COPY --from=build /two.txt /two.txt',
        'COPY app.txt /app.txt',
        '',
      ].join('\n'),
    );
    await writeFile(join(context, 'app.txt'), 'app v1\n');
    const cacheRef = `${registry.host}/lazy/app:buildcache`;
    const build = async (extra: string[]) => {
      const out = join(await fresh('out'), 'layout');
      const result = await gantryOk(
        [
          'build',
          '--explain-cache',
          '--timestamp',
          '0',
          ...extra,
          '-o',
          `type=oci,dest=${out},name=v1`,
          context,
        ],
        { env: { GANTRY_STORE: await fresh('store') } },
      );
      return { out, stderr: result.stderr };
    };
    const first = await build(['--cache-to', cacheRef]);

    // All four steps hit; the output holds the COPY --from and COPY layers, so only those two are fetched.
    const cached = await build(['--cache-from', cacheRef]);
    expect(cached.stderr.split('\n').filter((l) => l.includes('CACHED'))).toHaveLength(4);
    expect(fetched(cached.stderr)).toBe(2);
    expect(await imageFile(cached.out, 'two.txt')).toBe('one\ntwo\n');
    const digest = async (out: string) =>
      JSON.parse(await readFile(join(out, 'index.json'), 'utf8')).manifests[0].digest;
    expect(await digest(cached.out)).toBe(await digest(first.out));

    // The last COPY misses: it builds on (and the output holds) the COPY --from layer; the RUN layers stay remote.
    await writeFile(join(context, 'app.txt'), 'app v2\n');
    const changed = await build(['--cache-from', cacheRef]);
    expect(changed.stderr).toContain('files changed: /app.txt');
    expect(fetched(changed.stderr)).toBe(1);
    expect(await imageFile(changed.out, 'app.txt')).toBe('app v2\n');
    expect(await imageFile(changed.out, 'two.txt')).toBe('one\ntwo\n');
  });
});
