/**
 * Credentials: --creds/--registry-token, auth file lookup order and key matching, docker-credential-* helpers
 * (real executable scripts on a temp PATH), and login/logout storage. Every test gets its own temp HOME.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import {
  authFileSearchPaths,
  type CredentialOptions,
  createCredentialResolver,
  createScopedCredentialResolver,
  defaultAuthFilePath,
  lookupKeys,
  normalizeAuthKey,
  removeCredential,
  saveCredential,
} from '../../src/registry/credentials.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

let root: string;
let home: string;
let bin: string;
let store: string;

/** Options with a clean environment: nothing from the real user's HOME or XDG dirs leaks in. */
function opts(extra: Partial<CredentialOptions> = {}, env: NodeJS.ProcessEnv = {}): CredentialOptions {
  return {
    homeDir: home,
    env: { PATH: `${bin}:${process.env.PATH}`, TEST_CRED_STORE: store, ...env },
    ...extra,
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(value));
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

async function writeScript(name: string, body: string): Promise<void> {
  const path = join(bin, name);
  await writeFile(path, body);
  await chmod(path, 0o755);
}

async function errorOf(promise: Promise<unknown>): Promise<GantryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GantryError);
  return err as GantryError;
}

/** A helper implementing the docker credential helper protocol over a JSON file ($TEST_CRED_STORE). */
const TEST_HELPER = `#!/usr/bin/env node
const fs = require('node:fs');
const path = process.env.TEST_CRED_STORE;
const load = () => (fs.existsSync(path) ? JSON.parse(fs.readFileSync(path, 'utf8')) : {});
const input = fs.readFileSync(0, 'utf8').trim();
const data = load();
const action = process.argv[2];
if (action === 'get') {
  if (!data[input]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify({ ServerURL: input, Username: data[input].Username, Secret: data[input].Secret }));
} else if (action === 'store') {
  const req = JSON.parse(input);
  data[req.ServerURL] = { Username: req.Username, Secret: req.Secret };
  fs.writeFileSync(path, JSON.stringify(data));
} else if (action === 'erase') {
  if (!data[input]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  delete data[input];
  fs.writeFileSync(path, JSON.stringify(data));
} else { process.exit(3); }
`;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'gantry-creds-'));
  home = join(root, 'home');
  bin = join(root, 'bin');
  store = join(root, 'helper-store.json');
  await mkdir(home, { recursive: true });
  await mkdir(bin, { recursive: true });
  await writeScript('docker-credential-test', TEST_HELPER);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('--creds and --registry-token', () => {
  it('uses user:password for every registry, keeping colons in the password', async () => {
    const resolve = createCredentialResolver(opts({ creds: 'alice:pa:ss:word' }));
    expect(await resolve('a.example')).toEqual({ kind: 'basic', username: 'alice', password: 'pa:ss:word' });
    expect(await resolve('b.example:5000')).toEqual({
      kind: 'basic',
      username: 'alice',
      password: 'pa:ss:word',
    });
  });

  it('rejects a user without a password, and an empty user', () => {
    for (const creds of ['alice', ':secret']) {
      let thrown: unknown;
      try {
        createCredentialResolver(opts({ creds }));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: 'INVALID_ARGUMENT', subject: '--creds' });
      expect((thrown as Error).message).not.toContain('secret');
    }
  });

  it('uses a registry token as a bearer token', async () => {
    const resolve = createCredentialResolver(opts({ registryToken: 'tok123' }));
    expect(await resolve('a.example')).toEqual({ kind: 'registryToken', token: 'tok123' });
  });

  it('refuses --creds together with --registry-token', () => {
    expect(() => createCredentialResolver(opts({ creds: 'a:b', registryToken: 't' }))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('wins over auth files', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'a.example': { auth: b64('file:pw') } },
    });
    const resolve = createCredentialResolver(opts({ creds: 'flag:pw' }));
    expect(await resolve('a.example')).toMatchObject({ username: 'flag' });
  });
});

