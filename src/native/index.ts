/**
 * native: typed loader for gantry's Rust addon (native/, built with `npm run build:native`). Loads the
 * platform's `gantry-native.<triple>.node` once and wraps its failures in GantryError.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GantryError } from '../errors/index.js';

/** What the addon exports (mirrors the generated native/index.d.ts). */
export interface NativeBinding {
  digestFile(path: string): Promise<string>;
  digestFiles(paths: string[]): Promise<string[]>;
  unpackLayer(options: { source: string; target: string; whiteoutMode?: string }): Promise<{
    entries: number;
    skipped: { path: string; reason: string }[];
    diffId: string;
    ownersRecorded: number;
  }>;
  createLayer(options: {
    changes: string;
    base?: string;
    outputPath: string;
    compression?: string;
    level?: number;
    sourceDateEpoch?: number;
    /** Owners that override what the files say (paths relative to `changes`). */
    owners?: readonly { path: string; uid: number; gid: number }[] | undefined;
  }): Promise<{ digest: string; diffId: string; size: number }>;
}

const BINARY_NAME = 'gantry-native';

let cached: NativeBinding | undefined;

/** The napi-rs platform triple of this process, e.g. `linux-x64-gnu`, as used in the .node file name. */
export function platformTriple(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'gnu';
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
}

/**
 * The addon sits in `<package>/native/`. This module runs either from `src/native/` (tests, tsx) or
 * bundled into `dist/`, so both relative locations are tried.
 */
function candidatePaths(fileName: string): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, '..', '..', 'native', fileName), join(here, '..', 'native', fileName)];
}

/** Loads the addon (once). Throws GantryError 'NATIVE' when it is missing or fails to load. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const fileName = `${BINARY_NAME}.${platformTriple()}.node`;
  const candidates = candidatePaths(fileName);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GantryError(
      'NATIVE',
      `native addon not found (looked in ${candidates.join(', ')}); run \`npm run build:native\``,
      { subject: fileName },
    );
  }
  try {
    cached = createRequire(import.meta.url)(found) as NativeBinding;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new GantryError('NATIVE', `native addon failed to load: ${detail}; run \`npm run build:native\``, {
      subject: found,
      cause: err,
    });
  }
  return cached;
}

/**
 * `sha256:<hex>` of each file, in order, hashed on a few native threads in one call (thousands of small files
 * cost one round trip instead of three per file).
 */
export async function digestFiles(paths: string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const native = loadNative();
  try {
    return await native.digestFiles(paths);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new GantryError('IO', `cannot digest files: ${detail}`, {
      subject: paths[0] as string,
      cause: err,
    });
  }
}

/** `sha256:<hex>` of a file, hashed in 1 MiB chunks on libuv's thread pool. */
export async function digestFile(path: string): Promise<string> {
  const native = loadNative();
  try {
    return await native.digestFile(path);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new GantryError('IO', `cannot digest file: ${detail}`, { subject: path, cause: err });
  }
}
