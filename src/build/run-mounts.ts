/**
 * build/run-mounts: a RUN's `--mount` flags, in two phases. `planRunMounts` resolves each mount as BuildKit's
 * dispatchRunMounts does (targets against WORKDIR, default ids, the stage or image a `from=` names, the
 * context files a bind takes after .dockerignore) into what the step's cache key needs: every option that
 * changes the result, the bound context files' fingerprints, the source stage's key; secrets and ssh agents
 * by id only. On a cache miss `prepareRunMounts` makes what the sandbox mounts; `removeStub` then clears the
 * mount points the sandbox had to create (its own and the RUN's), so they never reach the layer.
 */
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { CacheSharing, RunInstruction, RunMount } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import type { IdMaps, SandboxMount } from '../sandbox/spec.js';
import { acquireCacheMount, type CacheSeed } from './cache-mount.js';
import { type CopyEntry, fingerprintEntries, planCopy } from './copy-plan.js';
import { flatten, layerDirs, lookup } from './lower.js';
import { fromState } from './sources.js';
import { forwardAgent } from './ssh-agent.js';
import type { BuildContext, StageState } from './types.js';

/** A path inside a stage or image (`from=`). */
interface StageSource {
  state: StageState;
  /** Absolute path inside the stage's filesystem. */
  path: string;
}