describe('auth file lookup order', () => {
  it('lists the files containers/image and docker read, in order', () => {
    const env = {
      REGISTRY_AUTH_FILE: join(root, 'env-auth.json'),
      XDG_RUNTIME_DIR: join(root, 'run'),
      XDG_CONFIG_HOME: join(root, 'config'),
      DOCKER_CONFIG: join(root, 'docker'),
    };
    expect(authFileSearchPaths(opts({}, env))).toEqual([
      join(root, 'env-auth.json'),
      join(root, 'run', 'containers', 'auth.json'),
      join(root, 'config', 'containers', 'auth.json'),
      join(root, 'docker', 'config.json'),
    ]);
    expect(authFileSearchPaths(opts())).toEqual([
      join(home, '.config', 'containers', 'auth.json'),
      join(home, '.docker', 'config.json'),
    ]);
    expect(authFileSearchPaths(opts({ authFile: join(root, 'only.json') }, env))).toEqual([
      join(root, 'only.json'),
    ]);
  });

  it('takes the first file that has the registry, falling through files that do not', async () => {
    const env = {
      REGISTRY_AUTH_FILE: join(root, 'env-auth.json'),
      XDG_RUNTIME_DIR: join(root, 'run'),
    };
    await writeJson(env.REGISTRY_AUTH_FILE, { auths: { 'only-env.example': { auth: b64('env:1') } } });
    await writeJson(join(root, 'run', 'containers', 'auth.json'), {
      auths: { 'a.example': { auth: b64('runtime:1') } },
    });
    await writeJson(join(home, '.config', 'containers', 'auth.json'), {
      auths: { 'a.example': { auth: b64('config:1') }, 'b.example': { auth: b64('config:2') } },
    });
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'b.example': { auth: b64('docker:2') }, 'c.example': { auth: b64('docker:3') } },
    });
    const resolve = createCredentialResolver(opts({}, env));
    expect(await resolve('only-env.example')).toMatchObject({ username: 'env' });
    expect(await resolve('a.example')).toMatchObject({ username: 'runtime' });
    expect(await resolve('b.example')).toMatchObject({ username: 'config' });
    expect(await resolve('c.example')).toMatchObject({ username: 'docker', password: '3' });
    expect(await resolve('d.example')).toBeUndefined();
  });

  it('honours XDG_CONFIG_HOME and DOCKER_CONFIG', async () => {
    const env = { XDG_CONFIG_HOME: join(root, 'xdg'), DOCKER_CONFIG: join(root, 'dockercfg') };
    await writeJson(join(root, 'xdg', 'containers', 'auth.json'), {
      auths: { 'a.example': { auth: b64('x:1') } },
    });
    await writeJson(join(root, 'dockercfg', 'config.json'), { auths: { 'b.example': { auth: b64('d:1') } } });
    const resolve = createCredentialResolver(opts({}, env));
    expect(await resolve('a.example')).toMatchObject({ username: 'x' });
    expect(await resolve('b.example')).toMatchObject({ username: 'd' });
  });

  it('reads only --authfile when it is given', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'a.example': { auth: b64('docker:1') } },
    });
    const authFile = join(root, 'explicit.json');
    await writeJson(authFile, { auths: { 'b.example': { auth: b64('explicit:1') } } });
    const resolve = createCredentialResolver(opts({ authFile }));
    expect(await resolve('a.example')).toBeUndefined();
    expect(await resolve('b.example')).toMatchObject({ username: 'explicit' });
  });

  it('is anonymous when no auth file exists', async () => {
    expect(await createCredentialResolver(opts())('a.example')).toBeUndefined();
  });

  it('names the file when it is not valid JSON, without quoting it', async () => {
    const path = join(home, '.docker', 'config.json');
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '{"auths": {"a.example": {"auth": "c2VjcmV0OnNlY3JldA=="');
    const err = await errorOf(createCredentialResolver(opts())('a.example'));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.subject).toBe(path);
    expect(err.message).not.toContain('c2VjcmV0');
  });

  it('names the file and key when an auth entry is not base64 of user:password', async () => {
    const authFile = join(root, 'bad.json');
    await writeJson(authFile, { auths: { 'a.example': { auth: b64('nocolon') } } });
    const err = await errorOf(createCredentialResolver(opts({ authFile }))('a.example'));
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', subject: authFile });
    expect(err.message).toContain('a.example');
  });
});

