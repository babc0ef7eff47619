/**
 * build/copy-step: COPY and ADD. Plans which files the step copies (from the context after ignore rules, or
 * from another stage or image; heredocs, URLs and Git repositories through build/add-sources), keys the step
 * on exactly their content and metadata, and stages them into the changes directory with the owners and modes
 * the instruction asks for; ADD extracts local tar archives. Nothing runs in the container. `--link` (without
 * --chmod, as BuildKit) copies onto an empty tree: the layer ignores what the image has at dest, and its key
 * does not chain on the parent step.
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
import { sha256Digest } from '../oci/index.js';
import { resolveUser } from '../run/user.js';
import { isArchive } from './add-archive.js';
import { prepareSources, shownSource, stageSources, unpackInto } from './add-sources.js';
import { historyText } from './config.js';
import { type CopyEntry, fingerprintEntries, planCopy } from './copy-plan.js';
import { applyOwners, type Owner, type StageCopyOptions, stageCopy } from './copy-stage.js';
import { cachedLayerStep, type StepOutcome, where } from './layer-step.js';
import { layerDirs, lookup, readImageText } from './lower.js';
import { contextSource, fromSource } from './sources.js';
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

function withExcludes(ignore: IgnoreMatcher, excludes: readonly string[]): IgnoreMatcher {
  if (excludes.length === 0) return ignore;
  const extra = createIgnoreMatcher(excludes);
  return {
    ...ignore,
    hasExceptions: ignore.hasExceptions || extra.hasExceptions,
    matches: (p: string) => ignore.matches(p) || extra.matches(p),
  };
}

export async function copyStep(
  ctx: BuildContext,
  state: StageState,
  instruction: CopyInstruction | AddInstruction,
): Promise<StepOutcome> {
  const o = ctx.options;
  const subject = where(ctx, instruction.location.line);
  // BuildKit merges a --link layer onto the image only when there is no --chmod; otherwise it copies as usual.
  const link = instruction.link && !instruction.chmod;
  // A --link step reads nothing of the image except, for --chown names, its passwd and group files.
  const needsImage = !link || (instruction.chown !== undefined && !/^\d+(:\d+)?$/.test(instruction.chown));
  if (needsImage) await ctx.ensureLayers(state.layers);
  const dirs = needsImage ? await layerDirs(o.store, state.layers) : [];
  const dest = resolveDest(instruction.dest, state.config.config.WorkingDir ?? '/');
  const existing = link ? undefined : await lookup(dirs, dest.path);
  const destIsDir = dest.dir || Boolean(existing?.isDirectory());
  const destExists = existing !== undefined;
  const owner = instruction.chown ? await chownIds(dirs, instruction.chown) : undefined;
  const from = instruction.kind === 'COPY' ? instruction.from : undefined;
  const parents = instruction.kind === 'COPY' && instruction.parents;
  const unpack = instruction.kind === 'ADD' ? instruction.unpack : undefined;
  const shown = {
    ...instruction,
    sources: [...instruction.sources.map(shownSource), ...instruction.inline.map((d) => `<<${d.name}`)],
  };
  const history = historyText(shown, undefined);
  const normalised = JSON.stringify({
    kind: instruction.kind,
    sources: instruction.sources.map(shownSource),
    inline: instruction.inline.map((d) => d.name),
    dest: dest.path,
    owner,
    chmod: instruction.chmod,
    excludes: instruction.excludes,
    ...(parents ? { parents } : {}),
    ...(link ? { link } : {}),
    ...(unpack !== undefined ? { unpack } : {}),
    ...(instruction.kind === 'ADD' && instruction.keepGitDir ? { keepGitDir: true } : {}),
  });
  // Owners read back from the unpacked layers are right when the store was unpacked as root (docs/build.md).
  const existingDir = async (path: string) => {
    if (link) return undefined;
    const s = await lookup(dirs, path);
    return s?.isDirectory() ? { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid } : undefined;
  };
  const stage: Omit<StageCopyOptions, 'entries' | 'changes' | 'sourceOwner'> = {
    ...(instruction.chmodSpec ? { chmod: instruction.chmodSpec } : {}),
    ...(owner ? { owner } : {}),
    existingDir,
    subject,
  };
  const total = instruction.sources.length + instruction.inline.length;
  const scratch = await o.store.makeScratch('copy-src');
  try {
    const prepareOptions = {
      instruction,
      dest: dest.path,
      toDir: dest.dir || destIsDir || total > 1,
      scratch,
      mtime: new Date(ctx.createdAt),
      subject,
    };
    const prepared = await prepareSources(prepareOptions);
    const plan = (root: string, ignore?: IgnoreMatcher) =>
      prepared.local.length === 0
        ? Promise.resolve([] as CopyEntry[])
        : planCopy({
            root,
            ...(ignore ? { ignore } : {}),
            sources: prepared.local,
            dest: dest.path,
            destIsDir,
            destExists,
            subject,
            toDir: total > 1,
            parents,
          });
    const stageAll = async (
      changes: string,
      root: string,
      entries: CopyEntry[],
      sourceOwner: (e: CopyEntry) => Owner,
    ) => {
      const owners = new Map<string, Owner>();
      // ADD extracts a local source that is a tar archive (unless --unpack=false) into dest, as BuildKit.
      const archives: CopyEntry[] = [];
      if (instruction.kind === 'ADD' && unpack !== false) {
        for (const e of entries)
          if (e.match && e.type === 'file' && (await isArchive(e.source, subject))) archives.push(e);
      }
      const plain = entries.filter((e) => !archives.includes(e));
      if (plain.length > 0) await stageCopy({ ...stage, entries: plain, changes, sourceOwner, owners });
      for (const a of archives) {
        await unpackInto(
          { changes, owners, stage, logger: o.logger },
          a.source,
          posix.relative(root, a.source),
          dest.path,
        );
      }
      await stageSources({
        prepared,
        o: prepareOptions,
        unpackUrls: unpack === true,
        changes,
        owners,
        stage,
        destExists,
        logger: o.logger,
      });
      await applyOwners(owners, `${changes}.owners`, subject);
    };
    const options: Record<string, string> = {
      compression: o.compression ?? 'gzip',
      timestamp: String(o.timestamp ?? ''),
      destIsDir: String(destIsDir),
      ...prepared.identities,
    };
    // A --link layer follows no parent: every --link step keys on the same fixed root.
    const parent = link ? sha256Digest('gantry:copy --link') : state.key;
    const source =
      from === undefined ? contextSource(ctx) : await fromSource(ctx, instruction, from, subject);
    let outcome: StepOutcome;
    if (source.kind === 'dir') {
      // The build context or a directory --build-context: keyed on exactly the files copied.
      const entries = await plan(source.root, withExcludes(source.ignore, instruction.excludes));
      const files = { ...(await fingerprintEntries(entries)), ...prepared.inlineFiles };
      const inputs: StepInputs = { parent, instruction: normalised, env: [], files, options };
      outcome = await cachedLayerStep(ctx, state, inputs, history, (changes) =>
        stageAll(changes, source.root, entries, () => ({ uid: 0, gid: 0 })),
      );
    } else {
      // From another stage or an image: the source's own key stands for its content, so a hit needs no files.
      const inputs: StepInputs = {
        parent,
        instruction: normalised,
        env: [],
        files: prepared.inlineFiles,
        options: { ...options, source: source.state.key },
      };
      outcome = await cachedLayerStep(ctx, state, inputs, history, async (changes) => {
        const tree = await source.open();
        try {
          await stageAll(changes, tree.root, await plan(tree.root), (e) => ({ uid: e.uid, gid: e.gid }));
        } finally {
          await tree.close();
        }
      });
    }
    if (!link) return outcome;
    // The layer's key ignores the parent, but what follows still depends on everything before it.
    const key = sha256Digest(JSON.stringify(['link', state.key, outcome.state.key]));
    return { ...outcome, state: { ...outcome.state, key } };
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
