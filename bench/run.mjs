// Bundles a benchmark (default bench/copy.bench.ts, which reuses the test harness) and runs it.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const entry = process.argv[2] ?? 'bench/copy.bench.ts';
// Measure what the source says now: rebuild the CLI bundle first (do not rebuild it while a benchmark runs).
const bundled = spawnSync(process.execPath, ['scripts/bundle.mjs'], { stdio: 'inherit' });
if (bundled.status !== 0) process.exit(bundled.status ?? 1);
await build({
  entryPoints: [entry],
  outfile: '.tmp/bench.mjs',
  bundle: true,
  format: 'esm',
  platform: 'node',
  packages: 'external',
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, ['.tmp/bench.mjs'], { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
