// `gantry build` end to end through the CLI: COPY-only and multi-stage Dockerfiles checked with skopeo and umoci,
// the step cache (hits, one changed file, --explain-cache, --no-cache, prune), reproducible digests with
// --timestamp / SOURCE_DATE_EPOCH, outputs, and failures that leave nothing tagged.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, trackTempDir } from '../harness/procs.js';
import { gantry, gantryOk } from '../support/cli.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'build');

let base: string;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

interface ConfigJson {
  created: string;
  config: Record<string, unknown>;
  rootfs: { diff_ids: string[] };
  history: { created_by: string; empty_layer?: boolean }[];
}

async function inspectConfig(ref: string): Promise<ConfigJson> {
  const { stdout } = await run('skopeo', ['inspect', '--config', ref]);
  return JSON.parse(stdout);
}

/** `path mode owner size` for every entry of the image's root filesystem, unpacked by umoci. */
async function listing(layout: string): Promise<string[]> {
  const dir = await fresh('unpack');
  await run('umoci', ['unpack', '--image', layout, join(dir, 'b')]);
  const { stdout } = await run('find', [
    join(dir, 'b', 'rootfs'),
    '-mindepth',
    '1',
    '-printf',
    '%P %M %U:%G %s\n',
  ]);
  return stdout.trim().split('\n').sort();
}

function steps(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('['));
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-'));
  trackTempDir(base);
});

