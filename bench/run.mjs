// Bundles a benchmark (default bench/copy.bench.ts, which reuses the test harness) and runs it.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const entry = process.argv[2] ?? 'bench/copy.bench.ts';
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
