/**
 * build/builder: `build()` — Dockerfile to image. Parses with the front end, builds only the stages the target
 * needs (each stage waits for the stages it reads, so independent stages build concurrently), dispatches every
 * instruction (metadata into the config, COPY/ADD through build/copy-step and RUN through build/run-step, both cached), and writes the
 * final config blob. Nothing is exported here: a failing step throws before any output exists.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import {
  createIgnoreMatcher,
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
import { type Descriptor, type ImageManifest, MediaType, sha256Digest } from '../oci/index.js';
import { ensureImage } from '../run/image.js';
import { applyInstruction, type ConfigState, emptyConfig, historyText, type ImageConfig } from './config.js';
import { copyStep } from './copy-step.js';
import { runStep } from './run-step.js';
import type { BuildContext, BuildOptions, BuildResult, StageState, StepReport } from './types.js';

interface StageDone extends StageState {
  variables: StageVariables;
}

async function imageState(ctx: BuildContext, ref: string): Promise<StageState> {
  const o = ctx.options;
  const image = await ensureImage(o.store, ref, {
    policy: o.pull,
    registry: async () => o.registry,
    logger: o.logger,
  });
  const config = JSON.parse(
    await readFile(o.store.blobPath(image.manifest.config.digest), 'utf8'),
  ) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  return {
    config: { ...config, config: config.config ?? {}, history: config.history ?? [] },
    layers: image.manifest.layers.map((l, i) => ({
      digest: l.digest,
      diffId: diffIds[i] as string,
      size: l.size,
      mediaType: l.mediaType,
      path: o.store.blobPath(l.digest),
    })),
    key: image.digest,
  };
}

function memoize<T>(fn: (key: string, subject: string) => Promise<T>) {
  const seen = new Map<string, Promise<T>>();
  return (key: string, subject: string): Promise<T> => {
    let p = seen.get(key);
    if (!p) {
      p = fn(key, subject);
      seen.set(key, p);
    }
    return p;
  };
}

async function buildStage(ctx: BuildContext, planned: PlannedStage, done: Map<number, Promise<StageDone>>) {
  const { stage } = planned;
  const ir = ctx.ir;
  const label = stage.name ?? `stage-${stage.index}`;
  const fromSubject = `${ir.file}:${stage.from.location.line}`;
  let state: StageState;
  let variables: StageVariables;
  let triggers: Instruction[] = [];
  if (stage.base.kind === 'stage') {
    const base = await (done.get(stage.base.index) as Promise<StageDone>);
    state = base;
    variables = initialVariables({ base: base.variables });
    triggers = inheritedTriggers(ir, stage);
  } else if (stage.base.kind === 'image') {
    state = await ctx.imageBase(stage.base.ref, fromSubject);
    variables = initialVariables({ imageEnv: state.config.config.Env ?? [] });
    triggers = parseImageTriggers(state.config.config.OnBuild ?? [], stage.from.location);
  } else {
    const platform = stage.platform ?? ir.platform.target;
    state = {
      config: emptyConfig(platform),
      layers: [],
      key: sha256Digest(`scratch:${JSON.stringify(platform)}`),
    };
    // The default PATH a scratch stage starts with is visible to expansions, as in BuildKit.
    variables = initialVariables({ imageEnv: state.config.config.Env ?? [] });
  }
  // Triggers run once, in the stage that builds on the image; the result does not carry them on.
  if (state.config.config.OnBuild) {
    const { OnBuild: _, ...rest } = state.config.config;
    state = { ...state, config: { ...state.config, config: rest } };
  }
  let configState: ConfigState = { cmdSet: false };
  for (const raw of [...triggers, ...stage.instructions]) {
    const subject = `${raw.location.file}:${raw.location.line}`;
    const expanded = expandInstruction(ir, variables, raw);
    const instruction = expanded.instruction;
    let report: Omit<StepReport, 'stage' | 'location'>;
    try {
      if (instruction.kind === 'RUN') {
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
    ctx.options.onStep?.({ ...report, stage: label, location: subject });
  }
  return { ...state, variables };
}

/** Builds the target stage of a Dockerfile; see BuildOptions. */
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
  const ir = parseDockerfile(text, {
    file,
    buildArgs: options.buildArgs ?? {},
    ...(options.target ? { target: options.target } : {}),
  });
  const plan = stagesNeeded(ir, options.target);
  const ignore = createIgnoreMatcher((await loadDockerignore(options.contextDir, dockerfile)).patterns);
  const done = new Map<number, Promise<StageDone>>();
  const ctx: BuildContext = {
    options,
    ir,
    ignore,
    stages: done as Map<number, Promise<StageState>>,
    imageBase: memoize((ref) => imageState(ctx, ref)),
    createdAt: new Date(
      options.timestamp === undefined ? Date.now() : options.timestamp * 1000,
    ).toISOString(),
  };
  const steps: StepReport[] = [];
  const onStep = options.onStep;
  ctx.options = {
    ...options,
    onStep: (r) => {
      steps.push(r);
      onStep?.(r);
    },
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
  const final = await (done.get(plan.target) as Promise<StageDone>);
  return finish(ctx, final, steps);
}

async function finish(ctx: BuildContext, state: StageState, steps: StepReport[]): Promise<BuildResult> {
  const o = ctx.options;
  const c = { ...state.config.config };
  if (o.labels && Object.keys(o.labels).length > 0) c.Labels = { ...(c.Labels ?? {}), ...o.labels };
  const config: ImageConfig = { ...state.config, created: ctx.createdAt, config: c };
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
