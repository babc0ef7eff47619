/**
 * build/builder: `build()` — Dockerfile to image for one platform. Parses with the front end, builds only the
 * stages the target needs (each stage waits for the stages it reads, so independent stages build
 * concurrently), dispatches every instruction (metadata into the config, COPY/ADD through build/copy-step and
 * RUN through build/run-step, both cached), and writes the final config blob. `--build-context` names replace
 * stages and images (build/sources); `--squash` folds the build's own layers into one. Nothing is exported
 * here: a failing step throws before any output exists.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import {
  createIgnoreMatcher,
  type DockerfileIR,
  expandInstruction,
  type Instruction,
  inheritedTriggers,
  initialVariables,
  loadDockerignore,
  type PlannedStage,
  parseDockerfile,
  parseImageTriggers,
  type StageVariables,
  stagesNeeded,
} from '../dockerfile/index.js';
import { asGantryError, GantryError } from '../errors/index.js';
import { createLayer } from '../layer/index.js';
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageManifest,
  MediaType,
  type Platform,
  sha256Digest,
} from '../oci/index.js';
import type { LayerStore } from '../store/index.js';
import { type ImageSpec, loadImage } from './base-image.js';
import {
  applyInstruction,
  type ConfigState,
  emptyConfig,
  type HistoryEntry,
  historyText,
  type ImageConfig,
} from './config.js';
import { copyStep } from './copy-step.js';
import { type BuiltLayer, flatten } from './lower.js';
import { cannotRun } from './platform.js';
import { runStep } from './run-step.js';
import { dirState, namedContext } from './sources.js';
import type {
  BuildContext,
  BuildOptions,
  BuildResult,
  NamedContext,
  StageState,
  StepReport,
} from './types.js';

/** The builder's own context: what steps see, plus the target platform and per-build helpers. */
interface BuilderContext extends BuildContext {
  target: Platform;
  /** Why RUN cannot execute this platform's binaries here, or undefined. */
  canRun: (platform: Platform) => Promise<string | undefined>;
  /** Remembers which layers live in the build cache, for the lazy store view. */
  noteLayers: (layers: readonly BuiltLayer[]) => void;
}

interface StageDone extends StageState {
  variables: StageVariables;
  platform: Platform;
  /** How many of `layers` and of `config.history` come from the base image (what --squash keeps). */
  baseLayers: number;
  baseHistory: number;
}

/** Runs `fn` once per key; later callers share the first call's promise. */
function once<A extends unknown[], T>(key: (...args: A) => string, fn: (...args: A) => Promise<T>) {
  const seen = new Map<string, Promise<T>>();
  return (...args: A): Promise<T> => {
    const k = key(...args);
    let p = seen.get(k);
    if (!p) {
      p = fn(...args);
      seen.set(k, p);
    }
    return p;
  };
}

/**
 * A view of the store whose layer unpacking first fetches the blob when it is a lazily imported cache layer,
 * so layers are fetched only when a step really reads them (src/build/lower unpacks through ensureLayer).
 */
function lazyStore(store: LayerStore, before: (diffId: string) => Promise<void>): LayerStore {
  const view = Object.create(store) as LayerStore;
  view.ensureLayer = (diffId, unpack) =>
    store.ensureLayer(diffId, async (dir) => {
      await before(diffId);
      await unpack(dir);
    });
  return view;
}

/** The stages a build context replaces become empty: neither they nor what only they need are built. */
function withoutReplacedStages(ir: DockerfileIR, options: BuildOptions): DockerfileIR {
  const contexts = options.contexts;
  if (!contexts || Object.keys(contexts).length === 0) return ir;
  return {
    ...ir,
    stages: ir.stages.map((s) =>
      s.name && namedContext(contexts, s.name)
        ? { ...s, base: { kind: 'scratch' as const }, instructions: [] }
        : s,
    ),
  };
}

function historyLength(state: StageState): number {
  return state.config.history?.length ?? 0;
}

