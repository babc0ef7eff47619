/**
 * `gantry run` benchmark: per-run overhead of `gantry run IMAGE true` against `buildah run --isolation chroot`
 * (rootless, from a `buildah from oci:...` working container), both as the unprivileged user gantry-test, in
 * the same run on the same busybox image. Prints medians and the gantry/buildah ratio (target: <= 0.5).
 * Not a test: nothing is asserted. Needs root (to act as gantry-test) after scripts/setup.sh.
 * Run: node bench/run.mjs bench/run.bench.ts   (BENCH_RUNS=20 by default)
 */
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImageLayout } from '../test/harness/fixtures.js';
import { asUser, BENCH_USER, exec, median, timeOnce } from './util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const GANTRY = join(process.cwd(), 'bin', 'gantry.cjs');

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('run the benchmark as root: it acts as the unprivileged user gantry-test');
  const { uid, gid, home } = await exec(['getent', 'passwd', BENCH_USER], process.env).then((line) => {
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] as string };
  });
  // buildah derives an image name from the layout path, which must be lowercase (mkdtemp's suffix is not).
  const base = join(tmpdir(), `gantry-run-bench-${process.pid}`);
  await mkdir(base);
  try {
    await chmod(base, 0o755);
    const image = await makeImageLayout({ dir: join(base, 'image'), busybox: true, layers: 1 });
    await exec(['chmod', '-R', 'a+rX', image.layoutDir], process.env);
    const store = join(base, 'store');
    const runtime = join(base, 'runtime');
    for (const dir of [store, runtime]) {
      await exec(['mkdir', '-m', '700', dir], process.env);
      await chown(dir, uid, gid);
    }
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_RUNTIME_DIR: runtime,
      GANTRY_STORE: store,
      CI: 'true',
    };
    const ref = `oci:${image.layoutDir}:${image.tag}`;

    // Warm both: gantry pulls and unpacks into its store, buildah makes its working container.
    const gantryRun = asUser(process.execPath, GANTRY, 'run', '--quiet', ref, 'true');
    await exec(gantryRun, env);
    const container = await exec(asUser('buildah', 'from', '--pull-never', '--quiet', ref), env);
    const buildahRun = asUser('buildah', 'run', '--isolation', 'chroot', container, 'true');
    await exec(buildahRun, env);

    // Interleaved so drift on the machine hits both alike.
    const gantryTimes: number[] = [];
    const buildahTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      gantryTimes.push(await timeOnce(gantryRun, env));
      buildahTimes.push(await timeOnce(buildahRun, env));
    }
    await exec(asUser('buildah', 'rm', container), env);
    const g = median(gantryTimes);
    const b = median(buildahTimes);
    console.log(`gantry run IMAGE true           median ${(g * 1000).toFixed(0)} ms over ${RUNS} runs`);
    console.log(`buildah run --isolation chroot  median ${(b * 1000).toFixed(0)} ms over ${RUNS} runs`);
    console.log(`ratio gantry/buildah            ${(g / b).toFixed(2)} (target <= 0.50)`);
  } finally {
    await exec(['rm', '-rf', base], process.env).catch(() => rm(base, { recursive: true, force: true }));
  }
}

await main();