describe('auth entries and keys', () => {
  it('matches https://index.docker.io/v1/ for docker.io and its API host', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } },
    });
    const resolve = createCredentialResolver(opts());
    expect(await resolve('docker.io')).toEqual({ kind: 'basic', username: 'hub', password: 'pw' });
    expect(await resolve('registry-1.docker.io')).toMatchObject({ username: 'hub' });
  });

  it('normalises URL keys with schemes, ports and API version paths', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeAuthKey('http://Reg.Example:5000/v2/')).toBe('reg.example:5000');
    expect(normalizeAuthKey('reg.example:5000/v2/')).toBe('reg.example:5000');
    expect(normalizeAuthKey('reg.example/team/app')).toBe('reg.example/team/app');
    expect(normalizeAuthKey('https://reg.example/team')).toBe('reg.example');
  });

  it('prefers the exact key over a URL alias of the same registry', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: {
        'https://reg.example/v1/': { auth: b64('legacy:pw') },
        'reg.example': { auth: b64('exact:pw') },
      },
    });
    expect(await createCredentialResolver(opts())('reg.example')).toMatchObject({ username: 'exact' });
  });

  it('reads username/password fields and identity tokens', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: {
        'a.example': { username: 'alice', password: 'p:w' },
        'b.example': { auth: b64('bob:pw'), identitytoken: 'refresh-token' },
        'c.example': {},
      },
    });
    const resolve = createCredentialResolver(opts());
    expect(await resolve('a.example')).toEqual({ kind: 'basic', username: 'alice', password: 'p:w' });
    expect(await resolve('b.example')).toEqual({ kind: 'identityToken', token: 'refresh-token' });
    expect(await resolve('c.example')).toBeUndefined();
  });

  it('matches repository-scoped keys, most specific first', async () => {
    await writeJson(join(home, '.config', 'containers', 'auth.json'), {
      auths: {
        'reg.example': { auth: b64('host:pw') },
        'reg.example/team': { auth: b64('team:pw') },
        'reg.example/team/app': { auth: b64('app:pw') },
      },
    });
    const resolve = createScopedCredentialResolver(opts());
    expect(await resolve({ registry: 'reg.example', repository: 'team/app' })).toMatchObject({
      username: 'app',
    });
    expect(await resolve({ registry: 'reg.example', repository: 'team/other' })).toMatchObject({
      username: 'team',
    });
    expect(await resolve({ registry: 'reg.example', repository: 'elsewhere/app' })).toMatchObject({
      username: 'host',
    });
    expect(await resolve({ registry: 'reg.example' })).toMatchObject({ username: 'host' });
    expect(await createCredentialResolver(opts())('reg.example')).toMatchObject({ username: 'host' });
  });

  it('lists scoped lookup keys from the repository down to the host', () => {
    expect(lookupKeys({ registry: 'index.docker.io', repository: 'library/busybox' })).toEqual([
      'docker.io/library/busybox',
      'docker.io/library',
      'docker.io',
    ]);
  });
});