async function buildStage(
  ctx: BuilderContext,
  planned: PlannedStage,
  done: Map<number, Promise<StageDone>>,
): Promise<StageDone> {
  const { stage } = planned;
  const ir = ctx.ir;
  const label = stage.name ?? `stage-${stage.index}`;
  const fromSubject = `${ir.file}:${stage.from.location.line}`;
  let platform = stage.platform ?? ctx.target;
  const replacement = stage.name ? namedContext(ctx.options.contexts, stage.name) : undefined;
  if (replacement) {
    // The whole stage is the context, as in BuildKit: none of its instructions run.
    const state = await ctx.contextImage(replacement, fromSubject, platform);
    return {
      ...state,
      variables: initialVariables({ imageEnv: state.config.config.Env ?? [] }),
      platform,
      baseLayers: state.layers.length,
      baseHistory: historyLength(state),
    };
  }
  let state: StageState;
  let variables: StageVariables;
  let triggers: Instruction[] = [];
  let baseLayers: number;
  let baseHistory: number;
  if (stage.base.kind === 'stage') {
    const base = await (done.get(stage.base.index) as Promise<StageDone>);
    state = base;
    platform = stage.platform ?? base.platform;
    variables = initialVariables({ base: base.variables });
    triggers = inheritedTriggers(ir, stage);
    ({ baseLayers, baseHistory } = base);
  } else if (stage.base.kind === 'image') {
    const named = namedContext(ctx.options.contexts, stage.base.ref);
    state = named
      ? await ctx.contextImage(named, fromSubject, platform)
      : await ctx.imageBase(stage.base.ref, fromSubject, platform);
    variables = initialVariables({ imageEnv: state.config.config.Env ?? [] });
    triggers = parseImageTriggers(state.config.config.OnBuild ?? [], stage.from.location);
    baseLayers = state.layers.length;
    baseHistory = historyLength(state);
  } else {
    state = {
      config: emptyConfig(platform),
      layers: [],
      key: sha256Digest(`scratch:${JSON.stringify(platform)}`),
    };
    // The default PATH a scratch stage starts with is visible to expansions, as in BuildKit.
    variables = initialVariables({ imageEnv: state.config.config.Env ?? [] });
    baseLayers = 0;
    baseHistory = 0;
  }
  // Triggers run once, in the stage that builds on the image; the result does not carry them on.
  if (state.config.config.OnBuild) {
    const { OnBuild: _, ...rest } = state.config.config;
    state = { ...state, config: { ...state.config, config: rest } };
  }
  let configState: ConfigState = { cmdSet: false };
  for (const raw of [...triggers, ...stage.instructions]) {
    const subject = `${raw.location.file}:${raw.location.line}`;
    ctx.options.onStepStart?.({ stage: label, location: subject, kind: raw.kind, text: raw.original });
    const expanded = expandInstruction(ir, variables, raw);
    const instruction = expanded.instruction;
    let report: Omit<StepReport, 'stage' | 'location'>;
    try {
      if (instruction.kind === 'RUN') {
        const why = await ctx.canRun(platform);
        if (why) throw new GantryError('INVALID_ARGUMENT', `RUN ${why}`, { subject });
        ({ state, report } = await runStep(ctx, state, instruction, variables));
      } else if (instruction.kind === 'COPY' || instruction.kind === 'ADD') {
        ({ state, report } = await copyStep(ctx, state, instruction));
      } else {
        const applied = applyInstruction(state.config, instruction, configState);
        configState = applied.state;
        const created_by = historyText(instruction, state.config.config.Shell);
        const history = [
          ...(applied.image.history ?? []),
          { created: ctx.createdAt, created_by, empty_layer: true },
        ];
        state = { ...state, config: { ...applied.image, history } };
        report = { instruction: created_by, cache: 'none' };
      }
    } catch (err) {
      throw asGantryError(err, 'IO', `${instruction.kind} failed`, subject);
    }
    variables = expanded.variables;
    ctx.noteLayers(state.layers);
    ctx.options.onStep?.({ ...report, stage: label, location: subject });
  }
  return { ...state, variables, platform, baseLayers, baseHistory };
}

