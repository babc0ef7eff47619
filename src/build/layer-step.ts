/**
 * build/layer-step: the cache-or-make step every filesystem-changing instruction goes through. The cache key is
 * computed first; on a hit the cached layer is reused, on a miss `make` fills an empty changes directory, then
 * createLayer makes the blob (with the owners the step recorded, inside the user namespace for a rootless
 * RUN: build/upper-owners), which moves into the cache with its record.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { explainMiss, type StepInputs, stepKey } from '../cache/key.js';
import type { CacheRecord } from '../cache/local.js';
import { asGantryError, GantryError } from '../errors/index.js';
import { createLayer } from '../layer/index.js';
import { removeAsContainerRoot } from '../sandbox/helper.js';
import type { IdMaps } from '../sandbox/spec.js';
import type { BuiltLayer } from './lower.js';
import type { BuildContext, StageState, StepReport } from './types.js';
import { openChanges, takeOwnership } from './upper-owners.js';

export interface StepOutcome {
  state: StageState;
  report: Omit<StepReport, 'stage' | 'location'>;
}

export function where(ctx: BuildContext, line: number): string {
  return `${ctx.ir.file}:${line}`;
}

/** Looks the step up; on a miss runs `make` into a fresh changes directory and caches the layer. */
export async function cachedLayerStep(
  ctx: BuildContext,
  state: StageState,
  inputs: StepInputs,
  history: string,
  make: (changes: string) => Promise<void>,
): Promise<StepOutcome> {
  const o = ctx.options;
  const key = stepKey(inputs);
  let record: CacheRecord | undefined = o.noCache ? undefined : await o.cache.get(key);
  let reason = 'cached';
  if (!record) {
    reason = o.noCache ? '--no-cache' : explainMiss(inputs, await o.cache.followers(inputs.parent));
    const scratch = await o.store.makeScratch('step');
    const changes = join(scratch, 'changes');
    let idMaps: IdMaps | undefined;
    try {
      await mkdir(changes, { mode: 0o755 });
      openChanges(changes);
      await make(changes);
      const { owners, namespaced } = takeOwnership(changes);
      idMaps = namespaced?.userNamespace.idMaps;
      const temp = o.cache.tempPath('layer');
      const created = await createLayer({
        changes,
        outputPath: temp,
        compression: o.compression ?? 'gzip',
        ...(o.timestamp === undefined ? {} : { sourceDateEpoch: o.timestamp }),
        ...(owners.length > 0 ? { owners } : {}),
        ...(namespaced ? { userNamespace: namespaced.userNamespace } : {}),
      }).catch((err: unknown) => {
        if (!namespaced) throw err;
        // Name the RUN whose files could not be layered rather than a scratch directory.
        const e = asGantryError(err, 'IO', 'cannot create layer');
        throw new GantryError(e.code, e.message, { subject: namespaced.subject, cause: err });
      });
      await o.cache.adoptBlob(temp, created.digest);
      // The changes are the new layer's content: the store keeps them (when it can make them exactly the
      // unpacked form) rather than unpacking the blob for the next step; what it leaves is removed below.
      await o.store.adoptLayer(created.diffId, changes, {
        owners,
        ...(namespaced ? { idMaps: namespaced.userNamespace.idMaps } : {}),
        ...(o.timestamp === undefined ? {} : { sourceDateEpoch: o.timestamp }),
      });
      record = { key, inputs, layer: created };
      await o.cache.put(record);
    } finally {
      // Forgets what a failed step recorded; a rootless RUN's files owned by subordinate ids may need the
      // user namespace to go.
      idMaps ??= takeOwnership(changes).namespaced?.userNamespace.idMaps;
      await removeScratch(scratch, idMaps);
    }
  }
  const layer = record.layer as NonNullable<CacheRecord['layer']>;
  const built: BuiltLayer = { ...layer, path: o.cache.blobPath(layer.digest) };
  const config = {
    ...state.config,
    rootfs: { type: 'layers' as const, diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] },
    history: [...(state.config.history ?? []), { created: ctx.createdAt, created_by: history }],
  };
  return {
    state: { config, layers: [...state.layers, built], key },
    report: { instruction: history, cache: reason === 'cached' ? 'hit' : 'miss', reason, key },
  };
}

async function removeScratch(dir: string, idMaps: IdMaps | undefined): Promise<void> {
  const removed = await rm(dir, { recursive: true, force: true }).then(
    () => true,
    () => false,
  );
  // Best effort either way: a leftover is swept with the store's stale scratch.
  if (!removed && idMaps?.useHelpers) await removeAsContainerRoot({ dir, idMaps }).catch(() => undefined);
}
