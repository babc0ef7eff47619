/**
 * The README's end-to-end demo of gantry's main job, with no daemon and nothing downloaded: start a local
 * registry, make a busybox base image, build a Dockerfile on it (COPY + RUN in a rootless sandbox) and push the
 * result, sign it and verify the signature, run it, and mirror it with its signature into an air-gap archive.
 * Every step runs the real `gantry` CLI (bin/gantry.cjs); skopeo checks the digest at the end.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImageLayout, skopeo } from '../test/harness/fixtures.js';
import { startRegistry } from '../test/harness/registry.js';

const work = await mkdtemp(join(tmpdir(), 'gantry-demo-'));
const env = { ...process.env, COSIGN_PASSWORD: 'demo-password', GANTRY_STORE: join(work, 'store') };

function gantry(args: string[], options: { cwd?: string } = {}): string {
  process.stdout.write(`\n$ gantry ${args.join(' ')}\n`);
  const result = spawnSync(
    process.execPath,
    [join(import.meta.dirname ?? '.', '..', 'bin', 'gantry.cjs'), ...args],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      env,
      cwd: options.cwd ?? work,
    },
  );
  process.stdout.write(result.stdout);
  if (result.status !== 0) throw new Error(`gantry ${args[0]} failed with exit code ${result.status}`);
  return result.stdout;
}

const registry = await startRegistry();
try {
  console.log(`Started a distribution registry on ${registry.host}`);
  const base = await makeImageLayout({
    dir: join(work, 'base'),
    tag: 'base',
    busybox: true,
    layers: 1,
    layerSize: 4096,
  });
  const baseRef = `${registry.host}/demo/busybox:1`;
  gantry(['copy', '--quiet', `oci:${base.layoutDir}:base`, `docker://${baseRef}`]);

  const context = join(work, 'context');
  await mkdir(context, { recursive: true });
  await writeFile(join(context, 'hello.txt'), 'Hello from a gantry-built image.\n');
  await writeFile(
    join(context, 'Dockerfile'),
    [
      `FROM ${baseRef}`,
      'COPY hello.txt /srv/hello.txt',
      'RUN echo "built as uid $(id -u) on $(hostname)" > /srv/build.txt',
      'ENV GREETING=hi',
      'CMD ["cat", "/srv/hello.txt", "/srv/build.txt"]',
      '',
    ].join('\n'),
  );
  const app = `${registry.host}/demo/app:1`;
  const digestFile = join(work, 'app.digest');
  gantry([
    'build',
    '--timestamp',
    '0',
    '--output',
    `type=registry,name=${app}`,
    '--digestfile',
    digestFile,
    context,
  ]);
  const digest = (await readFile(digestFile, 'utf8')).trim();

  gantry(['generate-key-pair'], { cwd: work });
  gantry(['sign', '--key', join(work, 'cosign.key'), app]);
  gantry(['verify', '--key', join(work, 'cosign.pub'), app]);

  const output = gantry(['run', '--rm', app]);
  if (!output.includes('Hello from a gantry-built image.'))
    throw new Error('the image did not print its greeting');

  const archive = join(work, 'app.tar');
  gantry(['copy', `docker://${app}`, `oci:${join(work, 'airgap')}:app`]);
  gantry(['copy', `docker://${app}`, `oci-archive:${archive}:app`]);

  const skopeoDigest = (
    JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${app}`])).stdout) as {
      Digest: string;
    }
  ).Digest;
  console.log(`\nskopeo sees ${skopeoDigest}; gantry build pushed ${digest}`);
  if (skopeoDigest !== digest) throw new Error('digest changed along the way');
  console.log('Demo OK: built, pushed, signed, verified, ran and mirrored without a daemon.');
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
