/**
 * build/layer-step: the cache-or-make step every filesystem-changing instruction goes through. The cache key is
 * computed first; on a hit the cached layer is reused, on a miss `make` fills an empty changes directory, then
 * createLayer makes the blob, which moves into the cache with its record.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { explainMiss, type StepInputs, stepKey } from '../cache/key.js';
import type { CacheRecord } from '../cache/local.js';
import { createLayer } from '../layer/index.js';
import type { BuiltLayer } from './lower.js';
import type { BuildContext, StageState, StepReport } from './types.js';

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
    try {
      const changes = join(scratch, 'changes');
      await mkdir(changes, { mode: 0o755 });
      await make(changes);
      const temp = o.cache.tempPath('layer');
      const created = await createLayer({
        changes,
        outputPath: temp,
        compression: o.compression ?? 'gzip',
        ...(o.timestamp === undefined ? {} : { sourceDateEpoch: o.timestamp }),
      });
      await o.cache.adoptBlob(temp, created.digest);
      record = { key, inputs, layer: created };
      await o.cache.put(record);
    } finally {
      await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
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