describe('credential helpers', () => {
  it('asks credHelpers[registry] and reads Username/Secret', async () => {
    await writeJson(store, { 'reg.example': { Username: 'helped', Secret: 's3cret' } });
    await writeJson(join(home, '.docker', 'config.json'), {
      credHelpers: { 'reg.example': 'test' },
      auths: { 'reg.example': { auth: b64('file:pw') } },
    });
    expect(await createCredentialResolver(opts())('reg.example')).toEqual({
      kind: 'basic',
      username: 'helped',
      password: 's3cret',
    });
  });

  it('treats Username <token> as an identity token', async () => {
    await writeJson(store, { 'reg.example': { Username: '<token>', Secret: 'refresh' } });
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'reg.example': 'test' } });
    expect(await createCredentialResolver(opts())('reg.example')).toEqual({
      kind: 'identityToken',
      token: 'refresh',
    });
  });

  it('falls back to credsStore for registries without a credHelpers entry', async () => {
    await writeJson(store, { 'https://index.docker.io/v1/': { Username: 'hub', Secret: 'pw' } });
    await writeJson(join(home, '.docker', 'config.json'), {
      credsStore: 'test',
      auths: { 'https://index.docker.io/v1/': {} },
    });
    expect(await createCredentialResolver(opts())('docker.io')).toMatchObject({ username: 'hub' });
  });

  it('is anonymous when the helper answers "credentials not found"', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      credsStore: 'test',
      credHelpers: { 'a.example': 'test' },
    });
    expect(await createCredentialResolver(opts())('a.example')).toBeUndefined();
  });

  it('reports a failing helper by name and registry', async () => {
    await writeScript('docker-credential-broken', '#!/bin/sh\necho "keychain locked" >&2\nexit 2\n');
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'a.example': 'broken' } });
    const err = await errorOf(createCredentialResolver(opts())('a.example'));
    expect(err.code).toBe('CREDENTIAL_HELPER');
    expect(err.subject).toBe('a.example');
    expect(err.message).toContain('docker-credential-broken');
    expect(err.message).toContain('keychain locked');
  });

  it('reports a helper missing from PATH', async () => {
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'a.example': 'absent' } });
    const err = await errorOf(createCredentialResolver(opts())('a.example'));
    expect(err.code).toBe('CREDENTIAL_HELPER');
    expect(err.message).toContain('docker-credential-absent');
  });

  it('does not quote malformed helper output, which may hold the secret', async () => {
    await writeScript(
      'docker-credential-garbage',
      '#!/bin/sh\necho \'{"Username":"u","Secret":"hunter2"\'\n',
    );
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'a.example': 'garbage' } });
    const err = await errorOf(createCredentialResolver(opts())('a.example'));
    expect(err.code).toBe('CREDENTIAL_HELPER');
    expect(err.message).not.toContain('hunter2');
  });

  it('kills a helper that hangs, even when its children keep the pipes open', async () => {
    await writeScript('docker-credential-slow', '#!/bin/sh\nsleep 3\n');
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'a.example': 'slow' } });
    const started = Date.now();
    const err = await errorOf(createCredentialResolver(opts({ helperTimeoutMs: 300 }))('a.example'));
    expect(err.code).toBe('CREDENTIAL_HELPER');
    expect(err.message).toContain('timed out');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('stops reading a helper that answers with too much output', async () => {
    await writeScript('docker-credential-chatty', '#!/bin/sh\nexec yes credential\n');
    await writeJson(join(home, '.docker', 'config.json'), { credHelpers: { 'a.example': 'chatty' } });
    const err = await errorOf(createCredentialResolver(opts())('a.example'));
    expect(err.code).toBe('CREDENTIAL_HELPER');
    expect(err.message).toContain('more than');
  });
});

