/**
 * registry/credentials: where registry credentials come from and where `login` puts them. Follows
 * containers/image and the docker CLI: `--creds` / `--registry-token` first, then auth files in order
 * (`--authfile` alone, or $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, ${DOCKER_CONFIG:-~/.docker}/config.json); in each file
 * `credHelpers[host]`, then `auths` (most specific `host/namespace` key first), then `credsStore`.
 * Key parsing and matching are pure functions; file and helper I/O sit at the edges.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { asGantryError, GantryError } from '../errors/index.js';
import { type HelperOptions, helperErase, helperGet, helperStore } from './credential-helper.js';
import type { Credential, CredentialResolver } from './types.js';

export interface CredentialOptions {
  /** `--creds user:password` (the password may contain ':'); used for every registry asked for. */
  creds?: string;
  /** `--registry-token`: a bearer token used for every registry asked for. */
  registryToken?: string;
  /** `--authfile`: when given, the only auth file read and the one `login`/`logout` change. */
  authFile?: string;
  /** Defaults to process.env; also the environment (PATH) credential helpers run with. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to $HOME from `env`, else os.homedir(). */
  homeDir?: string;
  /** How long a credential helper may run (default 10 s). */
  helperTimeoutMs?: number;
}

/** A registry and, optionally, the repository on it, for auth files holding `host/namespace` keys. */
export interface CredentialScope {
  registry: string;
  repository?: string;
}

export type ScopedCredentialResolver = (scope: CredentialScope) => Promise<Credential | undefined>;

/** Finds credentials by registry host. */
export function createCredentialResolver(options: CredentialOptions): CredentialResolver {
  const resolveScoped = createScopedCredentialResolver(options);
  return (registry) => resolveScoped({ registry });
}

/** Finds credentials by registry and repository, honouring repository-scoped auth file keys. */
export function createScopedCredentialResolver(options: CredentialOptions): ScopedCredentialResolver {
  const fixed = fixedCredential(options);
  if (fixed) return async () => fixed;
  const paths = authFileSearchPaths(options);
  const helperOptions = toHelperOptions(options);
  // One lookup per scope per resolver: a copy asks again on every token refresh, helpers are slow.
  const cache = new Map<string, Promise<Credential | undefined>>();
  return (scope) => {
    const key = `${scope.registry}/${scope.repository ?? ''}`;
    let pending = cache.get(key);
    if (!pending) {
      pending = lookup(paths, scope, helperOptions);
      pending.catch(() => cache.delete(key));
      cache.set(key, pending);
    }
    return pending;
  };
}

/** The auth files read, in order. */
export function authFileSearchPaths(options: CredentialOptions): string[] {
  if (options.authFile) return [resolve(options.authFile)];
  const env = options.env ?? process.env;
  const home = homeOf(options);
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(resolve(env.REGISTRY_AUTH_FILE));
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  paths.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'));
  return [...new Set(paths)];
}

/** Where `login` writes and `logout` erases: the first auth file containers/image would write. */
export function defaultAuthFilePath(options: CredentialOptions): string {
  if (options.authFile) return resolve(options.authFile);
  const env = options.env ?? process.env;
  if (env.REGISTRY_AUTH_FILE) return resolve(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json');
  return join(env.XDG_CONFIG_HOME || join(homeOf(options), '.config'), 'containers', 'auth.json');
}

/**
 * `login`: stores `username:password` for `registry` (a host, or `host/namespace` for a repository-scoped
 * entry). Uses the file's credential helper for that host if it names one, else writes the auth file.
 */
export async function saveCredential(
  registry: string,
  credential: { username: string; password: string },
  options: CredentialOptions,
): Promise<void> {
  const key = normalizeAuthKey(registry);
  if (key === '')
    throw new GantryError('INVALID_ARGUMENT', 'registry must not be empty', { subject: registry });
  if (credential.username === '' || credential.username.includes(':')) {
    throw new GantryError('INVALID_ARGUMENT', 'username must be non-empty and must not contain ":"', {
      subject: registry,
    });
  }
  const path = defaultAuthFilePath(options);
  const file = (await readAuthFileObject(path)) ?? {};
  const host = hostOf(key);
  const helper = helperFor(parseAuthFile(file, path), host);
  if (helper) {
    if (key !== host) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `credential helper ${helper} stores credentials per host, not per repository`,
        { subject: registry },
      );
    }
    const [serverUrl] = helperServerUrls(host);
    const secret = { username: credential.username, secret: credential.password };
    await helperStore(helper, serverUrl!, secret, toHelperOptions(options));
    return;
  }
  const auths = objectField(file, 'auths', path);
  const existing = matchingRawKeys(auths, key);
  // Update an existing entry in place (e.g. docker's `https://index.docker.io/v1/`) so other tools still see it.
  const rawKey = existing.includes(key) ? key : (existing[0] ?? key);
  const { username: _u, password: _p, identitytoken: _i, auth: _a, ...kept } = asRecord(auths[rawKey]);
  auths[rawKey] = {
    ...kept,
    auth: Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64'),
  };
  file.auths = auths;
  await writeAuthFileAtomic(path, file);
}