/** Builds the target stage of a Dockerfile for one platform; see BuildOptions. */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const dockerfile = options.dockerfile ?? join(options.contextDir, 'Dockerfile');
  let text: string;
  try {
    text = await readFile(dockerfile, 'utf8');
  } catch (err) {
    throw asGantryError(err, 'NOT_FOUND', 'cannot read the Dockerfile', dockerfile);
  }
  const rel = relative(process.cwd(), dockerfile);
  const file = isAbsolute(rel) || rel.startsWith('..') ? dockerfile : rel;
  const target = options.platform ?? hostPlatform();
  const parsed = parseDockerfile(text, {
    file,
    buildArgs: options.buildArgs ?? {},
    ...(options.target ? { target: options.target } : {}),
    platform: { build: hostPlatform(), target },
  });
  const ir = withoutReplacedStages(parsed, options);
  const plan = stagesNeeded(ir, options.target);
  const ignore = createIgnoreMatcher((await loadDockerignore(options.contextDir, dockerfile)).patterns);
  const done = new Map<number, Promise<StageDone>>();
  const steps: StepReport[] = [];
  // Cache layers by diffID, so the store view can fetch a lazily imported layer before unpacking it.
  const cacheLayers = new Map<string, string>();
  const cachePath = (l: BuiltLayer) => l.path === options.cache.blobPath(l.digest);
  const ensureLayers = async (layers: readonly BuiltLayer[]) => {
    for (const l of layers) if (cachePath(l)) await options.cache.ensureBlob(l.digest);
  };
  const loadSpec = (spec: ImageSpec, platform: Platform, subject: string) =>
    loadImage(spec, {
      store: options.store,
      registry: options.registry,
      logger: options.logger,
      policy: options.pull,
      platform,
      subject,
    }).then((l) => l.state);
  const image = once(
    (spec: ImageSpec, platform: Platform, _subject: string) =>
      JSON.stringify([spec, formatPlatform(platform)]),
    loadSpec,
  );
  const ctx: BuilderContext = {
    options: {
      ...options,
      store: lazyStore(options.store, async (diffId) => {
        const digest = cacheLayers.get(diffId);
        if (digest) await options.cache.ensureBlob(digest);
      }),
      onStep: (r) => {
        steps.push(r);
        options.onStep?.(r);
      },
    },
    ir,
    ignore,
    stages: done as Map<number, Promise<StageState>>,
    target,
    imageBase: (ref, subject, platform = target) => image({ kind: 'ref', ref }, platform, subject),
    contextImage: once(
      (c: NamedContext, _subject: string, platform: Platform = target) =>
        JSON.stringify([c, formatPlatform(platform)]),
      (c: NamedContext, subject: string, platform: Platform = target): Promise<StageState> => {
        if (c.kind === 'dir') return dirState(ctx, c, platform);
        const spec: ImageSpec =
          c.kind === 'image'
            ? { kind: 'ref', ref: c.ref }
            : {
                kind: 'oci-layout',
                dir: c.dir,
                ...(c.tag ? { tag: c.tag } : {}),
                ...(c.digest ? { digest: c.digest } : {}),
              };
        return image(spec, platform, `${subject} (${c.spec})`);
      },
    ),
    ensureLayers,
    canRun: once(formatPlatform, (p: Platform) => cannotRun(p)),
    noteLayers: (layers) => {
      for (const l of layers) if (cachePath(l)) cacheLayers.set(l.diffId, l.digest);
    },
    createdAt: new Date(
      options.timestamp === undefined ? Date.now() : options.timestamp * 1000,
    ).toISOString(),
  };
  // Every stage starts at once and waits for what it reads; plan.stages is in dependency order.
  for (const planned of plan.stages) {
    const p = Promise.all(planned.dependsOn.map((d) => done.get(d))).then(() =>
      buildStage(ctx, planned, done),
    );
    p.catch(() => undefined);
    done.set(planned.stage.index, p);
  }
  await Promise.all(done.values());
  let final = await (done.get(plan.target) as Promise<StageDone>);
  if (options.squash) final = await squash(ctx, final);
  return finish(ctx, final, steps);
}

