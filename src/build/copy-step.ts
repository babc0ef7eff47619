/**
 * build/copy-step: COPY and ADD. Plans which files the step copies (from the context after ignore rules, or
 * from another stage or image), keys the step on exactly their content and metadata, and stages them into the
 * changes directory with the owners and modes the instruction asks for. Nothing runs in the container.
 */
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import type { StepInputs } from '../cache/key.js';
import {
  type AddInstruction,
  type CopyInstruction,
  createIgnoreMatcher,
  type IgnoreMatcher,
} from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { resolveUser } from '../run/user.js';
import { historyText } from './config.js';
import { fingerprintEntries, planCopy } from './copy-plan.js';
import { type Owner, stageCopy } from './copy-stage.js';
import { cachedLayerStep, type StepOutcome, where } from './layer-step.js';
import { flatten, layerDirs, lookup, readImageText } from './lower.js';
import { fromState } from './sources.js';
import type { BuildContext, StageState } from './types.js';

/** `--chown` to ids: names from the image's /etc/passwd and /etc/group; a lone user also gives the group. */
async function chownIds(dirs: readonly string[], chown: string): Promise<Owner> {
  const user = resolveUser(chown, {
    passwd: await readImageText(dirs, '/etc/passwd'),
    group: await readImageText(dirs, '/etc/group'),
  });
  if (!chown.includes(':') && /^\d+$/.test(chown)) return { uid: user.uid, gid: user.uid };
  return { uid: user.uid, gid: user.gid };
}

function resolveDest(dest: string, workdir: string): { path: string; dir: boolean } {
  const dir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const path = posix.isAbsolute(dest) ? posix.normalize(dest) : posix.join(workdir || '/', dest);
  return { path: dir && !path.endsWith('/') ? `${path}/` : path, dir };
}

export async function copyStep(
  ctx: BuildContext,
  state: StageState,
  instruction: CopyInstruction | AddInstruction,
): Promise<StepOutcome> {
  const o = ctx.options;
  const subject = where(ctx, instruction.location.line);
  if (
    instruction.kind === 'ADD' &&
    instruction.sources.some((s) => /^[a-z]+:\/\//.test(s) || s.startsWith('git@'))
  ) {
    throw new GantryError('INVALID_ARGUMENT', 'ADD from URLs and Git is not supported yet', { subject });
  }
  if (instruction.inline.length > 0) {
    throw new GantryError('INVALID_ARGUMENT', `${instruction.kind} heredocs are not supported yet`, {
      subject,
    });
  }
  const dirs = await layerDirs(o.store, state.layers);
  const dest = resolveDest(instruction.dest, state.config.config.WorkingDir ?? '/');
  const existing = await lookup(dirs, dest.path);
  const destIsDir = dest.dir || Boolean(existing?.isDirectory());
  const destExists = existing !== undefined;
  const owner = instruction.chown ? await chownIds(dirs, instruction.chown) : undefined;
  const from = instruction.kind === 'COPY' ? instruction.from : undefined;
  const history = historyText(instruction, undefined);
  const normalised = JSON.stringify({
    kind: instruction.kind,
    sources: instruction.sources,
    dest: dest.path,
    owner,
    chmod: instruction.chmod,
    excludes: instruction.excludes,
  });
  const options: Record<string, string> = {
    compression: o.compression ?? 'gzip',
    timestamp: String(o.timestamp ?? ''),
    destIsDir: String(destIsDir),
  };
  // Owners read back from the unpacked layers are right when the store was unpacked as root (docs/build.md).
  const existingDir = async (path: string) => {
    const s = await lookup(dirs, path);
    return s?.isDirectory() ? { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid } : undefined;
  };
  if (from === undefined) {
    const excludes = instruction.excludes.length > 0 ? createIgnoreMatcher(instruction.excludes) : undefined;
    const ignore: IgnoreMatcher = excludes
      ? {
          ...ctx.ignore,
          hasExceptions: ctx.ignore.hasExceptions || excludes.hasExceptions,
          matches: (p: string) => ctx.ignore.matches(p) || excludes.matches(p),
        }
      : ctx.ignore;
    const entries = await planCopy({
      root: o.contextDir,
      ignore,
      sources: instruction.sources,
      dest: dest.path,
      destIsDir,
      destExists,
      subject,
    });
    const files = await fingerprintEntries(entries);
    const inputs: StepInputs = { parent: state.key, instruction: normalised, env: [], files, options };
    return cachedLayerStep(ctx, state, inputs, history, async (changes) => {
      await stageCopy({
        entries,
        changes,
        ...(instruction.chmodSpec ? { chmod: instruction.chmodSpec } : {}),
        ...(owner ? { owner } : {}),
        sourceOwner: () => ({ uid: 0, gid: 0 }),
        existingDir,
        subject,
      });
    });
  }
  // From another stage or an image: the source's own key stands for its content, so a hit needs no files.
  const sourceState = await fromState(ctx, instruction, from, subject);
  const inputs: StepInputs = {
    parent: state.key,
    instruction: normalised,
    env: [],
    options: { ...options, source: sourceState.key },
  };
  return cachedLayerStep(ctx, state, inputs, history, async (changes) => {
    const root = await flatten(o.store.tmpDir, sourceState.layers);
    try {
      const entries = await planCopy({
        root,
        sources: instruction.sources,
        dest: dest.path,
        destIsDir,
        destExists,
        subject,
      });
      await stageCopy({
        entries,
        changes,
        ...(instruction.chmodSpec ? { chmod: instruction.chmodSpec } : {}),
        ...(owner ? { owner } : {}),
        sourceOwner: (e) => ({ uid: e.uid, gid: e.gid }),
        existingDir,
        subject,
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}