/** `logout`: removes the credential for `registry` from the auth file and its helper; false if there was none. */
export async function removeCredential(registry: string, options: CredentialOptions): Promise<boolean> {
  const key = normalizeAuthKey(registry);
  const path = defaultAuthFilePath(options);
  const file = await readAuthFileObject(path);
  if (!file) return false;
  let removed = false;
  const host = hostOf(key);
  const helper = key === host ? helperFor(parseAuthFile(file, path), host) : undefined;
  if (helper) {
    for (const serverUrl of helperServerUrls(host)) {
      if (await helperErase(helper, serverUrl, toHelperOptions(options))) removed = true;
    }
  }
  const auths = objectField(file, 'auths', path);
  const rawKeys = matchingRawKeys(auths, key);
  if (rawKeys.length > 0) {
    for (const rawKey of rawKeys) delete auths[rawKey];
    await writeAuthFileAtomic(path, file);
    removed = true;
  }
  return removed;
}

// ---- pure logic -------------------------------------------------------------------------------------------

/** Parsed view of an auth file: docker's config.json and containers' auth.json share these fields. */
interface AuthFile {
  path: string;
  auths: Record<string, unknown>;
  credHelpers: Record<string, unknown>;
  credsStore: string | undefined;
}

/**
 * Normalises an auth file key or registry name: URL forms (`https://index.docker.io/v1/`) become their
 * host, a trailing `/v1/` or `/v2/` is dropped, Docker Hub's aliases become `docker.io`, and a
 * `host/namespace` key keeps its path.
 */
export function normalizeAuthKey(key: string): string {
  let out = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(out);
  if (scheme) {
    // Legacy URL keys name a whole registry: the path (`/v1/`) is an API version, not a namespace.
    out = out.slice(scheme[0].length);
    const slash = out.indexOf('/');
    if (slash >= 0) out = out.slice(0, slash);
  }
  out = out.replace(/\/+$/, '').replace(/\/v[12]$/, '');
  const slash = out.indexOf('/');
  const host = (slash >= 0 ? out.slice(0, slash) : out).toLowerCase();
  const path = slash >= 0 ? out.slice(slash) : '';
  const hubAliases = ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];
  return (hubAliases.includes(host) ? 'docker.io' : host) + path;
}

/** Auth keys to try for a scope, most specific first: `host/a/b/c`, `host/a/b`, `host/a`, `host`. */
export function lookupKeys(scope: CredentialScope): string[] {
  const host = normalizeAuthKey(scope.registry);
  const keys = [host];
  const parts = (scope.repository ?? '').split('/').filter((part) => part !== '');
  for (let i = 1; i <= parts.length; i++) keys.unshift(`${host}/${parts.slice(0, i).join('/')}`);
  return keys;
}

/** Server URLs a helper may know a host by: docker stores Docker Hub under its v1 index URL. */
function helperServerUrls(host: string): string[] {
  return host === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io'] : [host];
}

function hostOf(key: string): string {
  const slash = key.indexOf('/');
  return slash >= 0 ? key.slice(0, slash) : key;
}

/** Raw keys of `auths` that normalise to `key`, the exact spelling first. */
function matchingRawKeys(auths: Record<string, unknown>, key: string): string[] {
  const keys = Object.keys(auths).filter((raw) => normalizeAuthKey(raw) === key);
  return keys.sort((a, b) => Number(b === key) - Number(a === key));
}

function parseAuthFile(value: Record<string, unknown>, path: string): AuthFile {
  const credsStore = value.credsStore;
  if (credsStore !== undefined && typeof credsStore !== 'string') {
    throw new GantryError('INVALID_ARGUMENT', 'credsStore must be a string', { subject: path });
  }
  return {
    path,
    auths: objectField(value, 'auths', path),
    credHelpers: objectField(value, 'credHelpers', path),
    credsStore: credsStore || undefined,
  };
}

/** The helper that owns `host` in this file: `credHelpers[host]`, else `credsStore`. */
function helperFor(file: AuthFile, host: string): string | undefined {
  return credHelperFor(file, host) ?? file.credsStore;
}

function credHelperFor(file: AuthFile, host: string): string | undefined {
  for (const [raw, helper] of Object.entries(file.credHelpers)) {
    if (normalizeAuthKey(raw) === host && typeof helper === 'string' && helper !== '') return helper;
  }
  return undefined;
}