/**
 * `--squash`, as `buildah bud --help` describes it: the base image's layers stay, every layer the build made
 * becomes one (the difference between the flattened base and the flattened result). The build's history
 * entries are kept, all marked empty except the last, which the squashed layer belongs to (as Buildah does).
 */
async function squash(ctx: BuildContext, state: StageDone): Promise<StageDone> {
  const own = state.layers.slice(state.baseLayers);
  if (own.length <= 1) return state;
  const o = ctx.options;
  await ctx.ensureLayers(state.layers);
  const scratch = await o.store.makeScratch('squash');
  const temp = o.cache.tempPath('squash');
  try {
    const base = await flatten(scratch, state.layers.slice(0, state.baseLayers));
    const all = await flatten(scratch, state.layers);
    const created = await createLayer({
      changes: all,
      base,
      outputPath: temp,
      compression: o.compression ?? 'gzip',
      ...(o.timestamp === undefined ? {} : { sourceDateEpoch: o.timestamp }),
    });
    const path = await o.cache.adoptBlob(temp, created.digest);
    const kept = state.layers.slice(0, state.baseLayers);
    const history = state.config.history ?? [];
    const ownHistory: HistoryEntry[] = history
      .slice(state.baseHistory)
      .map((h) => ({ ...h, empty_layer: true }));
    const last = ownHistory.pop();
    if (last) {
      const { empty_layer: _, ...entry } = last;
      ownHistory.push(entry);
    }
    return {
      ...state,
      layers: [...kept, { ...created, path }],
      config: {
        ...state.config,
        rootfs: { type: 'layers', diff_ids: [...kept.map((l) => l.diffId), created.diffId] },
        history: [...history.slice(0, state.baseHistory), ...ownHistory],
      },
    };
  } finally {
    await rm(temp, { force: true });
    await rm(scratch, { recursive: true, force: true });
    await o.store.releaseScratch(scratch);
  }
}

async function finish(ctx: BuildContext, state: StageDone, steps: StepReport[]): Promise<BuildResult> {
  const o = ctx.options;
  const c = { ...state.config.config };
  if (o.labels && Object.keys(o.labels).length > 0) c.Labels = { ...(c.Labels ?? {}), ...o.labels };
  let config: ImageConfig = { ...state.config, created: ctx.createdAt, config: c };
  if (o.platform) {
    // An explicit --platform names the result's platform, whatever the final stage's base said; the base's
    // variant stays only when os and architecture agree and no variant was asked for (BuildKit's rule).
    const p = o.platform;
    const same = p.os === config.os && p.architecture === config.architecture;
    const { variant, ...rest } = config;
    const kept = p.variant ?? (same ? variant : undefined);
    config = { ...rest, os: p.os, architecture: p.architecture, ...(kept ? { variant: kept } : {}) };
  }
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256Digest(configBytes);
  const temp = o.cache.tempPath('config');
  await writeFile(temp, configBytes);
  await rename(temp, o.cache.blobPath(configDigest));
  const layers: Descriptor[] = state.layers.map((l) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
  }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length },
    layers,
    ...(o.annotations && Object.keys(o.annotations).length > 0 ? { annotations: { ...o.annotations } } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  if (state.layers.some((l) => !l.diffId)) {
    throw new GantryError('MANIFEST_INVALID', 'a base layer has no diff_id', { subject: ctx.ir.file });
  }
  return {
    config,
    configDigest,
    manifest: { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` },
    layers: state.layers,
    steps,
  };
}
