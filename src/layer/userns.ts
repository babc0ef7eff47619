/**
 * layer/userns: createLayer inside a user namespace with a container's id maps, through the gantry-sandbox
 * helper's `layer` subcommand (native/src/sandbox/layer.rs, the addon's own layer writer). For changes a
 * rootless container wrote: there each file shows the ids the container gave it, not the caller's subordinate
 * ids, and the namespace's root can read files the container made unreadable.
 */
import { rm, writeFile } from 'node:fs/promises';
import { runHelper } from '../sandbox/helper.js';
import type { IdMaps } from '../sandbox/spec.js';

/** What the helper reads: the addon's createLayer options plus the id maps (field names match layer.rs). */
export interface NamespacedLayerRequest {
  idMaps: IdMaps;
  changes: string;
  base?: string;
  outputPath: string;
  compression: string;
  level?: number;
  sourceDateEpoch?: number;
  owners?: readonly { path: string; uid: number; gid: number }[];
}

export interface NamespacedLayerReport {
  digest: string;
  diffId: string;
  size: number;
}

/** Runs `gantry-sandbox layer` with its spec in `specFile` (removed afterwards). */
export async function createLayerInNamespace(
  request: NamespacedLayerRequest,
  specFile: string,
): Promise<NamespacedLayerReport> {
  await writeFile(specFile, JSON.stringify(request), { mode: 0o600 });
  try {
    const { code, out, err } = await runHelper(['layer', specFile]);
    if (code !== 0) throw new Error(err.trim() || `gantry-sandbox layer exited with ${code}`);
    return JSON.parse(out) as NamespacedLayerReport;
  } finally {
    await rm(specFile, { force: true });
  }
}
