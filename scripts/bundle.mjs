// Bundles the CLI and the library into dist/ with esbuild: one file per entry point keeps `gantry` start-up
// lean (one module graph to load, subcommands split into lazily loaded chunks).
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

// Chunk names carry content hashes: start from an empty dist/ so stale chunks never pile up.
await rm('dist', { recursive: true, force: true });

await build({
  entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.18',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  // The native addon is loaded at run time from native/, next to the package.
  external: ['*.node'],
  banner: {
    js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
