// `gantry build` COPY/ADD sources beyond plain context files, through the CLI into OCI layouts unpacked with
// umoci: heredocs (several, `<<-`, quoted delimiters, --chmod/--chown), ADD of local tar archives (plain,
// gzip, bzip2, xz, zstd; --unpack=false; whiteouts kept as files; unsafe archives refused), ADD of HTTP(S)
// URLs (file name, mode 0600, Last-Modified, --checksum failing closed, cache keys), ADD of Git repositories
// served by `git daemon`, COPY --parents and --link.

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeServerCerts } from '../harness/certs.js';
import { deathSignalPrefix, freePort, run, trackChild, trackTempDir, waitFor } from '../harness/procs.js';
import { gantry, gantryOk } from '../support/cli.js';

let base: string;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

/** A build context directory holding `files` (name to content) and the Dockerfile. */
async function context(dockerfile: string, files: Record<string, string | Buffer> = {}): Promise<string> {
  const dir = await fresh('ctx');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

interface Built {
  rootfs: string;
  stderr: string;
  layout: string;
}

/** Builds `ctx` into an OCI layout and unpacks the image with umoci. */
async function build(
  ctx: string,
  store: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Built> {
  const out = join(await fresh('out'), 'layout');
  const result = await gantryOk(
    [
      'build',
      '--timestamp',
      '2000000000',
      '--explain-cache',
      ...extra,
      '-o',
      `type=oci,dest=${out},name=t`,
      ctx,
    ],
    { env: { GANTRY_STORE: store, ...env } },
  );
  const dir = await fresh('unpack');
  await run('umoci', ['unpack', '--image', `${out}:t`, join(dir, 'b')]);
  return { rootfs: join(dir, 'b', 'rootfs'), stderr: result.stderr, layout: out };
}

/** The entry names of every layer of the layout's one image, read straight from the layer tars. */
async function layerNames(layout: string): Promise<string[]> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const names: string[] = [];
  for (const layer of manifest.layers as { digest: string }[]) {
    const { stdout } = await run('tar', ['-tzf', blob(layer.digest)]);
    names.push(...stdout.trim().split('\n'));
  }
  return names;
}

/** `path mode uid:gid size` for every entry below `root`. */
async function listing(root: string): Promise<string[]> {
  const { stdout } = await run('find', [root, '-mindepth', '1', '-printf', '%P %M %U:%G %s\n']);
  return stdout.trim().split('\n').sort();
}

function stepLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('['));
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-add-'));
  trackTempDir(base);
});

describe('COPY and ADD heredocs', () => {
  it('writes each heredoc as a file named after it, expanding unless quoted, with --chmod and --chown', async () => {
    const ctx = await context(
      [
        'FROM scratch',
        'ARG NAME=world',
        'COPY <<EOF /etc/greeting',
        'hello $NAME',
        'EOF',
        'COPY --chmod=0755 --chown=10:20 <<-"EOT" <<two /opt/',
        '\tliteral $NAME',
        '\tEOT',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, expanded by gantry
        'second ${NAME}',
        'two',
        'ADD <<notes.txt /srv/',
        'added',
        'notes.txt',
        '',
      ].join('\n'),
    );
    const { rootfs } = await build(ctx, await fresh('store'));
    expect(await listing(rootfs)).toEqual([
      'etc drwxr-xr-x 0:0 4096',
      'etc/greeting -rw-r--r-- 0:0 12',
      'opt drwxr-xr-x 10:20 4096',
      'opt/EOT -rwxr-xr-x 10:20 14',
      'opt/two -rwxr-xr-x 10:20 13',
      'srv drwxr-xr-x 0:0 4096',
      'srv/notes.txt -rw-r--r-- 0:0 6',
    ]);
    expect(await readFile(join(rootfs, 'etc/greeting'), 'utf8')).toBe('hello world\n');
    expect(await readFile(join(rootfs, 'opt/EOT'), 'utf8')).toBe('literal $NAME\n');
    expect(await readFile(join(rootfs, 'opt/two'), 'utf8')).toBe('second world\n');
  });

  it('keys the step on the heredoc body: a changed body misses, the same body hits', async () => {
    const store = await fresh('store');
    const dockerfile = (body: string) => `FROM scratch\nCOPY <<EOF /a.txt\n${body}\nEOF\n`;
    await build(await context(dockerfile('one')), store);
    const again = await build(await context(dockerfile('one')), store);
    expect(stepLines(again.stderr).filter((l) => l.includes('CACHED COPY'))).toHaveLength(1);
    const changed = await build(await context(dockerfile('two')), store);
    expect(await readFile(join(changed.rootfs, 'a.txt'), 'utf8')).toBe('two\n');
  });
});

