/**
 * Layer I/O benchmark: gantry's native createLayer/unpackLayer against the single-threaded shell pipes on this
 * machine, in the same run, on the same data (page cache warm for both). Prints medians and speed-ups
 * (baseline time / gantry time, higher is better for gantry). Not a test: nothing is asserted.
 *
 *  - layer creation (walk/diff + tar + gzip -6 + sha256 of tar and blob) of a 100 MiB, 5,000-file change,
 *    against `tar -c | gzip | sha256sum`; also zstd, and a two-tree diff over 2,000 extra unchanged files
 *  - unpacking that gzip layer, against `tar -xzf`
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLayer, unpackLayer } from '../src/layer/index.js';
import { median } from './util.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = 5000;
const TOTAL = 100 * 1024 * 1024;

interface Timing {
  wall: number;
  /** user + system CPU seconds (gantry: this process, all threads; baseline: the shell's children). */
  cpu: number;
}

/** Runs a shell script; `times` reports its children's CPU time, which is what the pipe costs. */
function sh(script: string): Promise<Timing> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', `${script}\ntimes`], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${script}: ${stderr}`));
        return;
      }
      const wall = (performance.now() - start) / 1000;
      const children = stdout.trim().split('\n').at(-1) ?? '';
      const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolve({ wall, cpu: seconds.reduce((a, b) => a + b, 0) });
    });
  });
}

async function time(fn: () => Promise<unknown>): Promise<Timing> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 };
}

function report(name: string, gantry: Timing[], baseline: Timing[], baselineName: string): void {
  const g = median(gantry.map((t) => t.wall));
  const b = median(baseline.map((t) => t.wall));
  const gc = median(gantry.map((t) => t.cpu));
  const bc = median(baseline.map((t) => t.cpu));
  console.log(
    `${name}: gantry ${g.toFixed(3)}s (cpu ${gc.toFixed(2)}s), ${baselineName} ${b.toFixed(3)}s ` +
      `(cpu ${bc.toFixed(2)}s), speed-up ${(b / g).toFixed(2)}x`,
  );
}

/** Deterministic xorshift so every run (and machine) gets the same tree. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * Content like a real layer: text cut from the JavaScript in node_modules (compresses ~3-4x) and binaries cut
 * from /usr/bin (compresses ~2-3x). Files are slices of these pools at random offsets.
 */
async function pools(): Promise<{ text: Buffer; binary: Buffer }> {
  const collect = async (root: string, accept: (name: string) => boolean, limit: number): Promise<Buffer> => {
    const parts: Buffer[] = [];
    let size = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
        a.name.localeCompare(b.name),
      )) {
        if (size >= limit) return;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile() && accept(entry.name)) {
          const data = await readFile(path).catch(() => Buffer.alloc(0));
          parts.push(data);
          size += data.length;
        }
      }
    };
    await walk(root);
    return Buffer.concat(parts).subarray(0, limit);
  };
  return {
    text: await collect(join(process.cwd(), 'node_modules'), (n) => n.endsWith('.js'), 24 << 20),
    binary: await collect('/usr/bin', () => true, 12 << 20),
  };
}

async function makeTree(root: string, files: number, total: number, seed: number): Promise<void> {
  const rand = rng(seed);
  const { text, binary } = await pools();
  const mean = total / files;
  let written = 0;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${i % 50}`, `s${Math.floor(i / 50) % 10}`);
    if (i < 500) await mkdir(dir, { recursive: true });
    const remaining = total - written;
    const size = i === files - 1 ? remaining : Math.min(remaining, Math.floor(rand() * 2 * mean));
    const pool = rand() < 0.7 ? text : binary;
    const offset = Math.floor(rand() * (pool.length - size));
    await writeFile(join(dir, `f${i}.dat`), pool.subarray(offset, offset + size));
    written += size;
  }
}

const work = await mkdtemp(join(tmpdir(), 'gantry-layer-bench-'));
try {
  console.log(
    `gantry layer benchmark, ${RUNS} runs each, medians; ${cpus().length} cores, ` +
      `load average ${loadavg()[0]!.toFixed(1)}; node ${process.version}`,
  );
  const change = join(work, 'change');
  await makeTree(change, FILES, TOTAL, 42);
  // Two-tree diff: base = 2,000 other files; new = hard-linked copy of base (unchanged) + the change.
  const base = join(work, 'base');
  const next = join(work, 'next');
  await makeTree(base, 2000, 20 * 1024 * 1024, 7);
  await sh(`cp -al '${base}' '${next}' && cp -a '${change}/.' '${next}/'`);

  const blob = join(work, 'layer.tar.gz');
  const g: Timing[] = [];
  const z: Timing[] = [];
  const d: Timing[] = [];
  const pipe: Timing[] = [];
  for (let i = 0; i < RUNS; i++) {
    pipe.push(await sh(`tar -C '${change}' -c . | gzip | sha256sum >/dev/null`));
    g.push(await time(() => createLayer({ changes: change, outputPath: blob })));
    z.push(
      await time(() =>
        createLayer({ changes: change, outputPath: join(work, 'l.zst'), compression: 'zstd' }),
      ),
    );
    d.push(await time(() => createLayer({ changes: next, base, outputPath: join(work, 'diff.tgz') })));
  }
  report('create 100 MiB/5,000 files, gzip', g, pipe, 'tar|gzip|sha256sum');
  report('create, zstd', z, pipe, 'tar|gzip|sha256sum');
  report('create from a two-tree diff (+2,000 unchanged), gzip', d, pipe, 'tar|gzip|sha256sum');

  const u: Timing[] = [];
  const x: Timing[] = [];
  const target = join(work, 'unpacked');
  for (let i = 0; i < RUNS; i++) {
    await rm(target, { recursive: true, force: true });
    await mkdir(target);
    x.push(await sh(`tar -xzf '${blob}' -C '${target}'`));
    await rm(target, { recursive: true, force: true });
    await mkdir(target);
    u.push(await time(() => unpackLayer({ source: blob, target })));
  }
  report('unpack 100 MiB/5,000 files, gzip', u, x, 'tar -xzf');
} finally {
  await rm(work, { recursive: true, force: true });
}
