/**
 * The README's end-to-end demo: start a local registry, make a small busybox image, copy it into the registry,
 * copy it registry-to-registry, inspect it, write it to an OCI archive for an air gap, and check with skopeo
 * that the digest survived. Runs the real `gantry` CLI (bin/gantry.js) for every step.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImageLayout, skopeo } from '../test/harness/fixtures.js';
import { startRegistry } from '../test/harness/registry.js';

function gantry(args: string[]): string {
  process.stdout.write(`\n$ gantry ${args.join(' ')}\n`);
  const result = spawnSync(
    process.execPath,
    [join(import.meta.dirname ?? '.', '..', 'bin', 'gantry.js'), ...args],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  process.stdout.write(result.stdout);
  if (result.status !== 0) throw new Error(`gantry ${args[0]} failed with exit code ${result.status}`);
  return result.stdout;
}

const work = await mkdtemp(join(tmpdir(), 'gantry-demo-'));
const registry = await startRegistry();
try {
  console.log(`Started a distribution registry on ${registry.host}`);
  const image = await makeImageLayout({
    dir: join(work, 'layout'),
    tag: 'demo',
    busybox: true,
    layers: 2,
    layerSize: 1 << 20,
  });
  console.log(`Made a busybox image as an OCI layout: ${image.layoutDir} (${image.digest})`);
  const a = `docker://${registry.host}/demo/busybox:1`;
  const b = `docker://${registry.host}/mirror/busybox:1`;
  gantry(['copy', `oci:${image.layoutDir}:demo`, a]);
  gantry(['copy', a, b]);
  const info = JSON.parse(gantry(['inspect', b])) as { Digest: string };
  gantry(['copy', b, `oci-archive:${join(work, 'busybox.tar')}:busybox`]);
  const skopeoDigest = (
    JSON.parse((await skopeo(['inspect', '--tls-verify=false', b])).stdout) as { Digest: string }
  ).Digest;
  console.log(
    `\nskopeo sees ${skopeoDigest}; gantry wrote ${info.Digest}; source layout had ${image.digest}`,
  );
  if (skopeoDigest !== image.digest || info.Digest !== image.digest)
    throw new Error('digest changed along the way');
  console.log('Demo OK: the image kept its digest through layout -> registry -> registry -> archive.');
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
