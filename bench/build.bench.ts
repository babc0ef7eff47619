/**
 * `gantry build` benchmark (issue 4): gantry against `buildah bud --layers --isolation chroot` (buildah from apt,
 * rootless, overlay storage), both as the unprivileged user gantry-test, on the same machine in the same run.
 * For each case of bench/build-fixtures.ts — (a) multi-stage, (b) COPY of 2,000 files, (c) RUN writing 100 MiB,
 * (d) Debian base with a RUN touching many files — and each run, both tools get an empty store and time:
 *
 *  - cold build (base image pulled from a local registry, every step executed)
 *  - fully cached rebuild
 *  - rebuild after one source file changed
 *  - push of the built image to a fresh local registry (`gantry copy` from gantry's store, `buildah push`),
 *    and the bytes that push stored (sum of the registry's blob files)
 *
 * Prints medians per case, ratios (gantry / buildah, lower is better for gantry), the sums over the four cases
 * against the targets, and bytes pushed. Not a test: nothing is asserted. Needs root (to act as
 * gantry-test) after scripts/setup.sh, and debootstrap + umoci for the Debian base (made once, cached).
 * Run: node bench/run.mjs bench/build.bench.ts   (BENCH_RUNS=3 by default; BENCH_CASES=copy2000,run100m picks cases)
 */
import { chmod, chown, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImageLayout, pushFixture, skopeo } from '../test/harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../test/harness/registry.js';
import { type BenchCase, CASES, debianBaseLayout } from './build-fixtures.js';
import { asUser, BENCH_USER, exec, median, timeOnce } from './util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PICKED = process.env.BENCH_CASES?.split(',').filter(Boolean);
const GANTRY = join(process.cwd(), 'bin', 'gantry.cjs');
const PHASES = ['cold', 'cached', 'changed', 'push'] as const;
type Phase = (typeof PHASES)[number];
const TARGETS: Partial<Record<Phase, number>> = { cold: 0.8, cached: 0.5, changed: 0.7 };
const TOOLS = ['gantry', 'buildah'] as const;
type Tool = (typeof TOOLS)[number];

interface Sample {
  times: Record<Phase, number>;
  /** Everything the push stored in the empty registry. */
  pushedBytes: number;
  /** Of that, the layers the build made (the manifest's layers after the base image's). */
  builtBytes: number;
}

interface User {
  uid: number;
  gid: number;
  home: string;
}

/** One round's build phases: cold, fully cached, and again after the case's one-file change. */
async function buildPhases(
  build: string[],
  env: NodeJS.ProcessEnv,
  change: () => Promise<void>,
): Promise<{ cold: number; cached: number; changed: number }> {
  const cold = await timeOnce(build, env);
  const cached = await timeOnce(build, env);
  await change();
  return { cold, cached, changed: await timeOnce(build, env) };
}

/** Total size of the blobs a registry stores (its filesystem storage: `.../blobs/sha256/xx/<hex>/data`). */
async function storedBytes(registry: TestRegistry): Promise<number> {
  const root = join(registry.dataDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256');
  let total = 0;
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix))) {
      total += (await stat(join(root, prefix, hex, 'data'))).size;
    }
  }
  return total;
}

/** Sizes of the layers after the base's `baseLayers` in the manifest pushed as `repo:1`. */
async function builtLayerBytes(registry: TestRegistry, repo: string, baseLayers: number): Promise<number> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/1`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (!res.ok) throw new Error(`GET ${repo} manifest: HTTP ${res.status}`);
  const manifest = (await res.json()) as { layers: { size: number }[] };
  return manifest.layers.slice(baseLayers).reduce((sum, l) => sum + l.size, 0);
}

/** Pushes with `push(destination)` into a fresh registry and measures time and bytes. */
async function measurePush(
  repo: string,
  baseLayers: number,
  push: (destination: string) => Promise<number>,
): Promise<{ push: number; pushedBytes: number; builtBytes: number }> {
  return withRegistry(async (registry) => {
    const seconds = await push(`docker://${registry.host}/${repo}:1`);
    return {
      push: seconds,
      pushedBytes: await storedBytes(registry),
      builtBytes: await builtLayerBytes(registry, repo, baseLayers),
    };
  });
}

async function withRegistry<T>(fn: (registry: TestRegistry) => Promise<T>): Promise<T> {
  const registry = await startRegistry();
  try {
    return await fn(registry);
  } finally {
    await registry.stop();
    await rm(registry.dataDir, { recursive: true, force: true });
  }
}

class Bench {
  private serial = 0;

  constructor(
    private readonly root: string,
    private readonly user: User,
    private readonly bases: Record<BenchCase['base'], string>,
  ) {}