/** A tar (via tar-stream) of the given entries, for archives `tar` would refuse to write. */
function tarOf(
  entries: {
    name: string;
    type?: 'file' | 'symlink' | 'link' | 'directory';
    body?: string;
    linkname?: string;
    mode?: number;
    uid?: number;
    gid?: number;
  }[],
): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) {
    const { body, ...header } = e;
    p.entry({ mode: 0o644, mtime: new Date(1_000_000_000_000), ...header }, body ?? '');
  }
  p.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    p.on('data', (c: Buffer) => chunks.push(c));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

describe('ADD of local tar archives', () => {
  it('extracts plain, gzip, bzip2, xz and zstd tars into dest, keeps them with --unpack=false or COPY', async () => {
    const tree = await fresh('tree');
    for (const kind of ['plain', 'gz', 'bz', 'xz', 'zst']) {
      await mkdir(join(tree, kind, 'sub'), { recursive: true });
      await writeFile(join(tree, kind, `${kind}.txt`), `${kind}\n`);
      await writeFile(join(tree, kind, 'sub', '.wh.ghost'), '');
      await symlink(`${kind}.txt`, join(tree, kind, 'link'));
    }
    const ctx = await context(
      [
        'FROM scratch',
        'ADD plain.tar /plain',
        'ADD gz.tar.gz bz.tar.bz2 xz.tar.xz zst.tar.zst /multi/',
        'ADD --unpack=false plain.tar /kept/',
        'COPY plain.tar /copied/',
        'ADD --chown=7:8 --chmod=0600 owned.tgz /owned/',
        '',
      ].join('\n'),
    );
    const tar = (out: string, kind: string, ...z: string[]) =>
      run('tar', [
        '-C',
        join(tree, kind),
        '--owner=5',
        '--group=6',
        '--numeric-owner',
        ...z,
        '-cf',
        join(ctx, out),
        '.',
      ]);
    await tar('plain.tar', 'plain');
    await tar('gz.tar.gz', 'gz', '-z');
    await tar('bz.tar.bz2', 'bz', '-j');
    await tar('xz.tar.xz', 'xz', '-J');
    await tar('zst.tar.zst', 'zst', '--zstd');
    await writeFile(join(ctx, 'owned.tgz'), await readFile(join(ctx, 'gz.tar.gz')));
    const { rootfs, layout } = await build(ctx, await fresh('store'));
    // Whiteout names in an ADDed archive are plain files; the layer carries them as written (and a reader
    // of the image, umoci here, then takes them for whiteouts, as it would with BuildKit's layer).
    expect(await layerNames(layout)).toEqual(
      expect.arrayContaining(['plain/sub/.wh.ghost', 'multi/sub/.wh.ghost']),
    );
    const all = await listing(rootfs);
    const size = (await readFile(join(ctx, 'plain.tar'))).length;
    expect(all.filter((l) => l.startsWith('plain'))).toEqual([
      'plain drwxr-xr-x 5:6 4096',
      'plain/link lrwxrwxrwx 5:6 9',
      'plain/plain.txt -rw-r--r-- 5:6 6',
      'plain/sub drwxr-xr-x 5:6 4096',
    ]);
    for (const kind of ['gz', 'bz', 'xz', 'zst']) {
      expect(all).toContain(`multi/${kind}.txt -rw-r--r-- 5:6 ${kind.length + 1}`);
    }
    expect(all).toContain(`kept/plain.tar -rw-r--r-- 0:0 ${size}`);
    expect(all).toContain(`copied/plain.tar -rw-r--r-- 0:0 ${size}`);
    // --chown applies to every entry; --chmod does not apply to unpacked entries (BuildKit).
    expect(all.filter((l) => l.startsWith('owned'))).toEqual([
      'owned drwxr-xr-x 7:8 4096',
      'owned/gz.txt -rw-r--r-- 7:8 3',
      'owned/link lrwxrwxrwx 7:8 6',
      'owned/sub drwxr-xr-x 7:8 4096',
    ]);
  });

  it.each([
    ['a name with ..', [{ name: '../evil', body: 'x' }], 'leaves the destination'],
    [
      'a symlink out',
      [{ name: 'up', type: 'symlink' as const, linkname: '../../etc' }],
      'outside the destination',
    ],
    [
      'a write through a symlink',
      [
        { name: 'l', type: 'symlink' as const, linkname: '/etc' },
        { name: 'l/passwd', body: 'x' },
      ],
      'through a symlink',
    ],
    [
      'a hard link out',
      [{ name: 'h', type: 'link' as const, linkname: '../../etc/passwd' }],
      'leaves the destination',
    ],
  ])('refuses an archive with %s, naming the Dockerfile line', async (_what, entries, message) => {
    const ctx = await context('FROM scratch\nCOPY <<EOF /ok\nok\nEOF\nADD bad.tar /dst/\n', {
      'bad.tar': await tarOf(entries),
    });
    const out = join(await fresh('out'), 'layout');
    const result = await gantry(['build', '-o', `type=oci,dest=${out},name=t`, ctx], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Dockerfile:5');
    expect(result.stderr).toContain('bad.tar');
    expect(result.stderr).toContain(message);
  });
});

describe('ADD of HTTP(S) URLs', () => {
  const hits = new Map<string, number>();
  const served = new Map<string, Buffer>();
  let flaky = 0;
  let server: Server;
  let tlsServer: Server;
  let url: string;
  let tlsUrl: string;
  let ca: string;
  const lastModified = 'Tue, 01 Jan 2030 00:00:00 GMT';

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/redirect') {
      res.writeHead(302, { location: '/files/app.txt' }).end();
    } else if (
      path === '/auth/x.bin' &&
      req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`
    ) {
      res.writeHead(401).end();
    } else if (path === '/flaky/once.txt' && flaky++ === 0) {
      res.writeHead(503).end();
    } else if (served.has(path)) {
      res.writeHead(200, { 'last-modified': lastModified }).end(served.get(path));
    } else {
      res.writeHead(404).end();
    }
  };

  const listen = (s: Server) =>
    new Promise<number>((resolve) =>
      s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)),
    );

  beforeAll(async () => {
    served.set('/files/app.txt', Buffer.from('app\n'));
    served.set('/files/data.tar.gz', Buffer.from('not really a tar, and never extracted\n'));
    served.set('/', Buffer.from('root\n'));
    served.set('/auth/x.bin', Buffer.from('secret stuff\n'));
    served.set('/flaky/once.txt', Buffer.from('flaky\n'));
    server = createServer(handler);
    url = `http://127.0.0.1:${await listen(server)}`;
    const certs = await makeServerCerts(await fresh('certs'));
    ca = certs.caCertPath;
    tlsServer = createHttpsServer(
      { cert: await readFile(certs.certPath), key: await readFile(certs.keyPath) },
      handler,
    ) as unknown as Server;
    tlsUrl = `https://127.0.0.1:${await listen(tlsServer)}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await new Promise((r) => tlsServer.close(r));
  });

  const sha256 = (b: Buffer | undefined) =>
    `sha256:${createHash('sha256')
      .update(b ?? '')
      .digest('hex')}`;

  it('downloads with BuildKit names, modes and mtimes, verifies --checksum, and keys the cache on content', async () => {
    const dockerfile = () =>
      [
        'FROM scratch',
        `ADD ${url}/files/app.txt /srv/`,
        `ADD --checksum=${sha256(served.get('/files/data.tar.gz'))} ${url}/files/data.tar.gz /dl/`,
        `ADD ${url}/ /unnamed/`,
        `ADD --chmod=0644 http://alice:s3cret@${url.slice(7)}/auth/x.bin /x.bin`,
        `ADD ${url}/flaky/once.txt /flaky.txt`,
        `ADD ${url}/redirect /redirected/`,
        '',
      ].join('\n');
    const store = await fresh('store');
    const first = await build(await context(dockerfile()), store);
    expect(await listing(first.rootfs)).toEqual([
      'dl drwxr-xr-x 0:0 4096',
      `dl/data.tar.gz -rw------- 0:0 ${served.get('/files/data.tar.gz')?.length}`,
      'flaky.txt -rw------- 0:0 6',
      'redirected drwxr-xr-x 0:0 4096',
      'redirected/redirect -rw------- 0:0 4',
      'srv drwxr-xr-x 0:0 4096',
      'srv/app.txt -rw------- 0:0 4',
      'unnamed drwxr-xr-x 0:0 4096',
      'unnamed/__unnamed__ -rw------- 0:0 5',
      'x.bin -rw-r--r-- 0:0 13',
    ]);
    const { stdout: mtime } = await run('stat', ['-c', '%Y', join(first.rootfs, 'srv/app.txt')]);
    expect(Number(mtime)).toBe(Date.parse(lastModified) / 1000);
    expect(await readFile(join(first.rootfs, 'x.bin'), 'utf8')).toBe('secret stuff\n');
    const config = await run('skopeo', ['inspect', '--config', `oci:${first.layout}:t`]);
    expect(config.stdout).not.toContain('s3cret');
    expect(config.stdout).toContain('http://***@127.0.0.1');

    // A checksummed URL is not fetched on a hit; the others are fetched and hit on unchanged content.
    const tarHits = hits.get('/files/data.tar.gz');
    const again = await build(await context(dockerfile()), store);
    expect(hits.get('/files/data.tar.gz')).toBe(tarHits);
    expect(stepLines(again.stderr).filter((l) => l.includes('CACHED ADD'))).toHaveLength(6);
    served.set('/files/app.txt', Buffer.from('app v2\n'));
    const changed = await build(await context(dockerfile()), store);
    expect(stepLines(changed.stderr).filter((l) => l.includes('CACHED ADD'))).toHaveLength(0);
    expect(stepLines(changed.stderr)[0]).toContain('miss: options changed: url:0');
    expect(await readFile(join(changed.rootfs, 'srv/app.txt'), 'utf8')).toBe('app v2\n');
  });

  it('extracts a downloaded archive only with --unpack=true', async () => {
    served.set('/files/real.tar', await tarOf([{ name: 'inside.txt', body: 'inside\n' }]));
    const ctx = await context(
      `FROM scratch\nADD --unpack=true ${url}/files/real.tar /x/\nADD ${url}/files/real.tar /y/\n`,
    );
    const { rootfs } = await build(ctx, await fresh('store'));
    const all = await listing(rootfs);
    expect(all).toContain('x/inside.txt -rw-r--r-- 0:0 7');
    expect(all).toContain(`y/real.tar -rw------- 0:0 ${served.get('/files/real.tar')?.length}`);
  });

  it('fails closed on a checksum mismatch, naming the URL and line, with nothing written', async () => {
    const wrong = sha256(Buffer.from('something else'));
    const ctx = await context(`FROM scratch\nADD --checksum=${wrong} ${url}/files/app.txt /app.txt\n`);
    const out = join(await fresh('out'), 'layout');
    const result = await gantry(['build', '-o', `type=oci,dest=${out},name=t`, ctx], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `Dockerfile:2: ADD ${url}/files/app.txt: checksum mismatch: expected ${wrong}`,
    );
    await expect(readFile(join(out, 'index.json'))).rejects.toThrow();
  });

  it('redacts credentials from download errors', async () => {
    const ctx = await context(`FROM scratch\nADD http://alice:t0ken@${url.slice(7)}/missing.txt /m.txt\n`);
    const result = await gantry(['build', ctx], { env: { GANTRY_STORE: await fresh('store') } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Dockerfile:2');
    expect(result.stderr).toContain('HTTP 404');
    expect(result.stderr).not.toContain('t0ken');
  });

  it('downloads over https from a server whose CA is trusted through NODE_EXTRA_CA_CERTS', async () => {
    const ctx = await context(`FROM scratch\nADD ${tlsUrl}/files/app.txt /app.txt\n`);
    const { rootfs } = await build(ctx, await fresh('store'), [], { NODE_EXTRA_CA_CERTS: ca });
    expect(await readFile(join(rootfs, 'app.txt'), 'utf8')).toMatch(/^app/);
  });
});

