// Bundles the CLI and the library into dist/ with esbuild: one file per entry point keeps `gantry` start-up
// lean (one module graph to load, subcommands split into lazily loaded chunks).
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { build } from 'esbuild';

/** Swaps undici's HTTP/2 client for scripts/undici-without-h2.cjs (see there). */
const withoutHttp2 = {
  name: 'undici-without-h2',
  setup(b) {
    b.onResolve({ filter: /[\\/]client-h2\.js$/ }, (args) =>
      args.importer.includes(`${'node_modules'}/undici/`)
        ? { path: resolve('scripts/undici-without-h2.cjs') }
        : undefined,
    );
  },
};

// Build into a fresh directory and swap it in, so stale hashed chunks never pile up and a gantry process
// started meanwhile (parallel test runs) sees the old bundle or the new one, never a half-written one.
const staging = `dist.tmp-${process.pid}`;
const retired = `dist.old-${process.pid}`;
await rm(staging, { recursive: true, force: true });

await build({
  entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts' },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.18',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  // The native addon is loaded at run time from native/, next to the package.
  external: ['*.node'],
  plugins: [withoutHttp2],
  banner: {
    js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

await rename('dist', retired).catch((err) => {
  if (err.code !== 'ENOENT') throw err;
});
await rename(staging, 'dist');
await rm(retired, { recursive: true, force: true });
