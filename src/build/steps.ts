/**
 * build/steps: the two kinds of step that change the filesystem. Each computes its cache key first; on a hit
 * the cached layer is reused, on a miss the step runs into an empty changes directory (COPY/ADD stage files
 * there; RUN runs in the sandbox with the parent layers as lowerdirs and that directory as the upperdir), then
 * createLayer makes the blob, which moves into the cache with its record.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { explainMiss, type StepInputs, stepKey } from '../cache/key.js';
import type { CacheRecord } from '../cache/local.js';
import {
  type AddInstruction,
  type CopyInstruction,
  createIgnoreMatcher,
  type IgnoreMatcher,
  type RunInstruction,
  resolveSource,
  runEnvironment,
  type StageVariables,
} from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { createLayer } from '../layer/index.js';
import { resolveUser } from '../run/user.js';
import { runSandbox } from '../sandbox/helper.js';
import { buildIdMaps } from '../sandbox/idmap.js';
import { chooseIsolation } from '../sandbox/isolation.js';
import { probeEnvironment } from '../sandbox/probe.js';
import type { SandboxMount, SandboxSpec } from '../sandbox/spec.js';
import { commandArgs, historyText } from './config.js';
import { fingerprintEntries, planCopy } from './copy-plan.js';
import { type Owner, stageCopy } from './copy-stage.js';
import { type BuiltLayer, flatten, layerDirs, lookup, readImageText } from './lower.js';
import type { BuildContext, StageState, StepReport } from './types.js';
import { mapUpperOwners } from './upper-owners.js';

export interface StepOutcome {
  state: StageState;
  report: Omit<StepReport, 'stage' | 'location'>;
}

function where(ctx: BuildContext, line: number): string {
  return `${ctx.ir.file}:${line}`;
}

/** Looks the step up; on a miss runs `make` into a fresh changes directory and caches the layer. */
async function cachedLayerStep(
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
  const source = resolveSource(ctx.ir, instruction, from, { allowIndex: true });
  const sourceState =
    source.kind === 'stage'
      ? await (ctx.stages.get(source.index) as Promise<StageState>)
      : await ctx.imageBase(source.ref, subject);
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

/** The text of a RUN's mounts for its key: secrets by id and target only, never their values. */
function mountKey(instruction: RunInstruction): string {
  return JSON.stringify(
    instruction.mounts.map((m) => {
      const mount = m.mount;
      if (!mount) return m.text;
      return { type: mount.type, target: mount.target, id: 'id' in mount ? mount.id : undefined };
    }),
  );
}

export async function runStep(
  ctx: BuildContext,
  state: StageState,
  instruction: RunInstruction,
  variables: StageVariables,
): Promise<StepOutcome> {
  const o = ctx.options;
  const subject = where(ctx, instruction.location.line);
  if (instruction.command.files.length > 0) {
    throw new GantryError('INVALID_ARGUMENT', 'RUN heredocs are not supported yet', { subject });
  }
  const c = state.config.config;
  const args = commandArgs(instruction.command, c.Shell);
  const env = runEnvironment(ctx.ir, variables);
  const visible = [...env.env].map(([k, v]) => `${k}=${v}`);
  const inputs: StepInputs = {
    parent: state.key,
    instruction: JSON.stringify(args),
    env: visible,
    options: {
      user: c.User ?? '',
      workdir: c.WorkingDir ?? '/',
      network: instruction.network,
      mounts: mountKey(instruction),
      compression: o.compression ?? 'gzip',
      timestamp: String(o.timestamp ?? ''),
    },
  };
  return cachedLayerStep(ctx, state, inputs, historyText(instruction, c.Shell), async (changes) => {
    const dirs = await layerDirs(o.store, state.layers);
    const user = resolveUser(c.User ?? '', {
      passwd: await readImageText(dirs, '/etc/passwd'),
      group: await readImageText(dirs, '/etc/group'),
    });
    const cwd = c.WorkingDir || '/';
    if (!(await lookup(dirs, cwd))) await mkdir(join(changes, cwd), { recursive: true, mode: 0o755 });
    const base = join(changes, '..');
    const mounts = await runMounts(ctx, instruction, base, subject);
    const report = await probeEnvironment({
      scratchDir: join(base, 'probe'),
      cacheFile: join(o.store.root, 'probe-cache.json'),
    });
    const network = instruction.network === 'none' ? 'none' : 'host';
    const choice = chooseIsolation(report, o.isolation ?? 'auto', { network });
    const paths = { work: join(base, 'work'), target: join(base, 'rootfs'), scratch: join(base, 'helper') };
    for (const d of Object.values(paths)) await mkdir(d);
    const spec: SandboxSpec = {
      isolation: choice.level,
      rootfs: { mode: choice.rootfs, layers: dirs, upper: changes, work: paths.work, target: paths.target },
      hostname: randomBytes(6).toString('hex'),
      network,
      mounts: mounts.map((m) => m.mount),
      process: {
        args,
        env: [
          `PATH=${env.env.get('PATH') ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
          ...visible.filter((e) => !e.startsWith('PATH=')),
          ...[...env.proxy].map(([k, v]) => `${k}=${v}`),
        ],
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
      },
      scratch: paths.scratch,
    };
    if (choice.level === 'rootless') {
      const ranges = report.newuidmap ? report : { subuid: [], subgid: [] };
      spec.idMaps = buildIdMaps({
        uid: report.uid,
        gid: report.gid,
        subuid: ranges.subuid,
        subgid: ranges.subgid,
      }).maps;
    }
    const result = await runSandbox(spec, { logger: o.logger });
    if (result.exitCode !== 0) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `RUN ${args.join(' ')} failed with exit status ${result.exitCode}${result.error ? `: ${result.error}` : ''}`,
        { subject },
      );
    }
    // Mount points the sandbox had to create are not part of the step's output.
    for (const m of mounts) if (m.stub) await removeStub(changes, m.mount.destination);
    if (spec.idMaps) await mapUpperOwners(changes, spec.idMaps, join(base, 'owners'), subject);
  });
}

/** Removes a mount point (and the empty parents) the sandbox created in the upper directory. */
async function removeStub(upper: string, destination: string): Promise<void> {
  await rm(join(upper, destination), { recursive: true, force: true });
  let dir = posix.dirname(destination);
  while (dir !== '/') {
    const removed = await rmdir(join(upper, dir)).then(
      () => true,
      () => false,
    );
    if (!removed) break;
    dir = posix.dirname(dir);
  }
}

async function runMounts(
  ctx: BuildContext,
  instruction: RunInstruction,
  base: string,
  subject: string,
): Promise<{ mount: SandboxMount; stub: boolean }[]> {
  const out: { mount: SandboxMount; stub: boolean }[] = [];
  for (const flag of instruction.mounts) {
    const m = flag.mount;
    if (!m) continue;
    if (m.type === 'secret') {
      const id = m.id ?? posix.basename(m.target ?? '');
      const source = ctx.options.secrets?.[id];
      if (!source) {
        if (m.required)
          throw new GantryError('INVALID_ARGUMENT', `secret ${id} was not given (--secret id=${id},...)`, {
            subject,
          });
        continue;
      }
      let file: string;
      if ('file' in source) file = source.file;
      else {
        file = join(base, `secret-${out.length}`);
        await writeFile(file, process.env[source.env] ?? '', { mode: 0o600 });
      }
      out.push({
        mount: { source: file, destination: m.target ?? `/run/secrets/${id}`, readonly: true },
        stub: true,
      });
    } else if (m.type === 'cache') {
      const target = m.target as string;
      const id = m.id ?? target;
      const dir = join(
        ctx.options.store.root,
        'cache',
        'mounts',
        Buffer.from(id).toString('hex').slice(0, 200),
      );
      await mkdir(dir, { recursive: true, mode: 0o755 });
      out.push({ mount: { source: dir, destination: target, readonly: m.readOnly }, stub: true });
    } else {
      throw new GantryError('INVALID_ARGUMENT', `RUN --mount=type=${m.type} is not supported yet`, {
        subject,
      });
    }
  }
  return out;
}
