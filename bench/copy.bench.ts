/**
 * Copier benchmark: gantry against skopeo on this machine, in the same run, on the same registries.
 * Prints medians and gantry/skopeo ratios (lower is better for gantry). Not a test: nothing is asserted.
 *
 *  - cold copy of a ~200 MiB, 6-layer image registry -> registry (a fresh destination registry per run), and
 *    the destination registry ingesting the same layers from curl alone (the floor any copier has here)
 *  - warm copy of the same image (the destination has every blob and the manifest)
 *  - --all copy of a two-platform index (cold)
 *  - inspect latency
 *  - sync of 50 tags that are already mirrored, without and with --state
 *  - peak RSS of gantry while copying a 1 GiB layer (set BENCH_BIG=0 to skip)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type FixtureImage,
  makeImageLayout,
  makeIndexLayout,
  pushFixture,
} from '../test/harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../test/harness/registry.js';
import { median } from './util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// The entry npm links (bin/gantry), so the benchmark pays what users pay at start-up.
const GANTRY = join(process.cwd(), 'bin', 'gantry');
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';

interface Timed {
  seconds: number;
  maxRssKiB: number;
}

/**
 * Runs a command through python's getrusage so the child's peak RSS is measured by the kernel. Asynchronous on
 * purpose: the registries are children of this process and their log pipes must keep draining meanwhile.
 */