  /** A fresh directory owned by the benchmark user. */
  async userDir(name: string, parent = this.root): Promise<string> {
    const dir = join(parent, `${name}-${this.serial++}`);
    await mkdir(dir, { mode: 0o755 });
    await chown(dir, this.user.uid, this.user.gid);
    return dir;
  }

  /** Measures one tool on one case in a scratch directory that is removed afterwards. */
  async sample(tool: Tool, c: BenchCase, round: number): Promise<Sample> {
    const scratch = await this.userDir(`${tool}-${c.name}`);
    try {
      return tool === 'gantry' ? await this.gantry(scratch, c, round) : await this.buildah(scratch, c, round);
    } finally {
      await exec(['rm', '-rf', scratch]);
    }
  }

  /** A fresh copy of the case's context, owned by the user (each tool edits its own copy). */
  private async context(scratch: string, c: BenchCase): Promise<string> {
    const dir = await this.userDir('context', scratch);
    await c.make(dir);
    await exec(['chown', '-R', `${this.user.uid}:${this.user.gid}`, dir]);
    return dir;
  }

  private env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, HOME: this.user.home, CI: 'true', ...extra };
  }

  private async gantry(scratch: string, c: BenchCase, round: number): Promise<Sample> {
    const ctx = await this.context(scratch, c);
    const env = this.env({ GANTRY_STORE: await this.userDir('store', scratch) });
    const build = asUser(
      process.execPath,
      GANTRY,
      'build',
      '--quiet',
      '--build-arg',
      `BASE=${this.bases[c.base]}`,
      '-t',
      `bench-${c.name}`,
      ctx,
    );
    const { cold, cached, changed } = await buildPhases(build, env, () => c.touch(ctx, round));
    const { push, ...bytes } = await measurePush(`gantry/${c.name}`, c.baseLayers, (destination) =>
      timeOnce(
        asUser(
          process.execPath,
          GANTRY,
          'copy',
          '--quiet',
          `oci:${join(env.GANTRY_STORE as string, 'images')}:bench-${c.name}`,
          destination,
        ),
        env,
      ),
    );
    return { times: { cold, cached, changed, push }, ...bytes };
  }

  private async buildah(scratch: string, c: BenchCase, round: number): Promise<Sample> {
    const ctx = await this.context(scratch, c);
    const dir = await this.userDir('storage', scratch);
    const env = this.env({ XDG_RUNTIME_DIR: await this.userDir('runtime', scratch) });
    // Its blob-info cache outlives storage roots; drop it so every run starts as cold as gantry's.
    await rm(join(this.user.home, '.local', 'share', 'containers', 'cache'), {
      recursive: true,
      force: true,
    });
    const buildah = (...args: string[]) =>
      asUser(
        'buildah',
        '--root',
        join(dir, 'root'),
        '--runroot',
        join(dir, 'runroot'),
        '--storage-driver',
        'overlay',
        ...args,
      );
    const build = buildah(
      'bud',
      '--layers',
      '--isolation',
      'chroot',
      '--tls-verify=false',
      '--quiet',
      '--build-arg',
      `BASE=${this.bases[c.base]}`,
      '-t',
      `bench-${c.name}`,
      ctx,
    );
    const { cold, cached, changed } = await buildPhases(build, env, () => c.touch(ctx, round));
    const { push, ...bytes } = await measurePush(`buildah/${c.name}`, c.baseLayers, (destination) =>
      timeOnce(buildah('push', '--tls-verify=false', '--quiet', `bench-${c.name}`, destination), env),
    );
    return { times: { cold, cached, changed, push }, ...bytes };
  }
}

const fmt = (s: number) => `${s.toFixed(2)} s`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

const BYTES = ['pushedBytes', 'builtBytes'] as const;
const BYTES_LABEL = { pushedBytes: 'bytes pushed', builtBytes: "of which the build's layers" };