describe('ADD of Git repositories', () => {
  let daemon: ChildProcess;
  let remote: string;
  let repo: string;
  const commits: Record<string, string> = {};

  const git = async (...args: string[]) =>
    (
      await run('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args])
    ).stdout.trim();

  beforeAll(async () => {
    const root = await fresh('git');
    repo = join(root, 'repo.git');
    await mkdir(join(repo, 'sub'), { recursive: true });
    await git('init', '-q', '-b', 'main');
    await writeFile(join(repo, 'a.txt'), 'one\n');
    await writeFile(join(repo, 'sub', 'b.txt'), 'b\n');
    await writeFile(join(repo, 'run.sh'), '#!/bin/sh\n');
    await chmod(join(repo, 'run.sh'), 0o755);
    await git('add', '.');
    await git('commit', '-q', '-m', 'one');
    await git('tag', '-a', 'v1', '-m', 'v1');
    commits.v1 = await git('rev-parse', 'HEAD');
    await writeFile(join(repo, 'a.txt'), 'two\n');
    await git('commit', '-q', '-am', 'two');
    const port = await freePort();
    const prefix = deathSignalPrefix();
    // biome-ignore format: git daemon arguments read best as one command line
    const argv = [...prefix, 'git', 'daemon', '--reuseaddr', '--export-all', `--base-path=${root}`,
      '--listen=127.0.0.1', `--port=${port}`, root];
    daemon = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
    trackChild(daemon);
    remote = `git://127.0.0.1:${port}/repo.git`;
    const up = await waitFor(
      () =>
        run('git', ['ls-remote', remote], { timeoutMs: 5000 }).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    if (!up) throw new Error('git daemon did not start');
  });

  afterAll(() => {
    daemon.kill('SIGTERM');
  });

  it('checks out the ref (HEAD, a tag, a branch with a subdir), keeps .git when asked, checks --checksum', async () => {
    const dockerfile = [
      'FROM scratch',
      `ADD ${remote} /head/`,
      `ADD ${remote}#v1 /v1`,
      `ADD ${remote}#main:sub /sub/`,
      `ADD --keep-git-dir ${remote}#v1 /kept/`,
      `ADD --checksum=${commits.v1} --chown=3:4 ${remote}#v1 /checked/`,
      '',
    ].join('\n');
    const store = await fresh('store');
    const first = await build(await context(dockerfile), store);
    const all = await listing(first.rootfs);
    expect(all.filter((l) => l.startsWith('head') || l.startsWith('sub') || l.startsWith('checked'))).toEqual(
      [
        'checked drwxr-xr-x 3:4 4096',
        'checked/a.txt -rw-r--r-- 3:4 4',
        'checked/run.sh -rwxr-xr-x 3:4 10',
        'checked/sub drwxr-xr-x 3:4 4096',
        'checked/sub/b.txt -rw-r--r-- 3:4 2',
        'head drwxr-xr-x 0:0 4096',
        'head/a.txt -rw-r--r-- 0:0 4',
        'head/run.sh -rwxr-xr-x 0:0 10',
        'head/sub drwxr-xr-x 0:0 4096',
        'head/sub/b.txt -rw-r--r-- 0:0 2',
        'sub drwxr-xr-x 0:0 4096',
        'sub/b.txt -rw-r--r-- 0:0 2',
      ],
    );
    expect(await readFile(join(first.rootfs, 'head/a.txt'), 'utf8')).toBe('two\n');
    expect(await readFile(join(first.rootfs, 'v1/a.txt'), 'utf8')).toBe('one\n');
    expect(all.some((l) => l.startsWith('v1/.git'))).toBe(false);
    expect((await stat(join(first.rootfs, 'kept/.git/HEAD'))).isFile()).toBe(true);

    // The ref is resolved without a clone: unchanged refs hit, a moved branch misses.
    const again = await build(await context(dockerfile), store);
    expect(stepLines(again.stderr).filter((l) => l.includes('CACHED ADD'))).toHaveLength(5);
    await writeFile(join(repo, 'a.txt'), 'three\n');
    await git('commit', '-q', '-am', 'three');
    const moved = await build(await context(dockerfile), store);
    const lines = stepLines(moved.stderr);
    expect(lines[0]).toContain('miss: options changed: git:0');
    expect(lines[1]).toContain('miss: no cached step follows the parent');
    expect(await readFile(join(moved.rootfs, 'head/a.txt'), 'utf8')).toBe('three\n');
    expect(await readFile(join(moved.rootfs, 'checked/a.txt'), 'utf8')).toBe('one\n');
  });

  it('gives the same digest in fresh stores with --timestamp (Git checkout, heredoc, archive)', async () => {
    const tree = await fresh('tree');
    await writeFile(join(tree, 'f.txt'), 'f\n');
    const ctx = await context(
      `FROM scratch\nADD ${remote}#v1 /src/\nCOPY <<EOF /h.txt\nh\nEOF\nADD f.tgz /t/\n`,
    );
    await run('tar', ['-C', tree, '-czf', join(ctx, 'f.tgz'), '.']);
    const digests: string[] = [];
    for (const _ of [1, 2]) {
      const file = join(await fresh('digest'), 'digest');
      await gantryOk(['build', '--timestamp', '1700000000', '--digestfile', file, ctx], {
        env: { GANTRY_STORE: await fresh('store') },
      });
      digests.push(await readFile(file, 'utf8'));
    }
    expect(digests[0]).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(digests[1]).toBe(digests[0]);
  });

  it('clones an http(s) .git URL (dumb HTTP: no shallow fetch) and redacts credentials from git errors', async () => {
    const served = await fresh('dumb');
    await run('git', ['clone', '-q', '--bare', repo, join(served, 'repo.git')]);
    await run('git', ['-C', join(served, 'repo.git'), 'update-server-info']);
    const web = createServer((req, res) => {
      const path = join(served, decodeURIComponent((req.url ?? '/').split('?')[0] as string));
      if (!path.startsWith(served)) return void res.writeHead(403).end();
      readFile(path).then(
        (body) => res.writeHead(200).end(body),
        () => res.writeHead(404).end(),
      );
    });
    const port = await new Promise<number>((resolve) =>
      web.listen(0, '127.0.0.1', () => resolve((web.address() as { port: number }).port)),
    );
    try {
      const ctx = await context(`FROM scratch\nADD http://127.0.0.1:${port}/repo.git#v1:sub /sub/\n`);
      const { rootfs } = await build(ctx, await fresh('store'));
      expect(await listing(rootfs)).toEqual(['sub drwxr-xr-x 0:0 4096', 'sub/b.txt -rw-r--r-- 0:0 2']);
      const bad = await context(`FROM scratch\nADD http://bob:t0ken@127.0.0.1:${port}/missing.git /x/\n`);
      const result = await gantry(['build', bad], { env: { GANTRY_STORE: await fresh('store') } });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        `Dockerfile:2: git ls-remote http://***@127.0.0.1:${port}/missing.git failed`,
      );
      expect(result.stderr).not.toContain('t0ken');
    } finally {
      await new Promise((r) => web.close(r));
    }
  });

  it.each([
    ['a wrong --checksum', `ADD --checksum=${'0'.repeat(40)} REMOTE#v1 /x/`, 'checksum mismatch'],
    ['an unknown ref', 'ADD REMOTE#nope /x/', 'has no ref "nope"'],
    ['a missing subdir', 'ADD REMOTE#v1:nowhere /x/', 'has no directory "nowhere"'],
  ])('fails on %s, naming the line', async (_what, line, message) => {
    const ctx = await context(`FROM scratch\n${line.replace('REMOTE', remote)}\n`);
    const result = await gantry(['build', ctx], { env: { GANTRY_STORE: await fresh('store') } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Dockerfile:2');
    expect(result.stderr).toContain(message);
  });
});

describe('COPY --parents and --link', () => {
  it('keeps source paths below the context or the /./ pivot with --parents', async () => {
    const ctx = await context(
      [
        'FROM scratch',
        'COPY --parents x/a.txt y/b.txt /out/',
        'COPY --parents deep/./keep/c.txt /pivot/',
        'COPY --parents */*.txt /wild/',
        'COPY --parents deep/keep /dir',
        '',
      ].join('\n'),
      {
        'x/a.txt': 'a\n',
        'y/b.txt': 'b\n',
        'deep/keep/c.txt': 'c\n',
        'deep/keep/d.txt': 'd\n',
        'other/z.txt': 'z\n',
      },
    );
    await chmod(join(ctx, 'x'), 0o750);
    const { rootfs } = await build(ctx, await fresh('store'));
    expect(await listing(rootfs)).toEqual([
      'dir drwxr-xr-x 0:0 4096',
      'dir/deep drwxr-xr-x 0:0 4096',
      'dir/deep/keep drwxr-xr-x 0:0 4096',
      'dir/deep/keep/c.txt -rw-r--r-- 0:0 2',
      'dir/deep/keep/d.txt -rw-r--r-- 0:0 2',
      'out drwxr-xr-x 0:0 4096',
      'out/x drwxr-x--- 0:0 4096',
      'out/x/a.txt -rw-r--r-- 0:0 2',
      'out/y drwxr-xr-x 0:0 4096',
      'out/y/b.txt -rw-r--r-- 0:0 2',
      'pivot drwxr-xr-x 0:0 4096',
      'pivot/keep drwxr-xr-x 0:0 4096',
      'pivot/keep/c.txt -rw-r--r-- 0:0 2',
      'wild drwxr-xr-x 0:0 4096',
      'wild/other drwxr-xr-x 0:0 4096',
      'wild/other/z.txt -rw-r--r-- 0:0 2',
      'wild/x drwxr-x--- 0:0 4096',
      'wild/x/a.txt -rw-r--r-- 0:0 2',
      'wild/y drwxr-xr-x 0:0 4096',
      'wild/y/b.txt -rw-r--r-- 0:0 2',
    ]);
  });

  it('fails on a missing --parents source, naming the line', async () => {
    const ctx = await context('FROM scratch\nCOPY --parents nope/file.txt /out/\n');
    const result = await gantry(['build', ctx], { env: { GANTRY_STORE: await fresh('store') } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Dockerfile:2');
    expect(result.stderr).toContain('"nope/file.txt" not found');
  });

  it('--link copies onto an empty tree and stays a cache hit when an earlier step changes', async () => {
    const dockerfile = (base: string) =>
      [
        'FROM scratch',
        `COPY <<EOF /base.txt\n${base}\nEOF`,
        'COPY private/ /app/',
        'COPY --link app.txt /app/',
        'COPY --link <<EOF /etc/conf\nconf\nEOF',
        'COPY after.txt /after.txt',
        '',
      ].join('\n');
    const files = { 'app.txt': 'app\n', 'after.txt': 'after\n', 'private/p.txt': 'p\n' };
    const store = await fresh('store');
    const first = await context(dockerfile('one'), files);
    await chmod(join(first, 'private'), 0o700);
    const built = await build(first, store);
    // The --link layer made /app afresh (0755 root), so it does not keep the 0700 the image had.
    expect((await listing(built.rootfs)).filter((l) => l.startsWith('app'))).toEqual([
      'app drwxr-xr-x 0:0 4096',
      'app/app.txt -rw-r--r-- 0:0 4',
      'app/p.txt -rw-r--r-- 0:0 2',
    ]);
    const second = await context(dockerfile('two'), files);
    await chmod(join(second, 'private'), 0o700);
    const rebuilt = await build(second, store);
    const lines = stepLines(rebuilt.stderr);
    expect(lines.map((l) => (l.includes('CACHED') ? 'hit' : 'miss'))).toEqual([
      'miss',
      'miss',
      'hit',
      'hit',
      'miss',
    ]);
    expect(await readFile(join(rebuilt.rootfs, 'base.txt'), 'utf8')).toBe('two\n');
    expect(await readFile(join(rebuilt.rootfs, 'etc/conf'), 'utf8')).toBe('conf\n');
    expect(await readFile(join(rebuilt.rootfs, 'after.txt'), 'utf8')).toBe('after\n');
  });
});
