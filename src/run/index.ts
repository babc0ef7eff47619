/**
 * run: `gantry run` as a library call — make the image available in the store, unpack each layer once,
 * resolve the image's user, command, environment and working directory, choose the isolation level, and run
 * the command in the sandbox, returning its exit status.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GantryError } from '../errors/index.js';
import { removeAsContainerRoot, restoreOwners, runSandbox } from '../sandbox/helper.js';
import { buildIdMaps } from '../sandbox/idmap.js';
import { chooseIsolation, type IsolationChoice } from '../sandbox/isolation.js';
import { type EnvironmentReport, probeEnvironment } from '../sandbox/probe.js';
import type { IdMaps, IsolationRequest, NetworkMode, SandboxMount, SandboxSpec } from '../sandbox/spec.js';
import type { LayerStore } from '../store/index.js';
import type { Logger } from '../util/log.js';
import { planProcess } from './config.js';
import { ensureImage, type PullPolicy, type RegistryFactory, type StoredImage } from './image.js';
import { resolveUser } from './user.js';

export { parseVolume } from './config.js';
export type { PullPolicy, RegistryFactory } from './image.js';

/** Unpacks one layer blob into an empty directory: src/layer's unpackLayer. */
export type UnpackLayer = (options: {
  source: string;
  mediaType: string;
  target: string;
  whiteoutMode: 'overlay';
}) => Promise<{ diffId: string; ownersRecorded: number; skipped: { path: string; reason: string }[] }>;

export interface RunImageOptions {
  /** A transport reference: `registry/repo:tag`, `oci:DIR[:REF]`, `oci-archive:FILE`, ... */
  image: string;
  /** Replaces the image's Cmd. */
  command?: string[];
  /** `-e` values. */
  env?: string[];
  volumes?: SandboxMount[];
  workdir?: string;
  /** Replaces the image's User. */
  user?: string;
  network: NetworkMode;
  isolation: IsolationRequest;
  pull: PullPolicy;
  store: LayerStore;
  /** Creates the registry client when an image has to be pulled. */
  registry: RegistryFactory;
  logger: Logger;
  unpackLayer: UnpackLayer;
}

export interface RunImageResult {
  exitCode: number;
  isolation: IsolationChoice;
  /** Why the command did not start, for exit codes 126/127. */
  error?: string;
}

/**
 * Unpacks the image's layers that the store does not hold yet, each into its own directory with overlayfs
 * whiteouts (they become lowerdirs), checking the diffID the config promises; returns them base first.
 * With subordinate id maps, owners the unprivileged unpack could only record are applied as the container
 * will see them (so the store holds each layer in its final form).
 */
async function unpackLayers(
  image: StoredImage,
  o: RunImageOptions,
  idMaps: IdMaps | undefined,
): Promise<string[]> {
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  return Promise.all(
    image.manifest.layers.map((layer, i) => {
      const diffId = diffIds[i] as string;
      return o.store.ensureLayer(diffId, async (target) => {
        const source = o.store.blobPath(layer.digest);
        const result = await o.unpackLayer({
          source,
          mediaType: layer.mediaType,
          target,
          whiteoutMode: 'overlay',
        });
        if (result.diffId !== diffId) {
          throw new GantryError(
            'DIGEST_MISMATCH',
            `layer unpacks to ${result.diffId}, the image config says ${diffId}`,
            {
              subject: layer.digest,
            },
          );
        }
        for (const s of result.skipped)
          o.logger.warn(`layer ${layer.digest}: skipped ${s.path}: ${s.reason}`);
        if (result.ownersRecorded > 0 && idMaps?.useHelpers) await restoreOwners({ dir: target, idMaps });
      });
    }),
  );
}

