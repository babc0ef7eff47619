/**
 * build/sources: what a `--from=` names (COPY --from, RUN --mount from=) — a `--build-context` (which wins, as
 * in BuildKit), a stage of this Dockerfile by name or index, or an image. A directory context is read like the
 * build context (its own .dockerignore applies, the copy is keyed on file content); a stage or image is a
 * stage state whose key stands for its content, flattened into a directory only when a step needs its files.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createIgnoreMatcher,
  type IgnoreMatcher,
  type Instruction,
  parseDockerignore,
  resolveSource,
} from '../dockerfile/index.js';
import { asGantryError, GantryError } from '../errors/index.js';
import { formatPlatform, type Platform, sha256Digest } from '../oci/index.js';
import { emptyConfig } from './config.js';
import { fingerprintEntries, planCopy } from './copy-plan.js';
import { stageCopy } from './copy-stage.js';
import { contextKey } from './flags.js';
import { cachedLayerStep } from './layer-step.js';
import { flatten } from './lower.js';
import type { BuildContext, BuildOptions, NamedContext, StageState } from './types.js';

/** A directory with a source's files, removed again by `close`. */
export interface SourceTree {
  root: string;
  close(): Promise<void>;
}

export type FromSource =
  /** Files on the host, read like the build context: plan with `ignore`, key on their content. */
  | { kind: 'dir'; root: string; ignore: IgnoreMatcher }
  /** A stage or image: `state.key` stands for its content; `open` flattens its layers. */
  | { kind: 'state'; state: StageState; open(): Promise<SourceTree> };

/** The build context itself (COPY without --from). */
export function contextSource(ctx: BuildContext): FromSource {
  return { kind: 'dir', root: ctx.options.contextDir, ignore: ctx.ignore };
}

/** The `--build-context` that replaces `name`, if any. */
export function namedContext(contexts: BuildOptions['contexts'], name: string): NamedContext | undefined {
  return contexts?.[contextKey(name)];
}

/** A directory context's root and ignore rules (its own `.dockerignore`, as BuildKit reads it). */
export async function dirContext(context: Extract<NamedContext, { kind: 'dir' }>): Promise<FromSource> {
  const s = await stat(context.dir).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw new GantryError('NOT_FOUND', `${context.dir} is not a directory`, { subject: context.spec });
  }
  let patterns: string[] = [];
  try {
    patterns = parseDockerignore(await readFile(join(context.dir, '.dockerignore'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw asGantryError(err, 'IO', 'cannot read .dockerignore', context.spec);
    }
  }
  return { kind: 'dir', root: context.dir, ignore: createIgnoreMatcher(patterns) };
}

/** A stage state as a FromSource whose files are flattened into scratch space on demand. */
export function stateSource(ctx: BuildContext, state: StageState): FromSource {
  return {
    kind: 'state',
    state,
    async open() {
      await ctx.ensureLayers(state.layers);
      const root = await flatten(ctx.options.store.tmpDir, state.layers);
      return { root, close: () => rm(root, { recursive: true, force: true }) };
    },
  };
}

/**
 * The stage state `from` names (a directory context as its one-layer state), with its layers' blobs made
 * local, for callers that read the layers themselves (RUN --mount from=).
 */
export async function fromState(
  ctx: BuildContext,
  instruction: Instruction,
  from: string,
  subject: string,
  options: { allowIndex: boolean } = { allowIndex: true },
): Promise<StageState> {
  const named = namedContext(ctx.options.contexts, from);
  const state = named
    ? await ctx.contextImage(named, subject)
    : await stageOrImage(ctx, instruction, from, subject, options);
  await ctx.ensureLayers(state.layers);
  return state;
}

async function stageOrImage(
  ctx: BuildContext,
  instruction: Instruction,
  from: string,
  subject: string,
  options: { allowIndex: boolean },
): Promise<StageState> {
  const source = resolveSource(ctx.ir, instruction, from, options);
  return source.kind === 'stage'
    ? await (ctx.stages.get(source.index) as Promise<StageState>)
    : await ctx.imageBase(source.ref, subject);
}

/** What `from` names, waiting for a stage still building. */
export async function fromSource(
  ctx: BuildContext,
  instruction: Instruction,
  from: string,
  subject: string,
  options: { allowIndex: boolean } = { allowIndex: true },
): Promise<FromSource> {
  const named = namedContext(ctx.options.contexts, from);
  if (named?.kind === 'dir') return dirContext(named);
  if (named) return stateSource(ctx, await ctx.contextImage(named, subject));
  return stateSource(ctx, await stageOrImage(ctx, instruction, from, subject, options));
}

/**
 * A directory context used as a stage (`FROM NAME`, or a stage NAME replaces): one layer holding the directory
 * (after its .dockerignore, owned by root) over an empty config, cached on the files' content.
 */
export async function dirState(
  ctx: BuildContext,
  context: Extract<NamedContext, { kind: 'dir' }>,
  platform: Platform,
): Promise<StageState> {
  const source = (await dirContext(context)) as Extract<FromSource, { kind: 'dir' }>;
  const o = ctx.options;
  const entries = await planCopy({
    root: source.root,
    ignore: source.ignore,
    sources: ['.'],
    dest: '/',
    destIsDir: true,
    destExists: true,
    subject: context.spec,
  });
  const scratch: StageState = {
    config: emptyConfig(platform),
    layers: [],
    key: sha256Digest(`scratch:${formatPlatform(platform)}`),
  };
  const inputs = {
    parent: scratch.key,
    instruction: 'build-context',
    env: [],
    files: await fingerprintEntries(entries),
    options: { compression: o.compression ?? 'gzip', timestamp: String(o.timestamp ?? '') },
  };
  const { state } = await cachedLayerStep(ctx, scratch, inputs, `build context ${context.spec}`, (changes) =>
    stageCopy({
      entries,
      changes,
      sourceOwner: () => ({ uid: 0, gid: 0 }),
      existingDir: async () => undefined,
      subject: context.spec,
    }).then(() => undefined),
  );
  return state;
}
