// Rootless ADD/COPY of the new sources (as the unprivileged user gantry-test, scripts/setup.sh creates it):
// an ADDed archive keeps its entries' owners and a read-only directory's contents, `--chown` gives every
// extracted entry its owner, and a heredoc with `--chown` is owned as asked — the owners recorded without root
// land in the layer's tar headers.
import { chownSync, mkdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, trackTempDir } from '../harness/procs.js';
import { asTestUser, installationForTestUser, testUser } from './sandbox-user.js';

let base: string;
let cli: string;
let user: ReturnType<typeof testUser>;

beforeAll(async () => {
  user = testUser();
  cli = installationForTestUser().cli;
  base = await mkdtemp(join(tmpdir(), 'gantry-build-add-rootless-'));
  trackTempDir(base);
  await chmod(base, 0o755);
});

function userDir(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  chownSync(dir, user.uid, user.gid);
  return dir;
}

function archive(): Promise<Buffer> {
  const p = tarPack();
  const mtime = new Date(1_000_000_000_000);
  p.entry({ name: 'ro/', type: 'directory', mode: 0o555, uid: 5, gid: 6, mtime });
  p.entry({ name: 'ro/f.txt', mode: 0o644, uid: 5, gid: 6, mtime }, 'f\n');
  p.entry({ name: 'ro/hard', type: 'link', linkname: 'ro/f.txt', uid: 5, gid: 6, mtime });
  p.entry({ name: 'mine.txt', mode: 0o600, uid: 1000, gid: 1000, mtime }, 'm\n');
  p.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    p.on('data', (c: Buffer) => chunks.push(c));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

/** Tar headers of every layer of the layout's image: `path mode uid:gid` (numeric ids, as stored). */
async function layerHeaders(layout: string): Promise<string[]> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const out: string[] = [];
  for (const layer of manifest.layers as { digest: string }[]) {
    const { stdout } = await run('tar', ['-tvzf', blob(layer.digest), '--numeric-owner']);
    for (const line of stdout.trim().split('\n')) {
      const f = line.split(/\s+/);
      out.push(`${(f[5] as string).replace(/\/$/, '')} ${f[0]} ${(f[1] as string).replace('/', ':')}`);
    }
  }
  return out.sort();
}

describe('rootless ADD (as gantry-test)', () => {
  it('records archive owners, --chown owners and heredoc owners in the layer', async () => {
    const ctx = userDir('ctx');
    await writeFile(
      join(ctx, 'Dockerfile'),
      'FROM scratch\nADD a.tar /a/\nADD --chown=9:9 a.tar /b/\nCOPY --chown=7:8 <<EOF /h/doc\nhi\nEOF\n',
    );
    await writeFile(join(ctx, 'a.tar'), await archive());
    await run('chmod', ['-R', 'a+rX', ctx]);
    const store = userDir('store');
    const out = join(userDir('out'), 'layout');
    const [file, ...rest] = asTestUser(
      process.execPath,
      cli,
      'build',
      '--timestamp',
      '0',
      '-o',
      `type=oci,dest=${out},name=t`,
      ctx,
    );
    await run(file as string, rest, {
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', CI: 'true', GANTRY_STORE: store },
    });
    expect(await layerHeaders(out)).toEqual([
      'a drwxr-xr-x 0:0',
      'a/mine.txt -rw------- 1000:1000',
      'a/ro dr-xr-xr-x 5:6',
      'a/ro/f.txt -rw-r--r-- 5:6',
      'a/ro/hard hrw-r--r-- 5:6',
      'b drwxr-xr-x 9:9',
      'b/mine.txt -rw------- 9:9',
      'b/ro dr-xr-xr-x 9:9',
      'b/ro/f.txt -rw-r--r-- 9:9',
      'b/ro/hard hrw-r--r-- 9:9',
      'h drwxr-xr-x 7:8',
      'h/doc -rw-r--r-- 7:8',
    ]);
  });
});
