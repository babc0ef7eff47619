// `gantry build --build-context` through the CLI: a directory replaces a stage (whose own instructions never
// run) and feeds COPY --from with its own .dockerignore and content-keyed cache; a directory as a FROM base; a
// docker-image:// context from a real registry replacing a FROM image under its normalised name; oci-layout://
// contexts by tag and by digest. Outputs are read with skopeo and umoci; bad values fail naming the flag value.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FixtureImage, makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let base: string;
let registry: TestRegistry;
let fixture: FixtureImage;
let fixtureRef: string;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

/** Writes `files` (path → content) under a new directory. */
async function tree(name: string, files: Record<string, string>): Promise<string> {
  const dir = await fresh(name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

async function inspectConfig(ref: string): Promise<{ rootfs: { diff_ids: string[] } }> {
  const { stdout } = await run('skopeo', ['inspect', '--config', ref]);
  return JSON.parse(stdout);
}

/** Unpacks `layout:tag` with umoci and reads one file of its root filesystem (undefined when absent). */
async function readImageFile(layout: string, tag: string, path: string): Promise<string | undefined> {
  const dir = join(await fresh('unpack'), 'b');
  await run('umoci', ['unpack', '--image', `${layout}:${tag}`, dir]);
  return readFile(join(dir, 'rootfs', path), 'utf8').catch(() => undefined);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-ctx-'));
  trackTempDir(base);
  registry = await startRegistry();
  fixture = await makeImageLayout({ dir: join(base, 'fixture'), tag: 'v1', layers: 2, seed: 7 });
  fixtureRef = await pushFixture(fixture, registry, 'ctx/base:v1');
});

afterAll(async () => {
  await registry?.stop();
});

describe('gantry build --build-context', () => {
  it('replaces a stage with a directory and feeds COPY --from from another, keyed on content', async () => {
    const store = await fresh('store');
    const context = await tree('main', {
      Dockerfile: [
        'FROM scratch AS tools',
        // The replaced stage is never built: this COPY would fail.
        'COPY does-not-exist /',
        'FROM scratch',
        'COPY --from=tools /tool.txt /tool.txt',
        'COPY --from=extra /data.txt /data.txt',
        'COPY --from=extra / /all/',
        '',
      ].join('\n'),
    });
    const tools = await tree('tools', { 'tool.txt': 'tool v1\n' });
    const extra = await tree('extra', {
      'data.txt': 'data v1\n',
      'secret.txt': 'not for the image\n',
      '.dockerignore': 'secret.txt\n',
    });
    const out = join(await fresh('out'), 'layout');
    const args = [
      'build',
      '--explain-cache',
      '--build-context',
      `tools=${tools}`,
      '--build-context',
      `extra=${extra}`,
      '-o',
      `type=oci,dest=${out},name=v1`,
      context,
    ];
    const first = await gantryOk(args, { env: { GANTRY_STORE: store } });
    expect(first.stderr).not.toContain('does-not-exist');
    expect(await readImageFile(out, 'v1', 'tool.txt')).toBe('tool v1\n');
    expect(await readImageFile(out, 'v1', 'data.txt')).toBe('data v1\n');
    expect(await readImageFile(out, 'v1', 'all/data.txt')).toBe('data v1\n');
    expect(await readImageFile(out, 'v1', 'all/secret.txt')).toBeUndefined();

    await writeFile(join(extra, 'data.txt'), 'data v2\n');
    const second = await gantryOk(args, { env: { GANTRY_STORE: store } });
    const lines = second.stderr.split('\n').filter((l) => l.startsWith('['));
    expect(lines.find((l) => l.includes('/tool.txt'))).toContain('CACHED');
    expect(lines.find((l) => l.includes('/data.txt /data.txt'))).toContain('files changed: /data.txt');
    expect(await readImageFile(out, 'v1', 'data.txt')).toBe('data v2\n');
  });

  it('starts a stage FROM a directory context', async () => {
    const store = await fresh('store');
    const context = await tree('main', {
      Dockerfile: 'FROM rootfs\nCOPY app.txt /app/app.txt\n',
      'app.txt': 'app\n',
    });
    const rootfs = await tree('rootfs', { 'etc/os-release': 'ID=test\n' });
    const out = join(await fresh('out'), 'layout');
    await gantryOk(
      ['build', '--build-context', `rootfs=${rootfs}`, '-o', `type=oci,dest=${out},name=v1`, context],
      { env: { GANTRY_STORE: store } },
    );
    expect(await readImageFile(out, 'v1', 'etc/os-release')).toBe('ID=test\n');
    expect(await readImageFile(out, 'v1', 'app/app.txt')).toBe('app\n');
    expect((await inspectConfig(`oci:${out}:v1`)).rootfs.diff_ids).toHaveLength(2);
  });

  it('replaces a FROM image by its normalised name with a docker-image:// context from a registry', async () => {
    const store = await fresh('store');
    const context = await tree('main', {
      Dockerfile: 'FROM docker.io/library/alpine:latest\nCOPY app.txt /app.txt\n',
      'app.txt': 'app\n',
    });
    const out = join(await fresh('out'), 'layout');
    await gantryOk(
      [
        'build',
        '--build-context',
        `alpine=docker-image://${fixtureRef}`,
        '-o',
        `type=oci,dest=${out},name=v1`,
        context,
      ],
      { env: { GANTRY_STORE: store } },
    );
    const config = await inspectConfig(`oci:${out}:v1`);
    const fixtureConfig = await inspectConfig(`oci:${fixture.layoutDir}:v1`);
    expect(config.rootfs.diff_ids.slice(0, 2)).toEqual(fixtureConfig.rootfs.diff_ids);
    expect(config.rootfs.diff_ids).toHaveLength(3);
  });

  it('reads oci-layout:// contexts by tag and by digest', async () => {
    const store = await fresh('store');
    const context = await tree('main', {
      Dockerfile:
        'FROM scratch\nCOPY --from=img /data/ /from-tag/\nCOPY --from=pinned /data/ /from-digest/\n',
    });
    const out = join(await fresh('out'), 'layout');
    await gantryOk(
      [
        'build',
        '--build-context',
        `img=oci-layout://${fixture.layoutDir}:v1`,
        '--build-context',
        `pinned=oci-layout://${fixture.layoutDir}@${fixture.digest}`,
        '-o',
        `type=oci,dest=${out},name=v1`,
        context,
      ],
      { env: { GANTRY_STORE: store } },
    );
    const dir = join(await fresh('unpack'), 'b');
    await run('umoci', ['unpack', '--image', `${out}:v1`, dir]);
    const { stdout } = await run('find', [join(dir, 'rootfs'), '-type', 'f', '-printf', '%P %s\n']);
    const files = stdout.trim().split('\n').sort();
    expect(files).toHaveLength(4);
    expect(files.filter((f) => f.startsWith('from-tag/'))).toHaveLength(2);
    expect(files.filter((f) => f.startsWith('from-digest/'))).toHaveLength(2);
  });

  it('mounts a directory context with RUN --mount from=', async () => {
    const tools = await makeImageLayout({ dir: join(base, 'busybox'), tag: 'v1', layers: 0, busybox: true });
    const context = await tree('main', {
      Dockerfile: `FROM oci:${tools.layoutDir}:v1\nRUN --mount=type=bind,from=extra,target=/mnt cat /mnt/data.txt > /copied.txt\n`,
    });
    const extra = await tree('extra', { 'data.txt': 'mounted\n' });
    const out = join(await fresh('out'), 'layout');
    await gantryOk(
      ['build', '--build-context', `extra=${extra}`, '-o', `type=oci,dest=${out},name=v1`, context],
      {
        env: { GANTRY_STORE: await fresh('store') },
      },
    );
    expect(await readImageFile(out, 'v1', 'copied.txt')).toBe('mounted\n');
  });

  it('fails naming the --build-context value at fault', async () => {
    const store = await fresh('store');
    const context = await tree('main', { Dockerfile: 'FROM scratch\nCOPY --from=x /a /a\n' });
    const cases: [string, string, number][] = [
      ['x', '--build-context needs NAME=VALUE', 2],
      ['x=git://example.invalid/repo', 'x=git://example.invalid/repo: --build-context supports', 2],
      ['x=oci-layout:///tmp/l@sha256:12', 'bad digest', 2],
      [
        `x=${join(base, 'missing-dir')}`,
        `x=${join(base, 'missing-dir')}: ${join(base, 'missing-dir')} is not a directory`,
        1,
      ],
      [`x=oci-layout://${fixture.layoutDir}:nope`, `no image named "nope"`, 1],
    ];
    for (const [value, message, code] of cases) {
      const result = await gantry(['build', '--build-context', value, context], {
        env: { GANTRY_STORE: store },
      });
      expect(result.stderr).toContain(message);
      expect(result.code).toBe(code);
    }
  });
});
