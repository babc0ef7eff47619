// `gantry build --platform` through the CLI, against a real registry holding a two-platform base index: two
// platforms make an index whose images each start from their platform's base layers, with a RUN in a
// FROM --platform=$BUILDPLATFORM stage writing TARGETARCH; one foreign platform makes a single image for it;
// a RUN for a platform this machine cannot execute fails naming the RUN line; bad values name --platform.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binfmtInterpreter } from '../../src/build/platform.js';
import { type FixtureImage, makeImageLayout, makeIndexLayout, pushFixture } from '../harness/fixtures.js';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantry, gantryOk } from '../support/cli.js';

let base: string;
let registry: TestRegistry;
let multi: FixtureImage;
let multiRef: string;
let toolsRef: string;

interface Json {
  mediaType?: string;
  manifests?: { digest: string; platform: { os: string; architecture: string } }[];
  config?: { digest: string };
  layers?: { digest: string }[];
  architecture?: string;
  os?: string;
}

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

async function blob(layout: string, digest: string): Promise<Json> {
  return JSON.parse(await readFile(join(layout, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
}

/** One file's text from a gzipped layer blob of a layout, read with tar. */
function layerFile(layout: string, digest: string, path: string): string {
  return execFileSync('tar', ['-xzOf', join(layout, 'blobs', 'sha256', digest.slice(7)), path], {
    encoding: 'utf8',
  });
}

async function top(layout: string): Promise<Json> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Json;
  return blob(layout, index.manifests?.[0]?.digest as string);
}

const platformLayers = (i: number) => multi.layers.slice(i * 2, i * 2 + 2).map((l) => l.digest);

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-platform-'));
  trackTempDir(base);
  registry = await startRegistry();
  multi = await makeIndexLayout({
    dir: join(base, 'multi'),
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
  });
  multiRef = await pushFixture(multi, registry, 'plat/base:v1');
  const tools = await makeImageLayout({ dir: join(base, 'tools'), tag: 'v1', layers: 0, busybox: true });
  toolsRef = await pushFixture(tools, registry, 'plat/tools:v1');
});

afterAll(async () => {
  await registry?.stop();
});

describe('gantry build --platform', () => {
  it('builds an index for two platforms from a two-platform base, RUN on the build platform', async () => {
    const context = await fresh('context');
    await writeFile(
      join(context, 'Dockerfile'),
      [
        `FROM --platform=$BUILDPLATFORM ${toolsRef} AS build`,
        'ARG TARGETARCH',
        'RUN echo "$TARGETARCH" > /arch.txt',
        `FROM ${multiRef}`,
        'COPY --from=build /arch.txt /arch.txt',
        '',
      ].join('\n'),
    );
    const out = join(await fresh('out'), 'layout');
    const pushed = `${registry.host}/plat/app:v1`;
    const result = await gantryOk(
      [
        'build',
        '--platform',
        'linux/amd64,linux/arm64',
        '-o',
        `type=oci,dest=${out},name=v1`,
        '-o',
        `type=registry,name=${pushed}`,
        '--iidfile',
        join(out, '..', 'iid'),
        context,
      ],
      { env: { GANTRY_STORE: await fresh('store') } },
    );
    expect(result.stderr).toContain('[linux/arm64 stage-1]');
    const index = await top(out);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests?.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
    ]);
    for (const [i, arch] of ['amd64', 'arm64'].entries()) {
      const manifest = await blob(out, index.manifests?.[i]?.digest as string);
      const config = await blob(out, manifest.config?.digest as string);
      expect(config.architecture).toBe(arch);
      const layers = (manifest.layers ?? []).map((l) => l.digest);
      expect(layers.slice(0, 2)).toEqual(platformLayers(i));
      expect(layerFile(out, layers[2] as string, 'arch.txt')).toBe(`${arch}\n`);
    }
    const iid = await readFile(join(out, '..', 'iid'), 'utf8');
    const indexJson = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as Json;
    expect(iid).toBe(indexJson.manifests?.[0]?.digest);
    const remote = JSON.parse(
      execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${pushed}`], {
        encoding: 'utf8',
      }),
    ) as Json;
    expect(remote.manifests?.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
  });

  it('builds one foreign platform as a single image from that platform of the base', async () => {
    const context = await fresh('context');
    await writeFile(join(context, 'Dockerfile'), `FROM ${multiRef}\nCOPY a.txt /a.txt\n`);
    await writeFile(join(context, 'a.txt'), 'a\n');
    const out = join(await fresh('out'), 'layout');
    await gantryOk(['build', '--platform', 'linux/arm64', '-o', `type=oci,dest=${out},name=v1`, context], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    const manifest = await top(out);
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((manifest.layers ?? []).map((l) => l.digest).slice(0, 2)).toEqual(platformLayers(1));
    expect((await blob(out, manifest.config?.digest as string)).architecture).toBe('arm64');

    // Tagged in the store for arm64, it is used as a base as is (with a warning), as BuildKit uses a local image.
    const store = await fresh('store');
    await gantryOk(['build', '--platform', 'linux/arm64', '-t', 'app:arm', context], {
      env: { GANTRY_STORE: store },
    });
    const next = await fresh('context');
    await writeFile(join(next, 'Dockerfile'), 'FROM app:arm\n');
    const onTop = join(await fresh('out'), 'layout');
    const built = await gantryOk(['build', '-o', `type=oci,dest=${onTop},name=v1`, next], {
      env: { GANTRY_STORE: store },
    });
    expect(built.stderr).toContain('is an image for linux/arm64');
    expect(((await top(onTop)).layers ?? []).map((l) => l.digest).slice(0, 2)).toEqual(platformLayers(1));
  });

  it('fails naming the RUN line when this machine cannot execute the platform', async () => {
    const candidates = ['s390x', 'riscv64', 'ppc64le', 'mips64le', 'loong64'];
    const unregistered = [];
    for (const arch of candidates) if (!(await binfmtInterpreter(arch))) unregistered.push(arch);
    const arch = unregistered[0] as string;
    const context = await fresh('context');
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nRUN true\n');
    await writeFile(join(context, 'a.txt'), 'a\n');
    const result = await gantry(['build', '--platform', `linux/${arch}`, context], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Dockerfile:3: RUN cannot execute linux/${arch} binaries`);
    expect(result.stderr).toContain(`no binfmt_misc interpreter is registered for ${arch}`);
  });

  it('fails naming --platform for a bad value or a base without the platform', async () => {
    const context = await fresh('context');
    await writeFile(join(context, 'Dockerfile'), `FROM ${multiRef}\n`);
    const store = await fresh('store');
    const bad = await gantry(['build', '--platform', 'linux', context], { env: { GANTRY_STORE: store } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--platform: platform must be os/arch[/variant], got "linux"');
    const twice = await gantry(['build', '--platform', 'linux/arm64,linux/arm64', context], {
      env: { GANTRY_STORE: store },
    });
    expect(twice.stderr).toContain('platform linux/arm64 is given twice');
    const missing = await gantry(['build', '--platform', 'linux/s390x', context], {
      env: { GANTRY_STORE: store },
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`has no image for linux/s390x`);
  });
});
