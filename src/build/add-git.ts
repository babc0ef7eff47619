/**
 * build/add-git: `ADD <git url>[#ref[:subdir]] dest` with the `git` CLI, as BuildKit's Git source: the ref (a
 * branch, tag or commit; the remote's HEAD when absent) is resolved to a commit with `git ls-remote` first, so
 * a cached step needs no clone; a checkout then fetches that commit shallowly. `--keep-git-dir` keeps `.git`;
 * `--checksum` must name the resolved commit. Files come out 0644/0755 whatever the umask. Credentials in
 * URLs never reach messages; every git call is bounded by a timeout and never prompts.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { GantryError } from '../errors/index.js';
import { redactUrl } from './add-http.js';

export interface GitSource {
  /** The repository URL without the fragment and query. */
  remote: string;
  ref?: string;
  subdir?: string;
  /** `?keep-git-dir=` */
  keepGitDir?: boolean;
  /** `?checksum=` / `?commit=`: the commit the ref must resolve to. */
  checksum?: string;
}

function withoutQuery(source: string): string {
  return (source.split('#')[0] as string).split('?')[0] as string;
}

/** BuildKit's Git source forms: scp-like `git@host:repo`, git:// and ssh:// URLs, http(s) URLs ending in `.git`. */
export function isGitSource(source: string): boolean {
  if (/^(git@[^:]+:|git:\/\/|ssh:\/\/)/.test(source)) return true;
  return /^https?:\/\//.test(source) && /\.git$/.test(withoutQuery(source));
}

function parseBool(key: string, value: string, fail: (m: string) => Error): boolean {
  if (value === '' || /^(1|t|true)$/i.test(value)) return true;
  if (/^(0|f|false)$/i.test(value)) return false;
  throw fail(`invalid ${key} value: ${JSON.stringify(value)}`);
}

/**
 * Splits `url[?query]#ref:subdir` (BuildKit's fragment syntax, and its query keys ref, tag, branch, subdir,
 * checksum/commit and keep-git-dir); conflicting or unknown keys throw.
 */
export function parseGitSource(source: string, subject = ''): GitSource {
  const fail = (m: string) => new GantryError('INVALID_ARGUMENT', `${redactUrl(source)}: ${m}`, { subject });
  const hash = source.indexOf('#');
  const base = hash < 0 ? source : source.slice(0, hash);
  const fragment = hash < 0 ? '' : source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const out: GitSource = { remote: base };
  const fragRef = colon < 0 ? fragment : fragment.slice(0, colon);
  const fragSubdir = colon < 0 ? '' : fragment.slice(colon + 1);
  if (fragRef) out.ref = fragRef;
  if (fragSubdir) out.subdir = fragSubdir;
  const q = base.indexOf('?');
  if (q < 0 || !base.includes('://')) return out;
  out.remote = base.slice(0, q);
  const set = (key: 'ref' | 'subdir' | 'checksum', value: string) => {
    if (out[key] !== undefined && out[key] !== value) throw fail(`${key} conflicts: ${out[key]} vs ${value}`);
    out[key] = value;
  };
  let tag = '';
  let branch = '';
  for (const [key, value] of new URLSearchParams(base.slice(q + 1))) {
    if (key === 'ref' || key === 'subdir') set(key, value);
    else if (key === 'tag') tag = value;
    else if (key === 'branch') branch = value;
    else if (key === 'checksum' || key === 'commit') set('checksum', value);
    else if (key === 'keep-git-dir') out.keepGitDir = parseBool(key, value, fail);
    else throw fail(`unexpected query ${JSON.stringify(key)}`);
  }
  if (tag && branch) throw fail('branch conflicts with tag');
  if (tag) set('ref', tag.startsWith('refs/tags/') ? tag : `refs/tags/${tag}`);
  if (branch) set('ref', branch.startsWith('refs/heads/') ? branch : `refs/heads/${branch}`);
  return out;
}

const TIMEOUT_MS = 300_000;

async function git(args: string[], o: { cwd?: string; subject: string; what: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      ...(o.cwd ? { cwd: o.cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Never prompt: not for HTTP credentials, not for ssh passwords or host keys (a build has no one to ask).
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_ASKPASS: 'true',
        GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
        LC_ALL: 'C',
      },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 4000) err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new GantryError('IO', `cannot run git (install it): ${cause.message}`, { subject: o.subject }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        const why = signal ? `killed by ${signal}` : redactUrl(err.trim().split('\n').slice(-3).join('; '));
        reject(new GantryError('NETWORK', `${o.what} failed: ${why}`, { subject: o.subject }));
      }
    });
  });
}

/** The commit `ref` names on the remote (branch, tag peeled, or a full commit id); HEAD when absent. */
export async function resolveGitRef(src: GitSource, subject: string): Promise<string> {
  const shown = redactUrl(src.remote);
  const out = await git(['ls-remote', '--', src.remote], { subject, what: `git ls-remote ${shown}` });
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name) refs.set(name, sha);
  }
  const ref = src.ref ?? 'HEAD';
  const candidates = ref.startsWith('refs/')
    ? [ref]
    : [ref, `refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`];
  for (const c of candidates) {
    const sha = refs.get(c);
    if (sha) return sha;
  }
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  throw new GantryError('NOT_FOUND', `${shown} has no ref ${JSON.stringify(ref)}`, { subject });
}

export interface CheckoutOptions {
  source: GitSource;
  commit: string;
  /** Empty directory the repository is checked out into. */
  dir: string;
  keepGitDir: boolean;
  subject: string;
}

/** Checks `commit` out into `dir`; returns the directory to copy from (`dir`, or its subdir). */
export async function checkoutGit(o: CheckoutOptions): Promise<string> {
  const shown = redactUrl(o.source.remote);
  const run = (args: string[], what: string) => git(args, { cwd: o.dir, subject: o.subject, what });
  await run(['init', '-q'], 'git init');
  await run(['remote', 'add', 'origin', o.source.remote], 'git remote add');
  try {
    await run(['fetch', '-q', '--depth=1', 'origin', o.commit], `git fetch ${shown}`);
  } catch {
    // Servers that refuse to serve a commit by id still serve its ref (and so the commit) in a full fetch.
    await run(
      ['fetch', '-q', '--tags', 'origin', '+refs/heads/*:refs/remotes/origin/*'],
      `git fetch ${shown}`,
    );
  }
  await run(['-c', 'advice.detachedHead=false', 'checkout', '-q', o.commit], `git checkout ${o.commit}`);
  if (!o.keepGitDir) await rm(join(o.dir, '.git'), { recursive: true, force: true });
  await normaliseModes(o.dir);
  if (!o.source.subdir) return o.dir;
  const sub = posix.normalize(`/${o.source.subdir}`).slice(1);
  const path = join(o.dir, sub);
  const s = await lstat(path).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw new GantryError('NOT_FOUND', `${shown} has no directory ${JSON.stringify(o.source.subdir)}`, {
      subject: o.subject,
    });
  }
  return path;
}

/** A checkout's modes depend on the umask; the layer must not. Bounded by the tree's size. */
async function normaliseModes(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      await chmod(path, 0o755);
      await normaliseModes(path);
    } else if (entry.isFile()) {
      const s = await lstat(path);
      await chmod(path, s.mode & 0o100 ? 0o755 : 0o644);
    }
  }
}
