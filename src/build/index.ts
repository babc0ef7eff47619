/**
 * build: `gantry build` as a library — Dockerfile to image with a per-step cache (src/cache), and export of the
 * result through the copy engine. See docs/build.md.
 */
export { build } from './builder.js';
export type { ImageConfig, RuntimeConfig } from './config.js';
export { builtImageSource, type ExportOptions, exportImage } from './export.js';
export type { BuildOptions, BuildResult, SecretSource, StepReport } from './types.js';
