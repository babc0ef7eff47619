/**
 * sync: mirrors many images — from registries (a repository or a YAML list) or an air-gap bundle — into a
 * registry or a bundle. Unlike a loop of copies, it is a real sync: it compares manifest digests first and moves
 * only what changed, can delete what the source no longer has, splits work into shards for CI matrices, and
 * with --keep-going reports every failure at the end instead of stopping at the first.
 */
import pLimit from 'p-limit';
import { type CopyProgress, type CopyResult, copyImage } from '../copy/index.js';
import { GantryError, isGantryError } from '../errors/index.js';
import { hostPlatform, isIndex, type Platform, parseManifest, platformMatches } from '../oci/index.js';
import { formatImageReference, type ImageReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { openRegistryDestination, openRegistrySource } from '../transports/docker.js';
import type { ImageDestination, ImageSource } from '../transports/types.js';
import { type Logger, silentLogger } from '../util/log.js';
import {
  type BundleEntry,
  bundleRefName,
  readBundleIndex,
  verifyBundleImage,
  writeBundleIndex,
} from './bundle.js';
import { type SyncSourceRepo, selectTags, shardOf } from './config.js';
import { SyncStateFile } from './state.js';

/** The OCI layout transport, loaded only for air-gap bundles (registry-to-registry syncs start faster). */
const ociLayout = () => import('../transports/oci-layout.js');

export { parseShard, parseSyncConfig, type SyncSourceRepo, type TagSelector } from './config.js';

export type SyncSource =
  | { kind: 'registry'; repos: SyncSourceRepo[]; clientFor: (repo: SyncSourceRepo) => RegistryClient }
  | { kind: 'bundle'; dir: string };

export type SyncDestination =
  | { kind: 'registry'; registry: string; prefix: string; client: RegistryClient }
  | { kind: 'bundle'; dir: string };

export interface SyncOptions {
  source: SyncSource;
  destination: SyncDestination;
  /** Name destination repositories with the source registry host too (`prefix/host/repo`). */
  scoped?: boolean;
  all?: boolean;
  platform?: Platform;
  removeSignatures?: boolean;
  /** Delete destination tags the source no longer has (only in repositories this sync writes). */
  deleteExtraneous?: boolean;
  keepGoing?: boolean;
  dryRun?: boolean;
  shard?: { index: number; count: number };
  /**
   * Registry destinations: a file recording the digest each destination tag was synced to, read at the start
   * and rewritten at the end; tags whose source digest matches it are not asked of the destination (see
   * sync/state.ts for what that trusts).
   */
  stateFile?: string;
  /** Images copied at once (registry destinations; bundles are written one image at a time). */
  imageConcurrency?: number;
  blobConcurrency?: number;
  logger?: Logger;
  progress?: CopyProgress;
}

/** Digest comparisons in flight at once: HEAD requests, cheap for any registry. */
const CHECK_CONCURRENCY = 16;

export type SyncAction = 'copy' | 'up-to-date' | 'delete' | 'failed';

export interface SyncItem {
  source: string;
  destination: string;
  action: SyncAction;
  digest?: string;
  error?: string;
}

export interface SyncReport {
  items: SyncItem[];
  copied: number;
  upToDate: number;
  deleted: number;
  failed: number;
}

/** One image to mirror: how to open its source, and where it goes. */
interface PlannedImage {
  key: string;
  sourceName: string;
  destRepository: string;
  tag: string;
  openSource(): Promise<ImageSource>;
  /** Digest the destination will hold after a copy, computed cheaply (HEAD, or GET for an index). */
  expectedDigest(): Promise<string>;
  bundleEntry?: BundleEntry;
}

export async function sync(options: SyncOptions): Promise<SyncReport> {
  const logger = options.logger ?? silentLogger;
  const planned = await planImages(options);
  const wanted = new Map<string, Set<string>>();
  for (const image of planned) {
    const tags = wanted.get(image.destRepository) ?? new Set<string>();
    tags.add(image.tag);
    wanted.set(image.destRepository, tags);
  }
  const mine = options.shard
    ? planned.filter((image) => shardOf(image.key, options.shard!.count) === options.shard!.index)
    : planned;
  logger.info(
    `sync: ${mine.length} image(s) to check${options.shard ? ` (shard ${options.shard.index + 1}/${options.shard.count} of ${planned.length})` : ''}`,
  );

  const destination = options.destination;
  if (options.stateFile && destination.kind !== 'registry') {
    throw new GantryError(
      'INVALID_ARGUMENT',
      '--state needs a registry destination (a bundle records what it holds itself)',
    );
  }
  const state = options.stateFile ? await SyncStateFile.open(options.stateFile) : undefined;
  const destTags = new Map<string, Promise<Set<string>>>();
  /** The destination's tags of a repository, listed once per sync (only with a state file). */
  const listedTags = (repository: string): Promise<Set<string>> => {
    let listed = destTags.get(repository);
    if (!listed && destination.kind === 'registry') {
      listed = listTagsOrNone(destination, repository).then((tags) => new Set(tags));
      destTags.set(repository, listed);
    }
    return listed ?? Promise.resolve(new Set());
  };
  const bundleImages =
    destination.kind === 'bundle' ? await readBundleIndex(destination.dir, { mustExist: false }) : undefined;
  const items: SyncItem[] = [];
  const failures: unknown[] = [];
  const verified = new Set<string>();
  // Digest checks are two small requests per image and run wide; copies are limited separately (a bundle is
  // one OCI layout whose index.json takes one writer at a time).
  const checkLimit = pLimit(CHECK_CONCURRENCY);
  const copyLimit = pLimit(destination.kind === 'bundle' ? 1 : Math.max(1, options.imageConcurrency ?? 3));
  let stop = false;

  const runOne = async (image: PlannedImage): Promise<void> => {
    if (stop) return;
    const destName = destinationName(destination, image.destRepository, image.tag);
    try {
      const recorded = state?.recorded(destName);
      const [expected, current] = await checkLimit(async () => {
        if (recorded === undefined) {
          return Promise.all([
            image.expectedDigest(),
            currentDigest(destination, image, bundleImages?.images),
          ]);
        }
        const [digest, listed] = await Promise.all([
          image.expectedDigest(),
          // Without a tag list (e.g. not allowed to list), the tag is asked for as without a state file.
          listedTags(image.destRepository).catch(() => undefined),
        ]);
        if (digest === recorded && listed?.has(image.tag)) return [digest, digest];
        return [digest, await currentDigest(destination, image, bundleImages?.images)];
      });
      if (current === expected) {
        items.push({
          source: image.sourceName,
          destination: destName,
          action: 'up-to-date',
          digest: expected,
        });
        state?.set(destName, expected);
        logger.info(`up to date: ${destName} (${expected})`);
        return;
      }
      if (options.dryRun) {
        items.push({ source: image.sourceName, destination: destName, action: 'copy', digest: expected });
        logger.info(`would copy: ${image.sourceName} -> ${destName}`);
        return;
      }
      if (options.source.kind === 'bundle' && image.bundleEntry) {
        const entry = image.bundleEntry;
        await copyLimit(() => verifyBundleImage((options.source as { dir: string }).dir, entry, verified));
      }
      await state?.forget(destName);
      const result = await copyLimit(() => copyOne(image, destination, options));
      if (bundleImages) {
        const entry: BundleEntry = {
          repository: image.destRepository,
          tag: image.tag,
          digest: result.digest,
          mediaType: result.mediaType,
        };
        bundleImages.images = bundleImages.images.filter((e) => bundleRefName(e) !== bundleRefName(entry));
        bundleImages.images.push(entry);
      }
      items.push({ source: image.sourceName, destination: destName, action: 'copy', digest: result.digest });
      state?.set(destName, result.digest);
      logger.info(`copied: ${image.sourceName} -> ${destName} (${result.digest})`);
    } catch (err) {
      state?.drop(destName);
      const message = err instanceof Error ? err.message : String(err);
      items.push({ source: image.sourceName, destination: destName, action: 'failed', error: message });
      logger.warn(`failed: ${image.sourceName}: ${message}`);
      failures.push(err);
      if (!options.keepGoing) stop = true;
    }
  };
  try {
    await Promise.all(mine.map((image) => runOne(image)));
    if (bundleImages && !options.dryRun)
      await writeBundleIndex((destination as { dir: string }).dir, bundleImages.images);

    if (options.deleteExtraneous && !stop) {
      items.push(...(await deleteExtraneous(destination, wanted, bundleImages?.images, options, logger)));
      if (bundleImages && !options.dryRun) {
        await writeBundleIndex((destination as { dir: string }).dir, bundleImages.images);
      }
    }
  } finally {
    // Saved however the run ends, so what it did check or copy is not checked in full again next time.
    if (state && !options.dryRun) {
      for (const item of items) if (item.action === 'delete') state.drop(item.destination);
      await state.save();
    }
  }
  const report: SyncReport = {
    items,
    copied: items.filter((i) => i.action === 'copy').length,
    upToDate: items.filter((i) => i.action === 'up-to-date').length,
    deleted: items.filter((i) => i.action === 'delete').length,
    failed: items.filter((i) => i.action === 'failed').length,
  };
  if (failures.length > 0 && !options.keepGoing) throw failures[0];
  return report;
}

function destinationName(destination: SyncDestination, repository: string, tag: string): string {
  return destination.kind === 'registry'
    ? `${destination.registry}/${repository}:${tag}`
    : `${destination.dir}:${repository}:${tag}`;
}

function destinationRepository(
  options: SyncOptions,
  sourceRegistry: string | undefined,
  repository: string,
): string {
  const parts: string[] = [];
  if (options.destination.kind === 'registry' && options.destination.prefix)
    parts.push(options.destination.prefix);
  if (options.scoped && sourceRegistry) parts.push(sourceRegistry.replace(/:/g, '-'));
  parts.push(repository);
  return parts.join('/');
}

async function planImages(options: SyncOptions): Promise<PlannedImage[]> {
  const source = options.source;
  const planned: PlannedImage[] = [];
  if (source.kind === 'bundle') {
    const index = await readBundleIndex(source.dir, { mustExist: true });
    for (const entry of index.images) {
      const ref = bundleRefName(entry);
      planned.push({
        key: ref,
        sourceName: `${source.dir}:${ref}`,
        destRepository: destinationRepository(options, undefined, entry.repository),
        tag: entry.tag,
        bundleEntry: entry,
        openSource: async () =>
          (await ociLayout()).openOciLayoutSource({ dir: source.dir, ref, name: `oci:${source.dir}:${ref}` }),
        expectedDigest: async () => entry.digest,
      });
    }
    return planned;
  }
  for (const repo of source.repos) {
    const client = source.clientFor(repo);
    const location = { registry: repo.registry, repository: repo.repository };
    const available = repo.selector.kind === 'list' ? [] : await client.listTags(location);
    // cosign's signature tags travel with their images; they are not images to mirror themselves.
    const tags = selectTags(repo.selector, available).filter((t) => !/^sha256-[a-f0-9]{64}(\.\w+)?$/.test(t));
    for (const tag of tags) {
      const ref: ImageReference = { ...location, tag };
      const name = formatImageReference(ref);
      planned.push({
        key: name,
        sourceName: name,
        destRepository: destinationRepository(options, repo.registry, repo.repository),
        tag,
        openSource: async () => openRegistrySource(client, ref),
        expectedDigest: () => expectedRegistryDigest(client, ref, options),
      });
    }
  }
  return planned;
}

/** The digest a copy would write: the source's own, or the chosen platform's image when not copying --all. */
async function expectedRegistryDigest(
  client: RegistryClient,
  ref: ImageReference,
  options: SyncOptions,
): Promise<string> {
  const head = await client.headManifest(ref, ref.tag ?? 'latest');
  if (!head) throw new GantryError('NOT_FOUND', 'no such image', { subject: formatImageReference(ref) });
  if (
    options.all ||
    (head.mediaType && !head.mediaType.includes('index') && !head.mediaType.includes('list'))
  ) {
    return head.digest;
  }
  const raw = await client.getManifest(ref, head.digest);
  const { manifest } = parseManifest(raw.bytes, raw.mediaType, formatImageReference(ref));
  if (!isIndex(manifest)) return raw.digest;
  const want = options.platform ?? hostPlatform();
  const child = manifest.manifests.find((d) => platformMatches(want, d.platform));
  if (!child)
    throw new GantryError('NO_MATCHING_PLATFORM', 'no image for the platform', {
      subject: formatImageReference(ref),
    });
  return child.digest;
}

async function currentDigest(
  destination: SyncDestination,
  image: PlannedImage,
  bundleImages: BundleEntry[] | undefined,
): Promise<string | undefined> {
  if (destination.kind === 'bundle') {
    return bundleImages?.find((e) => e.repository === image.destRepository && e.tag === image.tag)?.digest;
  }
  const head = await destination.client.headManifest(
    { registry: destination.registry, repository: image.destRepository },
    image.tag,
  );
  return head?.digest;
}

/** A destination repository's tags; none when the repository does not exist yet. */
function listTagsOrNone(
  destination: Extract<SyncDestination, { kind: 'registry' }>,
  repository: string,
): Promise<string[]> {
  return destination.client.listTags({ registry: destination.registry, repository }).catch((err: unknown) => {
    if (isGantryError(err, 'NOT_FOUND')) return [] as string[];
    throw err;
  });
}

async function copyOne(
  image: PlannedImage,
  destination: SyncDestination,
  options: SyncOptions,
): Promise<CopyResult> {
  const source = await image.openSource();
  try {
    let target: ImageDestination;
    if (destination.kind === 'registry') {
      target = openRegistryDestination(destination.client, {
        registry: destination.registry,
        repository: image.destRepository,
        tag: image.tag,
      });
    } else {
      const ref = bundleRefName({ repository: image.destRepository, tag: image.tag });
      target = await (await ociLayout()).openOciLayoutDestination({
        dir: destination.dir,
        ref,
        name: `oci:${destination.dir}:${ref}`,
      });
    }
    return await copyImage(source, target, {
      all: options.all,
      platform: options.platform,
      removeSignatures: options.removeSignatures,
      concurrency: options.blobConcurrency,
      logger: options.logger,
      progress: options.progress,
    });
  } finally {
    await source.close();
  }
}

/**
 * Removes destination tags the source set does not name. A registry deletes manifests, not tags, so a digest
 * is deleted only when no wanted tag points at it; otherwise the tag is reported as kept.
 */
async function deleteExtraneous(
  destination: SyncDestination,
  wanted: Map<string, Set<string>>,
  bundleImages: BundleEntry[] | undefined,
  options: SyncOptions,
  logger: Logger,
): Promise<SyncItem[]> {
  const items: SyncItem[] = [];
  if (destination.kind === 'bundle') {
    const images = bundleImages ?? [];
    for (const entry of [...images]) {
      const tags = wanted.get(entry.repository);
      if (!tags || tags.has(entry.tag)) continue;
      items.push({
        source: '',
        destination: `${destination.dir}:${bundleRefName(entry)}`,
        action: 'delete',
        digest: entry.digest,
      });
      if (!options.dryRun) images.splice(images.indexOf(entry), 1);
    }
    return items;
  }
  for (const [repository, tags] of wanted) {
    const location = { registry: destination.registry, repository };
    const existing = await listTagsOrNone(destination, repository);
    const keepDigests = new Set<string>();
    const extraneous: { tag: string; digest: string }[] = [];
    for (const tag of existing) {
      if (/^sha256-[a-f0-9]{64}(\.\w+)?$/.test(tag)) continue;
      const head = await destination.client.headManifest(location, tag);
      if (!head) continue;
      if (tags.has(tag)) keepDigests.add(head.digest);
      else extraneous.push({ tag, digest: head.digest });
    }
    for (const { tag, digest } of extraneous) {
      const name = `${destination.registry}/${repository}:${tag}`;
      if (keepDigests.has(digest)) {
        logger.warn(
          `kept ${name}: it shares manifest ${digest} with a synced tag, and registries delete manifests`,
        );
        continue;
      }
      items.push({ source: '', destination: name, action: 'delete', digest });
      logger.info(`${options.dryRun ? 'would delete' : 'deleted'}: ${name} (${digest})`);
      if (!options.dryRun) {
        await destination.client.deleteManifest(location, digest);
        keepDigests.add(digest); // deleted once; a second tag on it is gone too
      }
    }
  }
  return items;
}
