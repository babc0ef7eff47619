// `gantry build --squash` through the CLI: the base image's layers stay as they are, every change the build
// made (COPY, a RUN that deletes a base file and writes one) becomes one layer, the flattened filesystem is the
// same as without --squash, and the history keeps every step with only the last one owning the new layer.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FixtureImage, makeImageLayout } from '../harness/fixtures.js';
import { run, trackTempDir } from '../harness/procs.js';
import { gantryOk } from '../support/cli.js';

let base: string;
let fixture: FixtureImage;

interface ConfigJson {
  rootfs: { diff_ids: string[] };
  history: { created_by?: string; empty_layer?: boolean }[];
}

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

async function inspectConfig(ref: string): Promise<ConfigJson> {
  const { stdout } = await run('skopeo', ['inspect', '--config', ref]);
  return JSON.parse(stdout);
}

/** `path type mode owner size` for the flattened root filesystem, unpacked by umoci. */
async function listing(image: string): Promise<string[]> {
  const dir = join(await fresh('unpack'), 'b');
  await run('umoci', ['unpack', '--image', image, dir]);
  const { stdout } = await run('find', [
    join(dir, 'rootfs'),
    '-mindepth',
    '1',
    '-printf',
    '%P %y %m %U:%G %s\n',
  ]);
  return stdout.trim().split('\n').sort();
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-squash-'));
  trackTempDir(base);
  fixture = await makeImageLayout({ dir: join(base, 'fixture'), tag: 'v1', layers: 1, busybox: true });
});

describe('gantry build --squash', () => {
  it('keeps the base layers and makes one layer of the build, with the same filesystem', async () => {
    const context = await fresh('context');
    await writeFile(
      join(context, 'Dockerfile'),
      [
        `FROM oci:${fixture.layoutDir}:v1`,
        'COPY a.txt /a.txt',
        'RUN rm -r /data && echo ran > /run.txt',
        'ENV X=1',
        'COPY b.txt /b.txt',
        '',
      ].join('\n'),
    );
    await writeFile(join(context, 'a.txt'), 'a\n');
    await writeFile(join(context, 'b.txt'), 'b\n');
    const store = await fresh('store');
    const out = join(await fresh('out'), 'layout');
    const buildTo = (name: string, extra: string[]) =>
      gantryOk(['build', '--timestamp', '0', ...extra, '-o', `type=oci,dest=${out},name=${name}`, context], {
        env: { GANTRY_STORE: store },
      });
    await buildTo('plain', []);
    await buildTo('squashed', ['--squash']);

    const baseConfig = await inspectConfig(`oci:${fixture.layoutDir}:v1`);
    const plain = await inspectConfig(`oci:${out}:plain`);
    const squashed = await inspectConfig(`oci:${out}:squashed`);
    expect(plain.rootfs.diff_ids).toHaveLength(5);
    expect(squashed.rootfs.diff_ids).toHaveLength(3);
    expect(squashed.rootfs.diff_ids.slice(0, 2)).toEqual(baseConfig.rootfs.diff_ids);

    const own = squashed.history.slice(baseConfig.history.length);
    expect(own.map((h) => h.created_by?.split(' ')[0])).toEqual(['COPY', 'RUN', 'ENV', 'COPY']);
    expect(own.map((h) => h.empty_layer ?? false)).toEqual([true, true, true, false]);
    expect(squashed.history.filter((h) => !h.empty_layer)).toHaveLength(squashed.rootfs.diff_ids.length);

    const files = await listing(`${out}:squashed`);
    expect(files).toEqual(await listing(`${out}:plain`));
    expect(files.some((f) => f.startsWith('data'))).toBe(false);
    expect(files.filter((f) => /^(a|b|run)\.txt /.test(f))).toHaveLength(3);
  });
});
