// Bundles the CLI and the library into dist/ with esbuild. `gantry` start-up is most of a short command's
// time, which shaped the CLI's files (measured on Node 20, docs/architecture.md):
// - CommonJS: Node's ES module loader costs ~8 ms to start and ~1.5 ms per module it links; the library
//   (dist/index.js) stays ESM. The CLI is dist/cli.cjs (argument dispatch) and dist/commands/NAME.cjs with
//   everything that command needs, bundled into each command rather than split into shared chunks (an
//   inspect loaded 13 ES modules: 33 ms vs 13 ms for one).
// - The few heavy modules a command imports only for an optional feature (Sigstore for `copy --sign-by`, the
//   YAML parser for `sync` files, the file transports) are bundles of their own in dist/lazy/: inlined, they
//   made `copy` a 2 MB file that took 50 ms to load.
import { readdir, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { build } from 'esbuild';

// Build into a fresh directory and swap it in, so stale files never pile up and a gantry process started
// meanwhile (parallel test runs) sees the old bundle or the new one, never a half-written one.
const staging = `dist.tmp-${process.pid}`;
const retired = `dist.old-${process.pid}`;
await rm(staging, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20.18',
  sourcemap: 'linked',
  // The native addon is loaded at run time from native/, next to the package.
  external: ['*.node'],
  logLevel: 'warning',
};

const library = {
  ...common,
  outdir: staging,
  format: 'esm',
  banner: {
    js: "import { createRequire as __gantryCreateRequire } from 'node:module'; const require = __gantryCreateRequire(import.meta.url);",
  },
};

const cli = {
  ...common,
  outdir: staging,
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  // `await import()` of another CLI file becomes a require of it.
  supported: { 'dynamic-import': false },
  // The sources are ES modules that find native/ from import.meta.url.
  define: { 'import.meta.url': '__gantryImportMetaUrl' },
  banner: { js: "const __gantryImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

/** cli/main imports each command lazily as `./commands/NAME.js`: that loads the command's bundle. */
const commandsStayOutside = {
  name: 'commands-stay-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) => ({
      path: args.path.replace(/\.js$/, '.cjs'),
      external: true,
    }));
  },
};

/** Modules imported with `await import()` that get their own bundle: source path -> bundle name. */
const LAZY = new Map([
  [resolve('src/sign/index.ts'), 'sign'],
  [resolve('src/sync/yaml.ts'), 'sync-yaml'],
  // The file transports (and tar-stream under them): half of a registry-only command's code otherwise.
  ...['oci-layout', 'oci-archive', 'docker-archive', 'dir'].map((t) => [
    resolve(`src/transports/${t}.ts`),
    t,
  ]),
]);

/** In the command bundles, a dynamic import of a LAZY module loads `../lazy/NAME.cjs` at run time. */
const lazyStaysOutside = {
  name: 'lazy-stays-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const name = LAZY.get(resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts')));
      return name ? { path: `../lazy/${name}.cjs`, external: true } : undefined;
    });
  },
};

const commandNames = (await readdir('src/cli/commands'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -'.ts'.length));

await Promise.all([
  build({ ...cli, entryPoints: { cli: 'src/cli/main.ts' }, plugins: [commandsStayOutside] }),
  build({ ...library, entryPoints: { index: 'src/index.ts' } }),
  build({
    ...cli,
    entryPoints: Object.fromEntries(commandNames.map((n) => [`commands/${n}`, `src/cli/commands/${n}.ts`])),
    plugins: [lazyStaysOutside],
  }),
  build({
    ...cli,
    entryPoints: Object.fromEntries([...LAZY].map(([path, name]) => [`lazy/${name}`, path])),
  }),
]);

await rename('dist', retired).catch((err) => {
  if (err.code !== 'ENOENT') throw err;
});
await rename(staging, 'dist');
await rm(retired, { recursive: true, force: true });
