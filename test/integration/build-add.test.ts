// `gantry build` COPY/ADD sources beyond plain context files, through the CLI into OCI layouts unpacked with
// umoci: heredocs (several, `<<-`, quoted delimiters, --chmod/--chown), ADD of local tar archives (plain,
// gzip, bzip2, xz, zstd; --unpack=false; whiteouts kept as files; unsafe archives refused), ADD of HTTP(S)
// URLs (file name, mode 0600, Last-Modified, --checksum failing closed, cache keys), ADD of Git repositories
// served by `git daemon`, COPY --parents and --link.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeServerCerts } from '../harness/certs.js';
import { run, trackTempDir } from '../harness/procs.js';
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
}

/** Builds `ctx` into an OCI layout and unpacks the image with umoci. */
async function build(ctx: string, store: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Built> {
  const out = join(await fresh('out'), 'layout');
  const result = await gantryOk(
    ['build', '--timestamp', '2000000000', '--explain-cache', ...extra, '-o', `type=oci,dest=${out},name=t`, ctx],
    { env: { GANTRY_STORE: store, ...env } },
  );
  const dir = await fresh('unpack');
  await run('umoci', ['unpack', '--image', `${out}:t`, join(dir, 'b')]);
  return { rootfs: join(dir, 'b', 'rootfs'), stderr: result.stderr };
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
