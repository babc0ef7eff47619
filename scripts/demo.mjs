// Bundles scripts/demo.ts (which reuses the test harness to start a registry and make an image) and runs it.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

await build({
  entryPoints: ['scripts/demo.ts'],
  outfile: '.tmp/demo.mjs',
  bundle: true,
  format: 'esm',
  platform: 'node',
  packages: 'external',
  logLevel: 'warning',
  define: { 'import.meta.dirname': JSON.stringify(`${process.cwd()}/scripts`) },
});
const result = spawnSync(process.execPath, ['.tmp/demo.mjs'], { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
