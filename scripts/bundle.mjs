// Bundles the CLI and the library into dist/ with esbuild. `gantry` start-up is most of a short command's
// time, and Node 20 spends ~1.5 ms per ES module it resolves and links, so a command is two files: dist/cli.js
// (argument dispatch) and dist/commands/NAME.js with everything that command needs. Shared code is bundled
// into each command rather than split into shared chunks (an inspect loaded 13 modules: 33 ms vs 13 ms).
// The few heavy modules a command imports only for an optional feature (Sigstore for `copy --sign-by`, the YAML
// parser for `sync` files) are bundles of their own in dist/lazy/: inlined, they made `copy` a 2 MB file that
// took 50 ms to load.
import { readdir, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { build } from 'esbuild';

// Build into a fresh directory and swap it in, so stale files never pile up and a gantry process started
// meanwhile (parallel test runs) sees the old bundle or the new one, never a half-written one.
const staging = `dist.tmp-${process.pid}`;
const retired = `dist.old-${process.pid}`;
await rm(staging, { recursive: true, force: true });

const common = {
  outdir: staging,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.18',
  sourcemap: 'linked',
  // The native addon is loaded at run time from native/, next to the package.
  external: ['*.node'],
  banner: {
    js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
};

/** cli/main imports each command lazily as `./commands/NAME.js`: left as is, it loads the command's bundle. */
const commandsStayOutside = {
  name: 'commands-stay-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/** Modules imported with `await import()` that get their own bundle: source path -> bundle name. */
const LAZY = new Map([
  [resolve('src/sign/index.ts'), 'sign'],
  [resolve('src/sync/yaml.ts'), 'sync-yaml'],
]);

/** In the command bundles, a dynamic import of a LAZY module loads `../lazy/NAME.js` at run time. */
const lazyStaysOutside = {
  name: 'lazy-stays-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const name = LAZY.get(resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts')));
      return name ? { path: `../lazy/${name}.js`, external: true } : undefined;
    });
  },
};

const commandNames = (await readdir('src/cli/commands'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -'.ts'.length));

await Promise.all([
  build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, plugins: [commandsStayOutside] }),
  build({ ...common, entryPoints: { index: 'src/index.ts' } }),
  build({
    ...common,
    entryPoints: Object.fromEntries(commandNames.map((n) => [`commands/${n}`, `src/cli/commands/${n}.ts`])),
    plugins: [lazyStaysOutside],
  }),
  build({
    ...common,
    entryPoints: Object.fromEntries([...LAZY].map(([path, name]) => [`lazy/${name}`, path])),
  }),
]);

await rename('dist', retired).catch((err) => {
  if (err.code !== 'ENOENT') throw err;
});
await rename(staging, 'dist');
await rm(retired, { recursive: true, force: true });