type PlannedMount =
  | {
      type: 'bind';
      target: string;
      readonly: boolean;
      /** From the context: the context-relative source and exactly the entries it holds after ignore rules. */
      context?: { rel: string; isDir: boolean; entries: CopyEntry[] };
      stage?: StageSource;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  | {
      type: 'cache';
      target: string;
      readonly: boolean;
      id: string;
      sharing: CacheSharing;
      uid: number;
      gid: number;
      mode: number;
      explicitOwner: boolean;
      seed?: StageSource;
    }
  | {
      type: 'secret';
      id: string;
      target?: string;
      env?: string;
      required: boolean;
      mode: number;
      uid: number;
      gid: number;
    }
  | { type: 'ssh'; id: string; target: string; required: boolean; mode: number; uid: number; gid: number };

export interface RunMountPlan {
  mounts: PlannedMount[];
  /** The mounts' part of the step's key (JSON). */
  key: string;
  /** Fingerprints of bound context files, by `mount <target>:<path>`, for the key and --explain-cache. */
  files: Record<string, string>;
  /** `SSH_AUTH_SOCK` for the first ssh mount, as BuildKit sets it (unless the step's env already does). */
  sshAuthSock?: string;
}

/** Go's path.Clean: no `.`, `..` or doubled or trailing slashes. */
const clean = (p: string): string => posix.normalize(p).replace(/(.)\/$/, '$1');
/** Cleans a `source=` value to an absolute path (`..` cannot climb above `/`). */
const absolute = (p: string | undefined): string => clean(`/${p ?? ''}`);

function resolveTarget(m: RunMount, workdir: string, subject: string): string {
  if (!m.target) {
    throw new GantryError('INVALID_ARGUMENT', `RUN --mount=type=${m.type} needs a target`, { subject });
  }
  const target = absolute(posix.isAbsolute(m.target) ? m.target : posix.join(workdir || '/', m.target));
  if (target === '/')
    throw new GantryError('INVALID_ARGUMENT', `invalid mount target "${m.target}"`, { subject });
  return target;
}

async function stageSource(
  ctx: BuildContext,
  instruction: RunInstruction,
  m: RunMount,
  subject: string,
): Promise<StageSource | undefined> {
  if (m.from === undefined) return undefined;
  return { state: await fromState(ctx, instruction, m.from, subject), path: absolute(m.source) };
}

async function contextSource(ctx: BuildContext, m: RunMount, subject: string) {
  const rel = absolute(m.source).slice(1);
  const entries = await planCopy({
    root: ctx.options.contextDir,
    ignore: ctx.ignore,
    sources: [`/${rel}`],
    dest: '/',
    destIsDir: true,
    destExists: true,
    subject,
  });
  const isDir = (await lstat(join(ctx.options.contextDir, rel))).isDirectory();
  return { rel, isDir, entries };
}

/** Resolves every mount of the (expanded) instruction; see the file comment. */
export async function planRunMounts(
  ctx: BuildContext,
  instruction: RunInstruction,
  o: { workdir: string; subject: string },
): Promise<RunMountPlan> {
  const mounts: PlannedMount[] = [];
  const files: Record<string, string> = {};
  let sshCount = 0;
  for (const flag of instruction.mounts) {
    const m = flag.mount;
    if (!m) continue;
    if (m.type === 'secret') {
      // BuildKit: source names the secret before id; the target's base name is the last resort.
      const id = m.source ?? m.id ?? posix.basename(m.target ?? '');
      const target = m.target ?? (m.env === undefined ? `/run/secrets/${posix.basename(id)}` : undefined);
      mounts.push({
        type: 'secret',
        id,
        required: m.required,
        mode: m.mode ?? 0o400,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
        ...(target === undefined ? {} : { target: absolute(target) }),
        ...(m.env === undefined ? {} : { env: m.env }),
      });
    } else if (m.type === 'ssh') {
      if (m.source !== undefined)
        throw new GantryError('INVALID_ARGUMENT', 'ssh does not support source', { subject: o.subject });
      const target = m.target ? absolute(m.target) : `/run/buildkit/ssh_agent.${sshCount}`;
      sshCount++;
      mounts.push({
        type: 'ssh',
        id: m.id ?? 'default',
        target,
        required: m.required,
        mode: m.mode ?? 0o600,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
      });
    } else if (m.type === 'tmpfs') {
      const target = resolveTarget(m, o.workdir, o.subject);
      mounts.push({ type: 'tmpfs', target, ...(m.size === undefined ? {} : { size: m.size }) });
    } else if (m.type === 'cache') {
      const target = resolveTarget(m, o.workdir, o.subject);
      const seed = await stageSource(ctx, instruction, m, o.subject);
      mounts.push({
        type: 'cache',
        target,
        readonly: m.readOnly,
        // The default id is the target as written, cleaned (not resolved against WORKDIR), as in BuildKit.
        id: m.id ?? clean(m.target as string),
        sharing: m.sharing ?? 'shared',
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
        mode: m.mode ?? 0o755,
        explicitOwner: m.uid !== undefined || m.gid !== undefined || m.mode !== undefined,
        ...(seed ? { seed } : {}),
      });
    } else {
      const target = resolveTarget(m, o.workdir, o.subject);
      const stage = await stageSource(ctx, instruction, m, o.subject);
      if (stage) {
        mounts.push({ type: 'bind', target, readonly: m.readOnly, stage });
        continue;
      }
      const context = await contextSource(ctx, m, o.subject);
      const fingerprints = await fingerprintEntries(context.entries);
      for (const [path, print] of Object.entries(fingerprints)) files[`mount ${target}:${path}`] = print;
      mounts.push({ type: 'bind', target, readonly: m.readOnly, context });
    }
  }
  const key = JSON.stringify(
    mounts.map((p) => {
      if (p.type === 'bind') {
        return {
          type: p.type,
          target: p.target,
          readonly: p.readonly,
          // Context content enters through `files`.
          source: p.stage ? { stage: p.stage.state.key, path: p.stage.path } : `context:/${p.context?.rel}`,
        };
      }
      if (p.type === 'cache') {
        const { seed, ...rest } = p;
        return seed ? { ...rest, seed: { stage: seed.state.key, path: seed.path } } : rest;
      }
      return p;
    }),
  );
  const ssh = mounts.find((p) => p.type === 'ssh');
  return { mounts, key, files, ...(ssh ? { sshAuthSock: ssh.target } : {}) };
}

export interface PreparedMounts {
  /** In mount order; the sandbox may create their mount points, which `removeStubs` clears afterwards. */
  mounts: SandboxMount[];
  /** `KEY=value` for secrets given as environment variables. */
  env: string[];
  /** Unlocks cache mounts and stops agent forwarding; call after the RUN, however it ended. */
  release(): Promise<void>;
}

export interface PrepareOptions {
  /** Step scratch space for files gantry writes (secrets from variables, filtered context copies). */
  base: string;
  /** The helper's scratch directory, removed inside the user namespace: for what the container may write. */
  helperScratch: string;
  idMaps?: IdMaps;
  subject: string;
}

/**
 * Lays the planned context entries out in `dir`: the context without its ignored files. Files are hard links
 * where the filesystem allows (the sandbox mounts them read-only or under a union, so nothing writes through
 * them), else copies; modes and mtimes are kept.
 */
async function stageContext(entries: readonly CopyEntry[], dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const times = async (e: CopyEntry, host: string) => {
    const s = await lstat(e.source);
    await lutimes(host, s.atime, s.mtime);
  };
  for (const e of entries) {
    const host = join(dir, e.dest);
    await mkdir(posix.dirname(host), { recursive: true, mode: 0o755 });
    if (e.type === 'dir') {
      await mkdir(host, { recursive: true });
      await chmod(host, e.mode);
    } else if (e.type === 'symlink') {
      await symlink(await readlink(e.source), host);
    } else if (
      !(await link(e.source, host).then(
        () => true,
        () => false,
      ))
    ) {
      await copyFile(e.source, host);
      await chmod(host, e.mode);
      await times(e, host);
    }
  }
  // Directory mtimes last: adding their entries changed them.
  for (const e of [...entries].reverse()) if (e.type === 'dir') await times(e, join(dir, e.dest));
}

type Planned<T extends PlannedMount['type']> = Extract<PlannedMount, { type: T }>;

/** What one planned mount needs while the RUN runs, made by one of the functions below. */
interface Made {
  mount?: SandboxMount;
  env?: string;
  release?: () => Promise<void>;
}

interface MakeContext extends PrepareOptions {
  ctx: BuildContext;
  /** An empty directory name for this mount under the helper's scratch space (not created). */
  scratch: string;
  /** A name for this mount's files under `base` (not created). */
  own: string;
  /** Another mount of the RUN lies inside this one's target: its mount point is made in this mount. */
  hasNested: boolean;
}

async function makeSecret(p: Planned<'secret'>, m: MakeContext): Promise<Made> {
  const source = m.ctx.options.secrets?.[p.id];
  if (!source) {
    if (!p.required) return {};
    throw new GantryError('INVALID_ARGUMENT', `secret ${p.id} was not given (--secret id=${p.id},...)`, {
      subject: m.subject,
    });
  }
  const value = 'file' in source ? undefined : (process.env[source.env] ?? '');
  const made: Made = {};
  if (p.env !== undefined) {
    made.env = `${p.env}=${'file' in source ? await readFile(source.file, 'utf8') : value}`;
  }
  if (p.target !== undefined) {
    // A private copy carries the mount's mode and owner (0400 root by default, as in BuildKit), not the file's.
    if ('file' in source) await copyFile(source.file, m.own);
    else await writeFile(m.own, value ?? '', { mode: 0o600 });
    await chmod(m.own, p.mode);
    const owner = hostOwner(p, m);
    if (owner) await chown(m.own, owner.uid, owner.gid);
    made.mount = { source: m.own, destination: p.target, readonly: true };
  }
  return made;
}

/**
 * The host owner that gives a secret file or ssh socket the `uid`/`gid` a mount asks for: possible as root
 * without a user namespace, where the container's ids are the host's. Rootless the file stays the caller's,
 * which is the container's root.
 */
function hostOwner(
  p: { uid: number; gid: number },
  m: MakeContext,
): { uid: number; gid: number } | undefined {
  return m.idMaps === undefined && process.getuid?.() === 0 ? { uid: p.uid, gid: p.gid } : undefined;
}

async function makeSsh(p: Planned<'ssh'>, m: MakeContext): Promise<Made> {
  const agent = m.ctx.options.ssh?.[p.id];
  if (!agent) {
    if (!p.required) return {};
    throw new GantryError('INVALID_ARGUMENT', `ssh agent ${p.id} was not given (--ssh ${p.id}[=SOCKET])`, {
      subject: m.subject,
    });
  }
  const owner = hostOwner(p, m);
  const forward = await forwardAgent({
    id: p.id,
    agent,
    mode: p.mode,
    ...(owner ? { owner } : {}),
    subject: m.subject,
  });
  return {
    mount: { source: forward.socket, destination: p.target, readonly: false },
    release: forward.close,
  };
}

async function makeCache(p: Planned<'cache'>, m: MakeContext): Promise<Made> {
  const store = m.ctx.options.store;
  const from = p.seed;
  const seed: CacheSeed = from
    ? {
        kind: 'copy',
        identity: `${from.state.key}:${from.path}`,
        fill: async (dir) => {
          const flat = await flatten(store.tmpDir, from.state.layers);
          try {
            await rename(join(flat, from.path), dir).catch((cause) => {
              throw new GantryError('NOT_FOUND', `cache mount source ${from.path} not found`, {
                subject: m.subject,
                cause,
              });
            });
          } finally {
            await rm(flat, { recursive: true, force: true });
          }
        },
      }
    : { kind: 'empty', uid: p.uid, gid: p.gid, mode: p.mode };
  const lease = await acquireCacheMount({
    root: join(store.root, 'cache', 'mounts'),
    id: p.id,
    seed,
    explicitOwner: p.explicitOwner,
    sharing: p.sharing,
    ...(m.idMaps ? { idMaps: m.idMaps } : {}),
    subject: m.subject,
  });
  return {
    mount: { source: lease.dir, destination: p.target, readonly: p.readonly },
    release: lease.release,
  };
}

async function makeBind(p: Planned<'bind'>, m: MakeContext): Promise<Made> {
  if (p.stage) {
    const dirs = await layerDirs(m.ctx.options.store, p.stage.state.layers);
    if (p.stage.path !== '/' && !(await lookup(dirs, p.stage.path))) {
      throw new GantryError('NOT_FOUND', `mount source ${p.stage.path} not found in the stage or image`, {
        subject: m.subject,
      });
    }
    await mkdir(m.scratch);
    const { scratch } = m;
    return {
      mount: {
        type: 'layers',
        layers: dirs,
        source: p.stage.path,
        scratch,
        destination: p.target,
        readonly: p.readonly,
      },
    };
  }
  const c = p.context as NonNullable<typeof p.context>;
  // Ignored files must not be visible: with ignore rules the mount is a copy of exactly the planned files.
  let root = m.ctx.options.contextDir;
  let inner = `/${c.rel}`;
  if (m.ctx.ignore.patterns.length > 0) {
    root = m.own;
    await stageContext(c.entries, root);
    inner = c.isDir ? '/' : `/${posix.basename(c.rel)}`;
  }
  // Read-only with nothing mounted inside: the files themselves. Otherwise a union over them whose writes
  // (the RUN's, or nested mount points) stay in scratch space and are discarded after the RUN.
  if (p.readonly && !m.hasNested) {
    return { mount: { source: join(root, inner), destination: p.target, readonly: true } };
  }
  await mkdir(m.scratch);
  const { scratch } = m;
  return {
    mount: {
      type: 'layers',
      layers: [root],
      source: inner,
      scratch,
      destination: p.target,
      readonly: p.readonly,
    },
  };
}

function make(p: PlannedMount, m: MakeContext): Promise<Made> {
  switch (p.type) {
    case 'secret':
      return makeSecret(p, m);
    case 'ssh':
      return makeSsh(p, m);
    case 'cache':
      return makeCache(p, m);
    case 'tmpfs':
      return Promise.resolve({
        mount: { type: 'tmpfs', destination: p.target, ...(p.size === undefined ? {} : { size: p.size }) },
      });
    case 'bind':
      return makeBind(p, m);
  }
}

/** Makes what the sandbox mounts for a planned RUN (on a cache miss). */
export async function prepareRunMounts(
  ctx: BuildContext,
  plan: RunMountPlan,
  o: PrepareOptions,
): Promise<PreparedMounts> {
  const mounts: SandboxMount[] = [];
  const env: string[] = [];
  const releases: (() => Promise<void>)[] = [];
  const release = async () => {
    for (const r of releases.reverse()) await r();
  };
  try {
    for (const [i, p] of plan.mounts.entries()) {
      const made = await make(p, {
        ...o,
        ctx,
        scratch: join(o.helperScratch, `mount-${i}`),
        own: join(o.base, `mount-${i}`),
        hasNested:
          'target' in p && plan.mounts.some((q) => 'target' in q && q.target?.startsWith(`${p.target}/`)),
      });
      if (made.release) releases.push(made.release);
      if (made.mount) mounts.push(made.mount);
      if (made.env) env.push(made.env);
    }
  } catch (err) {
    await release();
    throw err;
  }
  // A mount inside another one's target is mounted after it.
  const depth = (m: SandboxMount) => m.destination.split('/').length;
  mounts.sort((a, b) => depth(a) - depth(b));
  return { mounts, env, release };
}

/**
 * Mount points the sandbox itself makes when the image lacks them (native/src/sandbox/mounts.rs): /proc, the
 * /dev nodes and links, /dev/shm, and the host's resolv.conf and hosts.
 */
export const SANDBOX_MOUNT_POINTS: readonly string[] = [
  '/proc',
  ...['null', 'zero', 'full', 'random', 'urandom', 'tty', 'shm', 'fd', 'stdin', 'stdout', 'stderr'].map(
    (d) => `/dev/${d}`,
  ),
  '/etc/resolv.conf',
  '/etc/hosts',
];

/** Whether an upper-directory entry is what the sandbox leaves at a mount point: nothing the RUN wrote. */
async function isStub(path: string): Promise<boolean> {
  const s = await lstat(path).catch(() => undefined);
  if (!s) return false;
  if (s.isDirectory()) return (await readdir(path)).length === 0;
  if (s.isFile()) return s.size === 0;
  return s.isSymbolicLink() && (await readlink(path)).startsWith('/proc/self/');
}

/**
 * Removes the mount points the sandbox created in the upper directory, deepest first, and the parents left
 * empty; an entry the RUN changed (a non-empty file or directory) stays.
 */
export async function removeStubs(upper: string, destinations: readonly string[]): Promise<void> {
  const depth = (p: string) => p.split('/').length;
  for (const destination of [...destinations].sort((a, b) => depth(b) - depth(a))) {
    if (!(await isStub(join(upper, destination)))) continue;
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
}