describe('login and logout', () => {
  it('writes the containers auth file with mode 0600 in a 0700 directory, then finds it', async () => {
    await saveCredential('reg.example:5000', { username: 'alice', password: 'pa:ss' }, opts());
    const path = join(home, '.config', 'containers', 'auth.json');
    expect(defaultAuthFilePath(opts())).toBe(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(path))).mode & 0o777).toBe(0o700);
    expect(await readJson(path)).toEqual({ auths: { 'reg.example:5000': { auth: b64('alice:pa:ss') } } });
    expect(await readdir(dirname(path))).toEqual(['auth.json']);
    expect(await createCredentialResolver(opts())('reg.example:5000')).toEqual({
      kind: 'basic',
      username: 'alice',
      password: 'pa:ss',
    });
  });

  it('writes under XDG_RUNTIME_DIR, or $REGISTRY_AUTH_FILE, when set', () => {
    expect(defaultAuthFilePath(opts({}, { XDG_RUNTIME_DIR: '/run/user/7' }))).toBe(
      '/run/user/7/containers/auth.json',
    );
    expect(
      defaultAuthFilePath(opts({}, { XDG_RUNTIME_DIR: '/run/user/7', REGISTRY_AUTH_FILE: '/x/a.json' })),
    ).toBe('/x/a.json');
  });

  it('keeps other entries and unknown fields, and updates a docker URL key in place', async () => {
    const authFile = join(root, 'config.json');
    await writeJson(authFile, {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('old:pw'), email: 'kept@example' },
        'other.example': { auth: b64('other:pw') },
      },
      HttpHeaders: { 'User-Agent': 'x' },
    });
    await saveCredential('docker.io', { username: 'new', password: 'pw2' }, opts({ authFile }));
    expect(await readJson(authFile)).toEqual({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('new:pw2'), email: 'kept@example' },
        'other.example': { auth: b64('other:pw') },
      },
      HttpHeaders: { 'User-Agent': 'x' },
    });
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
    expect(await createCredentialResolver(opts({ authFile }))('docker.io')).toMatchObject({
      username: 'new',
    });
  });

  it('writes through a symlinked auth file', async () => {
    const real = join(root, 'real.json');
    const link = join(root, 'link.json');
    await writeJson(real, {});
    await symlink(real, link);
    await saveCredential('a.example', { username: 'u', password: 'p' }, opts({ authFile: link }));
    expect(await readJson(real)).toEqual({ auths: { 'a.example': { auth: b64('u:p') } } });
  });

  it('stores a repository-scoped entry', async () => {
    const authFile = join(root, 'auth.json');
    await saveCredential('reg.example/team', { username: 't', password: 'p' }, opts({ authFile }));
    const resolve = createScopedCredentialResolver(opts({ authFile }));
    expect(await resolve({ registry: 'reg.example', repository: 'team/app' })).toMatchObject({
      username: 't',
    });
    expect(await resolve({ registry: 'reg.example', repository: 'other/app' })).toBeUndefined();
  });

  it('logs out: removes every key of the registry, keeps the rest, and reports when nothing was there', async () => {
    const authFile = join(root, 'auth.json');
    await writeJson(authFile, {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('a:b') },
        'docker.io': { auth: b64('c:d') },
        'other.example': { auth: b64('e:f') },
      },
    });
    expect(await removeCredential('docker.io', opts({ authFile }))).toBe(true);
    expect(await readJson(authFile)).toEqual({ auths: { 'other.example': { auth: b64('e:f') } } });
    expect(await removeCredential('docker.io', opts({ authFile }))).toBe(false);
    expect(await removeCredential('a.example', opts({ authFile: join(root, 'missing.json') }))).toBe(false);
  });

  it('rejects a username with a colon, which base64 user:password cannot hold', async () => {
    const err = await errorOf(saveCredential('a.example', { username: 'a:b', password: 'p' }, opts()));
    expect(err.code).toBe('INVALID_ARGUMENT');
  });

  it('refuses to overwrite an auth file that is not valid JSON', async () => {
    const authFile = join(root, 'auth.json');
    await writeFile(authFile, 'not json');
    const err = await errorOf(
      saveCredential('a.example', { username: 'u', password: 'p' }, opts({ authFile })),
    );
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', subject: authFile });
    expect(await readFile(authFile, 'utf8')).toBe('not json');
  });

  it('stores in and erases from the helper the file names, leaving the file alone', async () => {
    const authFile = join(root, 'config.json');
    await writeJson(authFile, { credHelpers: { 'reg.example': 'test' } });
    const options = opts({ authFile });
    await saveCredential('reg.example', { username: 'alice', password: 'pw' }, options);
    expect(await readJson(store)).toEqual({ 'reg.example': { Username: 'alice', Secret: 'pw' } });
    expect(await readJson(authFile)).toEqual({ credHelpers: { 'reg.example': 'test' } });
    expect(await createCredentialResolver(options)('reg.example')).toMatchObject({ username: 'alice' });
    expect(await removeCredential('reg.example', options)).toBe(true);
    expect(await readJson(store)).toEqual({});
    expect(await removeCredential('reg.example', options)).toBe(false);
  });

  it('stores Docker Hub in a credsStore under the docker index URL', async () => {
    const authFile = join(root, 'config.json');
    await writeJson(authFile, { credsStore: 'test' });
    await saveCredential('docker.io', { username: 'hub', password: 'pw' }, opts({ authFile }));
    expect(await readJson(store)).toEqual({
      'https://index.docker.io/v1/': { Username: 'hub', Secret: 'pw' },
    });
  });

  it('names the helper and registry when store fails, without the password', async () => {
    await writeScript('docker-credential-echo', '#!/bin/sh\ncat\nexit 1\n');
    const authFile = join(root, 'config.json');
    await writeJson(authFile, { credHelpers: { 'reg.example': 'echo' } });
    const err = await errorOf(
      saveCredential('reg.example', { username: 'alice', password: 'topsecret' }, opts({ authFile })),
    );
    expect(err).toMatchObject({ code: 'CREDENTIAL_HELPER', subject: 'reg.example' });
    expect(err.message).toContain('docker-credential-echo store');
    expect(err.message).not.toContain('topsecret');
  });
});
