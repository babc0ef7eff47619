/** cache: build step keys and the local build cache (see docs/cache-format.md). */
export { explainMiss, type StepInputs, stepKey } from './key.js';
export {
  type CachedLayer,
  type CacheRecord,
  defaultCacheBound,
  LocalCache,
  type PruneOptions,
  type PruneResult,
  type RemoteBlobs,
} from './local.js';
export { CACHE_CONFIG_TYPE, exportCache, type ImportedCache, importCache } from './registry.js';