/** The topmost layer's copy of an /etc file, read without following symlinks out of the layer. */
async function readImageFile(layers: string[], name: 'passwd' | 'group'): Promise<string | undefined> {
  for (const dir of [...layers].reverse()) {
    const etc = await lstat(join(dir, 'etc')).catch(() => undefined);
    if (!etc?.isDirectory()) continue;
    const file = await lstat(join(dir, 'etc', name)).catch(() => undefined);
    if (file?.isFile() && file.size < 4 * 1024 * 1024) return readFile(join(dir, 'etc', name), 'utf8');
  }
  return undefined;
}

function idMapsFor(report: EnvironmentReport, logger: Logger): IdMaps {
  const ranges = report.newuidmap ? report : { subuid: [], subgid: [] };
  const { maps, warning } = buildIdMaps({
    uid: report.uid,
    gid: report.gid,
    subuid: ranges.subuid,
    subgid: ranges.subgid,
  });
  if (warning)
    logger.warn(report.newuidmap ? warning : `newuidmap/newgidmap are missing (install uidmap): ${warning}`);
  return maps;
}

/** Deletes scratch a killed run left; files it chowned to subordinate ids need the user namespace. */
async function removeLeftover(dir: string, idMaps: IdMaps | undefined): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (!idMaps?.useHelpers) throw err;
    await removeAsContainerRoot({ dir, idMaps });
  }
}

export async function runImage(o: RunImageOptions): Promise<RunImageResult> {
  const scratch = await o.store.makeScratch('run');
  try {
    // Probing runs while the image is pulled; its failure surfaces when awaited.
    const probing = probeEnvironment({
      scratchDir: join(scratch, 'probe'),
      cacheFile: join(o.store.root, 'probe-cache.json'),
    });
    probing.catch(() => undefined);
    const image = await ensureImage(o.store, o.image, {
      policy: o.pull,
      registry: o.registry,
      logger: o.logger,
    });
    const report = await probing;
    const choice = chooseIsolation(report, o.isolation, { network: o.network });
    for (const w of choice.warnings) o.logger.warn(w);
    o.logger.debug(`isolation ${choice.level} (${choice.reason}), root filesystem ${choice.rootfs}`);
    const idMaps = choice.level === 'rootless' ? idMapsFor(report, o.logger) : undefined;
    const swept = await o.store
      .sweepStale((dir) => removeLeftover(dir, idMaps))
      .catch((err: unknown) => {
        o.logger.warn(`could not remove scratch left by killed runs: ${String(err)}`);
        return [];
      });
    for (const dir of swept) o.logger.debug(`removed ${dir}, left by a killed run`);
    const layers = await unpackLayers(image, o, idMaps);
    const runtime = image.config.config ?? {};
    const user = resolveUser(o.user ?? runtime.User ?? '', {
      passwd: await readImageFile(layers, 'passwd'),
      group: await readImageFile(layers, 'group'),
    });
    const hostEnv = process.env;
    const plan = planProcess(
      runtime,
      { command: o.command, env: o.env, workdir: o.workdir, hostEnv },
      user.home,
    );
    const dirs = {
      upper: join(scratch, 'upper'),
      work: join(scratch, 'work'),
      target: join(scratch, 'rootfs'),
    };
    for (const d of Object.values(dirs)) await mkdir(d);
    const spec: SandboxSpec = {
      isolation: choice.level,
      rootfs: { mode: choice.rootfs, layers, ...dirs },
      hostname: randomBytes(6).toString('hex'),
      network: o.network,
      mounts: o.volumes ?? [],
      process: { ...plan, uid: user.uid, gid: user.gid, groups: user.groups },
      scratch,
    };
    if (idMaps) spec.idMaps = idMaps;
    const result = await runSandbox(spec, { logger: o.logger });
    return result.error === undefined
      ? { exitCode: result.exitCode, isolation: choice }
      : { ...result, isolation: choice };
  } finally {
    // The helper removes the scratch directory itself (from inside the user namespace); this catches
    // what is left when it never started.
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    await o.store.releaseScratch(scratch);
  }
}