describe('gantry build: COPY and metadata', () => {
  it('builds the config fields and the filesystem, honouring .dockerignore, wildcards and --chmod', async () => {
    const store = await fresh('store');
    const out = join(await fresh('out'), 'layout');
    await gantryOk(
      ['build', '--timestamp', '0', '-o', `type=oci,dest=${out},name=v1`, join(FIXTURES, 'copy')],
      {
        env: { GANTRY_STORE: store },
      },
    );
    const config = await inspectConfig(`oci:${out}:v1`);
    expect(config.config).toEqual({
      User: '1000:1000',
      ExposedPorts: { '53/udp': {}, '8080/tcp': {} },
      Env: [
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'APP=/app',
        'GREETING=hi there',
      ],
      Entrypoint: ['/bin/true'],
      Cmd: ['/app/run', '--flag'],
      Volumes: { '/data': {} },
      WorkingDir: '/app',
      Labels: { 'org.example.kind': 'copy' },
      StopSignal: 'SIGTERM',
    });
    expect(config.created).toBe('1970-01-01T00:00:00Z');
    expect(config.rootfs.diff_ids).toHaveLength(3);
    const history = config.history;
    expect(history.filter((h) => !h.empty_layer).map((h) => h.created_by.split(' ')[0])).toEqual([
      'COPY',
      'COPY',
      'COPY',
    ]);
    expect(history.find((h) => h.created_by.startsWith('ENV'))?.empty_layer).toBe(true);
    expect(await listing(`${out}:v1`)).toEqual([
      'app drwxr-xr-x 0:0 4096',
      'app/a.txt -rw-r--r-- 0:0 6',
      'app/sub drwxr-xr-x 0:0 4096',
      'app/sub/b.txt -rw-r--r-- 0:0 6',
      'etc drwxr-xr-x 0:0 4096',
      'etc/top.txt -rw------- 0:0 4',
      'wild drwxr-xr-x 0:0 4096',
      'wild/a.txt -rw-r--r-- 0:0 6',
    ]);
  });

  it('gives the same digest for the same inputs with --timestamp or SOURCE_DATE_EPOCH, in fresh stores', async () => {
    const digests: string[] = [];
    for (const how of ['flag', 'env'] as const) {
      const store = await fresh('store');
      const file = join(await fresh('digest'), 'digest');
      const env =
        how === 'env' ? { GANTRY_STORE: store, SOURCE_DATE_EPOCH: '1700000000' } : { GANTRY_STORE: store };
      const args = how === 'flag' ? ['--timestamp', '1700000000'] : [];
      await gantryOk(['build', ...args, '--digestfile', file, '-t', 'repro', join(FIXTURES, 'copy')], {
        env,
      });
      digests.push(await readFile(file, 'utf8'));
    }
    expect(digests[0]).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(digests[1]).toBe(digests[0]);
  });

  it('compresses layers with zstd when asked', async () => {
    const out = join(await fresh('zstd'), 'layout');
    await gantryOk(
      ['build', '--compression', 'zstd', '-o', `type=oci,dest=${out},name=z`, join(FIXTURES, 'copy')],
      {
        env: { GANTRY_STORE: await fresh('store') },
      },
    );
    const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${out}:z`])).stdout);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar+zstd'),
    );
    // umoci 0.4 cannot read zstd layers: list the second layer with zstd and tar.
    const blob = join(out, 'blobs', 'sha256', (manifest.layers[1].digest as string).slice(7));
    const { stdout } = await run('sh', ['-c', `zstd -dc ${blob} | tar -tvf -`]);
    expect(stdout).toMatch(/-rw------- 0\/0 +4 .* etc\/top\.txt/);
  });

  it('builds only what --target needs, COPY --from with --chown, build args and --label, to oci-archive and docker-archive', async () => {
    const store = await fresh('store');
    const dir = await fresh('outs');
    const meta = join(dir, 'meta.json');
    const iid = join(dir, 'iid');
    const r = await gantryOk(
      [
        'build',
        '--build-arg',
        'GREETING=bonjour',
        '--label',
        'extra=1',
        '-o',
        `type=oci-archive,dest=${join(dir, 'img.tar')}`,
        '-o',
        `type=docker-archive,dest=${join(dir, 'docker.tar')},name=example/app:1`,
        '--iidfile',
        iid,
        '--metadata-file',
        meta,
        join(FIXTURES, 'multistage'),
      ],
      { env: { GANTRY_STORE: store } },
    );
    // The stage copying a missing file is not needed by the target, so it neither runs nor fails.
    expect(r.stderr).not.toContain('unused');
    const config = await inspectConfig(`docker-archive:${join(dir, 'docker.tar')}`);
    expect(config.config.Labels).toEqual({ greeting: 'bonjour', extra: '1' });
    expect(config.config.Env).toContain('MODE=prod');
    expect((await readFile(iid, 'utf8')).trim()).toMatch(/^sha256:/);
    const metadata = JSON.parse(await readFile(meta, 'utf8'));
    expect(metadata['containerimage.digest']).toMatch(/^sha256:/);
    const layout = join(dir, 'layout');
    await run('skopeo', ['copy', `oci-archive:${join(dir, 'img.tar')}`, `oci:${layout}:x`]);
    expect(await listing(`${layout}:x`)).toEqual([
      'srv drwxr-xr-x 33:33 4096',
      'srv/assets drwxr-xr-x 33:33 4096',
      'srv/assets/readme.txt -rw-r--r-- 33:33 13',
      'srv/main.txt -rw-r--r-- 0:0 13',
      'usr drwxr-xr-x 0:0 4096',
      'usr/local drwxr-xr-x 0:0 4096',
      'usr/local/bin drwxr-xr-x 0:0 4096',
      'usr/local/bin/tool -rwxr-xr-x 0:0 13',
    ]);
    // --target picks an earlier stage.
    const target = join(dir, 'assets');
    await gantryOk(
      ['build', '--target', 'assets', '-o', `type=oci,dest=${target},name=a`, join(FIXTURES, 'multistage')],
      {
        env: { GANTRY_STORE: store },
      },
    );
    expect(await listing(`${target}:a`)).toEqual([
      'assets drwxr-xr-x 0:0 4096',
      'assets/readme.txt -rw-r--r-- 0:0 13',
    ]);
  });
});

describe('gantry build: the step cache', () => {
  it('rebuilds from the step whose copied file changed and nothing before it, and says why', async () => {
    const store = await fresh('store');
    const context = await fresh('ctx');
    await cp(join(FIXTURES, 'copy'), context, { recursive: true });
    const env = { GANTRY_STORE: store };
    const first = await gantryOk(['build', '--explain-cache', context], { env });
    expect(steps(first.stderr).filter((l) => l.includes('(miss'))).toHaveLength(3);
    const second = await gantryOk(['build', '--explain-cache', context], { env });
    expect(steps(second.stderr).filter((l) => l.includes('CACHED'))).toHaveLength(3);
    // An ignored file changing is invisible to the cache.
    await writeFile(join(context, 'src', 'ignored.log'), 'changed\n');
    const ignored = await gantryOk(['build', '--explain-cache', context], { env });
    expect(steps(ignored.stderr).filter((l) => l.includes('CACHED'))).toHaveLength(3);
    await writeFile(join(context, 'top.txt'), 'changed\n');
    const third = await gantryOk(['build', '--explain-cache', context], { env });
    const copies = steps(third.stderr).filter((l) => l.includes(' COPY '));
    expect(copies[0]).toContain('CACHED COPY src/ ./');
    expect(copies[1]).toContain('(miss: files changed: /etc/top.txt)');
    expect(copies[2]).toContain('(miss: no cached step follows the parent');
    const noCache = await gantryOk(['build', '--explain-cache', '--no-cache', context], { env });
    expect(steps(noCache.stderr).filter((l) => l.includes('(miss: --no-cache)'))).toHaveLength(3);
  });

  it('shares one store between concurrent builds', async () => {
    const store = await fresh('store');
    const dir = await fresh('concurrent');
    const builds = [1, 2, 3].map((n) =>
      gantryOk(
        [
          'build',
          '--timestamp',
          '0',
          '--digestfile',
          join(dir, `d${n}`),
          '-t',
          `c${n}`,
          join(FIXTURES, 'copy'),
        ],
        {
          env: { GANTRY_STORE: store },
        },
      ),
    );
    await Promise.all(builds);
    const digests = await Promise.all([1, 2, 3].map((n) => readFile(join(dir, `d${n}`), 'utf8')));
    expect(new Set(digests).size).toBe(1);
    expect(await readdir(join(store, 'cache', 'records'))).toHaveLength(3);
    expect(await readdir(join(store, 'cache', 'tmp'))).toEqual([]);
  });

  it('prunes to a size bound and with --all', async () => {
    const store = await fresh('store');
    const env = { GANTRY_STORE: store };
    await gantryOk(['build', join(FIXTURES, 'copy')], { env });
    const records = () => readdir(join(store, 'cache', 'records'));
    expect(await records()).toHaveLength(3);
    await gantryOk(['cache', 'prune', '--max-size', '100000000'], { env });
    expect(await records()).toHaveLength(3);
    const all = await gantryOk(['cache', 'prune', '--all'], { env });
    expect(all.stdout).toMatch(/removed 3 steps and [1-9]\d* blobs/);
    expect(await records()).toHaveLength(0);
    const again = await gantryOk(['build', '--explain-cache', join(FIXTURES, 'copy')], { env });
    expect(steps(again.stderr).filter((l) => l.includes('CACHED'))).toHaveLength(0);
  });
});

describe('gantry build: failures', () => {
  it('fails with the Dockerfile location and tags or writes nothing', async () => {
    const store = await fresh('store');
    const context = await fresh('ctx');
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY present.txt /\nCOPY missing.txt /\n');
    await writeFile(join(context, 'present.txt'), 'x');
    const out = join(context, 'out');
    const r = await gantry(['build', '-t', 'never', '-o', `type=oci,dest=${out}`, context], {
      env: { GANTRY_STORE: store },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:3: .*missing\.txt.* not found/);
    await expect(readdir(out)).rejects.toThrow();
    const index = JSON.parse(
      await readFile(join(store, 'images', 'index.json'), 'utf8').catch(() => '{"manifests":[]}'),
    );
    expect(index.manifests).toEqual([]);
    await rm(context, { recursive: true });
  });
});
