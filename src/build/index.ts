/**
 * build: `gantry build` as a library — Dockerfile to image with a per-step cache (src/cache), and export of the
 * result through the copy engine. See docs/build.md.
 */
export { build } from './builder.js';
export type { ImageConfig, RuntimeConfig } from './config.js';
export {
  type BuiltIndex,
  type BuiltOutput,
  buildIndex,
  builtImageSource,
  type ExportOptions,
  exportImage,
  isBuiltIndex,
} from './export.js';
export type {
  BuildOptions,
  BuildResult,
  NamedContext,
  SecretSource,
  StepReport,
  StepStart,
} from './types.js';