function timed(cmd: string[]): Promise<Timed> {
  const script =
    'import resource,subprocess,sys,time\n' +
    't=time.monotonic(); r=subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n' +
    'd=time.monotonic()-t\n' +
    'if r.returncode: sys.stderr.write(r.stderr.decode()); sys.exit(r.returncode)\n' +
    'print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n';
  return new Promise((resolve, reject) => {
    execFile(
      'python3',
      ['-c', script, ...cmd],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd.join(' ')} failed:\n${stderr}`));
          return;
        }
        const [seconds, rss] = stdout.trim().split(' ').map(Number) as [number, number];
        resolve({ seconds, maxRssKiB: rss });
      },
    );
  });
}

/**
 * The floor of a cold copy on this machine: the destination registry taking the same layers from curl, six
 * uploads at once from files in the page cache, with no source registry and no copier running.
 */
const INGEST_SCRIPT = `
host=$1; shift
pids=()
while [ $# -gt 0 ]; do
  digest=$1 file=$2; shift 2
  (
    loc=$(curl -sf -X POST -D - -o /dev/null "http://$host/v2/ingest/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
    case $loc in *?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'content-type: application/octet-stream' --data-binary "@$file" "$loc\${sep}digest=$digest" -o /dev/null
  ) &
  pids+=($!)
done
for pid in "\${pids[@]}"; do wait "$pid" || exit 1; done
`;

function ingestOnly(host: string, image: FixtureImage): string[] {
  const blobs = image.layers.flatMap((l) => [
    l.digest,
    join(image.layoutDir, 'blobs', 'sha256', l.digest.slice('sha256:'.length)),
  ]);
  return ['bash', '-c', INGEST_SCRIPT, 'ingest', host, ...blobs];
}

const gantry = (...args: string[]): string[] => [GANTRY, ...args, '--quiet'];
const skopeo = (...args: string[]): string[] => ['skopeo', '--insecure-policy', ...args];

const rows: string[][] = [];
function report(name: string, g: number[], s: number[], unit = 's'): void {
  const mg = median(g);
  const ms = median(s);
  rows.push([name, `${mg.toFixed(3)}${unit}`, `${ms.toFixed(3)}${unit}`, (mg / ms).toFixed(2)]);
  console.log(
    `${name}: gantry ${mg.toFixed(3)}${unit}, skopeo ${ms.toFixed(3)}${unit}, ratio ${(mg / ms).toFixed(2)}`,
  );
}

async function fresh<T>(fn: (dst: TestRegistry) => Promise<T>): Promise<T> {
  const dst = await startRegistry();
  try {
    return await fn(dst);
  } finally {
    await dst.stop();
  }
}

const work = await mkdtemp(join(tmpdir(), 'gantry-bench-'));
const src = await startRegistry();
const insecure = ['--src-tls-verify=false', '--dest-tls-verify=false'];
try {
  console.log(`gantry copier benchmark, ${RUNS} runs each, medians; node ${process.version}`);
  const big = await makeImageLayout({
    dir: join(work, 'big'),
    tag: 'big',
    layers: 6,
    layerSize: 34 << 20,
    seed: 5,
  });
  const srcBig = `docker://${await pushFixture(big, src, 'bench/big:v1')}`;
  const index = await makeIndexLayout({
    dir: join(work, 'idx'),
    tag: 'idx',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerSize: 16 << 20,
  });
  const srcIndex = `docker://${await pushFixture(index, src, 'bench/index:v1')}`;

  // Cold copy: a fresh destination registry each run; skopeo's blob-info cache removed so it cannot mount.
  const cold = { g: [] as number[], s: [] as number[], ingest: [] as number[] };
  const all = { g: [] as number[], s: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    cold.g.push(
      await fresh(
        async (dst) => (await timed(gantry('copy', srcBig, `docker://${dst.host}/c/img:v1`))).seconds,
      ),
    );
    await rm(SKOPEO_CACHE, { force: true });
    cold.s.push(
      await fresh(
        async (dst) =>
          (await timed(skopeo('copy', ...insecure, srcBig, `docker://${dst.host}/c/img:v1`))).seconds,
      ),
    );
    cold.ingest.push(await fresh(async (dst) => (await timed(ingestOnly(dst.host, big))).seconds));
    all.g.push(
      await fresh(
        async (dst) =>
          (await timed(gantry('copy', '--all', srcIndex, `docker://${dst.host}/a/idx:v1`))).seconds,
      ),
    );
    await rm(SKOPEO_CACHE, { force: true });
    all.s.push(
      await fresh(
        async (dst) =>
          (await timed(skopeo('copy', '--all', ...insecure, srcIndex, `docker://${dst.host}/a/idx:v1`)))
            .seconds,
      ),
    );
  }
  report('cold copy 200 MiB / 6 layers', cold.g, cold.s);
  report('  its floor: the registry ingesting the layers from curl', cold.ingest, cold.s);
  report('copy --all, 2-platform index', all.g, all.s);

  // Warm copy: the destination already has everything.
  const warm = await fresh(async (dst) => {
    const target = `docker://${dst.host}/warm/img:v1`;
    await timed(gantry('copy', srcBig, target));
    const out = { g: [] as number[], s: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      out.g.push((await timed(gantry('copy', srcBig, target))).seconds);
      out.s.push((await timed(skopeo('copy', ...insecure, srcBig, target))).seconds);
    }
    return out;
  });
  report('warm copy (destination has all blobs)', warm.g, warm.s);

  const inspect = { g: [] as number[], s: [] as number[] };
  for (let i = 0; i < RUNS * 2; i++) {
    inspect.g.push((await timed(gantry('inspect', srcBig))).seconds * 1000);
    inspect.s.push((await timed(skopeo('inspect', '--tls-verify=false', srcBig))).seconds * 1000);
  }
  report('inspect', inspect.g, inspect.s, 'ms');

  // 50 tags already mirrored: a re-run should only compare digests.
  for (let i = 0; i < 50; i++) {
    const small = await makeImageLayout({
      dir: join(work, `s${i}`),
      tag: 't',
      layers: 1,
      layerSize: 4096,
      seed: 100 + i,
    });
    await pushFixture(small, src, `bench/many:t${i}`);
  }
  const syncTimes = await fresh(async (dst) => {
    const gantrySync = gantry('sync', `docker://${src.host}/bench/many`, `docker://${dst.host}/g`);
    // The same sync remembering digests between runs (sync/state.ts): the destination is asked for tag lists only.
    const gantryStateSync = gantry(
      'sync',
      '--state',
      join(work, 'sync-state.json'),
      `docker://${src.host}/bench/many`,
      `docker://${dst.host}/g`,
    );
    const skopeoSync = skopeo(
      'sync',
      '--src',
      'docker',
      '--dest',
      'docker',
      ...insecure,
      `${src.host}/bench/many`,
      `${dst.host}/s`,
    );
    await timed(gantrySync);
    await timed(gantryStateSync);
    await timed(skopeoSync);
    const out = { g: [] as number[], state: [] as number[], s: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      out.g.push((await timed(gantrySync)).seconds);
      out.state.push((await timed(gantryStateSync)).seconds);
      out.s.push((await timed(skopeoSync)).seconds);
    }
    return out;
  });
  report('sync of 50 already-mirrored tags', syncTimes.g, syncTimes.s);
  report('sync of 50 already-mirrored tags, --state', syncTimes.state, syncTimes.s);

  if (process.env.BENCH_BIG !== '0') {
    const huge = await makeImageLayout({
      dir: join(work, 'huge'),
      tag: 'huge',
      layers: 1,
      layerSize: 1 << 30,
      seed: 9,
    });
    const srcHuge = `docker://${await pushFixture(huge, src, 'bench/huge:v1')}`;
    const rss = await fresh((dst) => timed(gantry('copy', srcHuge, `docker://${dst.host}/huge/img:v1`)));
    rows.push(['peak RSS, 1 GiB layer copy', `${(rss.maxRssKiB / 1024).toFixed(0)} MiB`, '', '']);
    console.log(
      `peak RSS copying a 1 GiB layer: ${(rss.maxRssKiB / 1024).toFixed(0)} MiB in ${rss.seconds.toFixed(1)}s`,
    );
  }

  console.log('\n| benchmark | gantry | skopeo | ratio |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} finally {
  await src.stop();
  await rm(work, { recursive: true, force: true });
}