/** The credential in one `auths` entry: `identitytoken` wins, then `auth`, then `username`/`password`. */
function entryCredential(entry: unknown, path: string, key: string): Credential | undefined {
  const { identitytoken, auth, username, password } = asRecord(entry);
  if (typeof identitytoken === 'string' && identitytoken !== '')
    return { kind: 'identityToken', token: identitytoken };
  if (typeof auth === 'string' && auth !== '') {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `auths[${JSON.stringify(key)}].auth is not base64 of user:password`,
        {
          subject: path,
        },
      );
    }
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof username === 'string' && username !== '') {
    return { kind: 'basic', username, password: typeof password === 'string' ? password : '' };
  }
  return undefined;
}

function helperCredential(found: { username: string; secret: string }): Credential {
  // The helper protocol marks identity (refresh) tokens with this placeholder username.
  return found.username === '<token>'
    ? { kind: 'identityToken', token: found.secret }
    : { kind: 'basic', username: found.username, password: found.secret };
}

function fixedCredential(options: CredentialOptions): Credential | undefined {
  if (options.creds !== undefined && options.registryToken !== undefined) {
    throw new GantryError('INVALID_ARGUMENT', 'use either --creds or --registry-token, not both', {
      subject: '--creds',
    });
  }
  if (options.registryToken !== undefined) {
    if (options.registryToken === '') {
      throw new GantryError('INVALID_ARGUMENT', 'registry token must not be empty', {
        subject: '--registry-token',
      });
    }
    return { kind: 'registryToken', token: options.registryToken };
  }
  if (options.creds === undefined) return undefined;
  const colon = options.creds.indexOf(':');
  if (colon <= 0) {
    // The value is not quoted: it may be a password typed into the wrong place.
    throw new GantryError('INVALID_ARGUMENT', 'expected user:password', { subject: '--creds' });
  }
  return { kind: 'basic', username: options.creds.slice(0, colon), password: options.creds.slice(colon + 1) };
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function objectField(value: Record<string, unknown>, field: string, path: string): Record<string, unknown> {
  const inner = value[field];
  if (inner === undefined || inner === null) return {};
  if (typeof inner !== 'object' || Array.isArray(inner)) {
    throw new GantryError('INVALID_ARGUMENT', `${field} must be a JSON object`, { subject: path });
  }
  return inner as Record<string, unknown>;
}

function homeOf(options: CredentialOptions): string {
  return options.homeDir ?? (options.env ?? process.env).HOME ?? homedir();
}

function toHelperOptions(options: CredentialOptions): HelperOptions {
  const helperOptions: HelperOptions = { env: options.env ?? process.env };
  if (options.helperTimeoutMs !== undefined) helperOptions.timeoutMs = options.helperTimeoutMs;
  return helperOptions;
}

// ---- I/O --------------------------------------------------------------------------------------------------

async function lookup(
  paths: string[],
  scope: CredentialScope,
  helperOptions: HelperOptions,
): Promise<Credential | undefined> {
  for (const path of paths) {
    const value = await readAuthFileObject(path);
    if (!value) continue;
    const found = await lookupInFile(parseAuthFile(value, path), scope, helperOptions);
    if (found) return found;
  }
  return undefined;
}

async function lookupInFile(
  file: AuthFile,
  scope: CredentialScope,
  helperOptions: HelperOptions,
): Promise<Credential | undefined> {
  const host = normalizeAuthKey(scope.registry);
  const credHelper = credHelperFor(file, host);
  if (credHelper) {
    const found = await askHelper(credHelper, host, helperOptions);
    if (found) return found;
  }
  for (const key of lookupKeys(scope)) {
    for (const rawKey of matchingRawKeys(file.auths, key)) {
      const found = entryCredential(file.auths[rawKey], file.path, rawKey);
      if (found) return found;
    }
  }
  return file.credsStore ? askHelper(file.credsStore, host, helperOptions) : undefined;
}

async function askHelper(
  helper: string,
  host: string,
  options: HelperOptions,
): Promise<Credential | undefined> {
  for (const serverUrl of helperServerUrls(host)) {
    const found = await helperGet(helper, serverUrl, options);
    if (found) return helperCredential(found);
  }
  return undefined;
}

/** The auth file as a JSON object, or undefined if it does not exist. */
async function readAuthFileObject(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw asGantryError(err, 'IO', 'cannot read auth file', path);
  }
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // JSON.parse messages quote the input, which may be a secret: keep only that it failed.
    throw new GantryError('INVALID_ARGUMENT', 'auth file is not valid JSON', {
      subject: path,
      cause: err instanceof Error ? new Error(err.name) : undefined,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GantryError('INVALID_ARGUMENT', 'auth file must hold a JSON object', { subject: path });
  }
  return value as Record<string, unknown>;
}

/** Replaces the file in one rename so readers never see half of it; mode 0600, new parents 0700. */
async function writeAuthFileAtomic(path: string, value: Record<string, unknown>): Promise<void> {
  // Write through a symlinked auth file instead of replacing the link.
  const target = await realpath(path).catch(() => path);
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(value, null, '\t')}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw asGantryError(err, 'IO', 'cannot write auth file', path);
  }
}