function printResults(cases: BenchCase[], results: Map<string, Record<Tool, Sample[]>>): void {
  const samples = (c: BenchCase, tool: Tool) => (results.get(c.name) as Record<Tool, Sample[]>)[tool];
  const med = (c: BenchCase, tool: Tool, phase: Phase) => median(samples(c, tool).map((s) => s.times[phase]));
  const bytes = (c: BenchCase, tool: Tool, kind: (typeof BYTES)[number]) =>
    median(samples(c, tool).map((s) => s[kind]));
  console.log(`\nmedians of ${RUNS} runs (gantry / buildah; ratio < 1: gantry is faster or smaller)`);
  console.log('| case | phase | gantry | buildah | ratio |');
  console.log('|---|---|---|---|---|');
  for (const c of cases) {
    for (const phase of PHASES) {
      const g = med(c, 'gantry', phase);
      const b = med(c, 'buildah', phase);
      console.log(`| ${c.title} | ${phase} | ${fmt(g)} | ${fmt(b)} | ${(g / b).toFixed(2)} |`);
    }
    for (const kind of BYTES) {
      const g = bytes(c, 'gantry', kind);
      const b = bytes(c, 'buildah', kind);
      console.log(`| ${c.title} | ${BYTES_LABEL[kind]} | ${mib(g)} | ${mib(b)} | ${(g / b).toFixed(2)} |`);
    }
  }
  console.log(`\nsums over ${cases.length} cases`);
  console.log('| phase | gantry | buildah | ratio | target |');
  console.log('|---|---|---|---|---|');
  for (const phase of PHASES) {
    const g = cases.reduce((sum, c) => sum + med(c, 'gantry', phase), 0);
    const b = cases.reduce((sum, c) => sum + med(c, 'buildah', phase), 0);
    const target = TARGETS[phase];
    const verdict = target === undefined ? '—' : `≤ ${target} ${g / b <= target ? 'met' : '**not met**'}`;
    console.log(`| ${phase} | ${fmt(g)} | ${fmt(b)} | ${(g / b).toFixed(2)} | ${verdict} |`);
  }
  for (const kind of BYTES) {
    const g = cases.reduce((sum, c) => sum + bytes(c, 'gantry', kind), 0);
    const b = cases.reduce((sum, c) => sum + bytes(c, 'buildah', kind), 0);
    const verdict = kind === 'pushedBytes' ? `≤ 1 ${g <= b ? 'met' : '**not met**'}` : '—';
    console.log(`| ${BYTES_LABEL[kind]} | ${mib(g)} | ${mib(b)} | ${(g / b).toFixed(2)} | ${verdict} |`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('run the benchmark as root: it acts as the unprivileged user gantry-test');
  const user = await exec(['getent', 'passwd', BENCH_USER]).then((line) => {
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] as string };
  });
  const unknown = PICKED?.filter((name) => !CASES.some((c) => c.name === name)) ?? [];
  if (unknown.length > 0)
    throw new Error(
      `unknown BENCH_CASES ${unknown.join(',')}: pick from ${CASES.map((c) => c.name).join(',')}`,
    );
  const cases = CASES.filter((c) => !PICKED || PICKED.includes(c.name));
  // buildah derives names from paths, which must be lowercase (mkdtemp's suffix is not).
  const root = join(tmpdir(), `gantry-build-bench-${process.pid}`);
  await mkdir(root);
  await chmod(root, 0o755);
  const registry = await startRegistry();
  try {
    const busybox = await makeImageLayout({ dir: join(root, 'busybox'), busybox: true, layers: 0 });
    const bases = {
      busybox: await pushFixture(busybox, registry, 'bench/busybox:1'),
      debian: `${registry.host}/bench/debian:bookworm`,
    };
    if (cases.some((c) => c.base === 'debian')) {
      const debian = await debianBaseLayout();
      await skopeo([
        '--insecure-policy',
        'copy',
        '--dest-tls-verify=false',
        `oci:${debian.layoutDir}:${debian.tag}`,
        `docker://${bases.debian}`,
      ]);
    }
    const bench = new Bench(root, user, bases);
    const buildahVersion = await exec(['buildah', '--version']);
    console.log(
      `gantry build benchmark: ${RUNS} runs, node ${process.version}, ${buildahVersion}, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const results = new Map<string, Record<Tool, Sample[]>>();
    for (const c of cases) results.set(c.name, { gantry: [], buildah: [] });
    for (let round = 0; round < RUNS; round++) {
      for (const c of cases) {
        // Alternate which tool goes first, so drift on the machine hits both alike.
        const order = round % 2 ? [...TOOLS].reverse() : TOOLS;
        for (const tool of order) {
          const sample = await bench.sample(tool, c, round);
          (results.get(c.name) as Record<Tool, Sample[]>)[tool].push(sample);
          const t = sample.times;
          console.log(
            `run ${round + 1} ${c.name} ${tool}: cold ${fmt(t.cold)}, cached ${fmt(t.cached)}, ` +
              `changed ${fmt(t.changed)}, push ${fmt(t.push)} (${mib(sample.pushedBytes)}, built ${mib(sample.builtBytes)})`,
          );
        }
      }
    }
    printResults(cases, results);
    console.log(
      `load at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await registry.stop();
    await exec(['rm', '-rf', root]).catch(() => rm(root, { recursive: true, force: true }));
  }
}

await main();
