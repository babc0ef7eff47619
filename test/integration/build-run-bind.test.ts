// `gantry build` RUN --mount=type=bind and type=tmpfs as gantry-test: the context (after .dockerignore) read-only
// by default, a `source=` subdirectory mounted rw whose writes reach neither the context nor the layer, a
// stage's directory (`from=`) read-only and rw at a WORKDIR-relative target, and a real size-limited tmpfs.
// The layers hold only what the commands wrote outside the mounts. Bound context files are in the step's key:
// editing one reruns the step; editing an ignored one does not.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/procs.js';
import { layerEntries, type RunBench, runBench, unpack } from './build-run-harness.js';

const DOCKERFILE = `ARG BASE
FROM \${BASE} AS builder
RUN mkdir -p /out && echo built > /out/artifact

FROM \${BASE}
WORKDIR /w
RUN --mount=type=bind,target=/ctx sh -c 'cat /ctx/src/app.txt > from-ctx; ls /ctx/src > ctx-listing; \\
  if touch /ctx/src/new 2>/dev/null; then echo writable; else echo readonly; fi > ctx-ro'
RUN --mount=type=bind,source=src,target=/src,rw sh -c 'echo scribble > /src/app.txt; echo extra > /src/extra; \\
  cat /src/app.txt > rw-saw'
RUN --mount=type=bind,from=builder,source=/out,target=/art sh -c 'cat /art/artifact > from-stage; \\
  if echo x > /art/artifact 2>/dev/null; then echo writable; else echo readonly; fi > stage-ro'
RUN --mount=type=bind,from=builder,source=/out,target=rel,rw sh -c 'echo changed > rel/artifact; cat rel/artifact > stage-rw'
RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'grep " /scratch " /proc/mounts | cut -d" " -f3 > tmpfs-type; \\
  echo hi > /scratch/file; if dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null; \\
  then echo fit; else echo full; fi > tmpfs-size'
`;

describe('gantry build RUN --mount=type=bind|tmpfs (as gantry-test)', () => {
  let bench: RunBench;
  beforeAll(async () => {
    bench = await runBench();
  });

  it('without ignore rules mounts the context itself (read-only, or a union whose writes are discarded), and an image', async () => {
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({
      Dockerfile: `ARG BASE
FROM \${BASE}
RUN --mount=type=bind,source=data,target=/d sh -c 'cat /d/in > /got-ro; if touch /d/x 2>/dev/null; then echo writable; else echo readonly; fi >> /got-ro'
RUN --mount=type=bind,target=/d,rw sh -c 'echo overwritten > /d/data/in; rm /d/Dockerfile; cat /d/data/in > /got-rw'
RUN --mount=type=bind,from=${bench.image},source=/bin,target=/img sh -c 'test -x /img/busybox && echo image > /got-image'
`,
      'data/in': 'input\n',
    });
    const r = await bench.gantry(
      ['build', '--build-arg', `BASE=${bench.image}`, '-o', `type=oci,dest=${out},name=v1`, ctx],
      { GANTRY_STORE: bench.userDir('store') },
    );
    expect(r.code, r.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    expect(await readFile(join(rootfs, 'got-ro'), 'utf8')).toBe('input\nreadonly\n');
    expect(await readFile(join(rootfs, 'got-rw'), 'utf8')).toBe('overwritten\n');
    expect(await readFile(join(ctx, 'data', 'in'), 'utf8')).toBe('input\n');
    expect(await readFile(join(ctx, 'Dockerfile'), 'utf8')).toContain('FROM');
    expect(await readFile(join(rootfs, 'got-image'), 'utf8')).toBe('image\n');
    expect((await layerEntries(out, 'v1')).slice(-3)).toEqual([['got-ro'], ['got-rw'], ['got-image']]);
  });

  it('mounts a cache and a tmpfs inside a read-only context mount without touching the context', async () => {
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({
      Dockerfile: `ARG BASE
FROM \${BASE}
RUN --mount=type=bind,target=/src --mount=type=cache,id=nested,target=/src/cache \\
  --mount=type=tmpfs,target=/src/data/tmp sh -c 'echo x > /src/cache/f; touch /src/data/tmp/t; \\
  ls /src/cache /src/data/tmp > /nested; if touch /src/new 2>/dev/null; then echo writable; else echo readonly; fi >> /nested'
`,
      'data/in': 'input\n',
    });
    const r = await bench.gantry(
      ['build', '--build-arg', `BASE=${bench.image}`, '-o', `type=oci,dest=${out},name=v1`, ctx],
      { GANTRY_STORE: bench.userDir('store') },
    );
    expect(r.code, r.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    expect(await readFile(join(rootfs, 'nested'), 'utf8')).toBe(
      '/src/cache:\nf\n\n/src/data/tmp:\nt\nreadonly\n',
    );
    // The nested mount points were made in scratch space, not in the context.
    const { stdout } = await run('find', [ctx, '-mindepth', '1', '-printf', '%P\\n']);
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(['Dockerfile', 'data', 'data/in']);
    expect((await layerEntries(out, 'v1')).slice(-1)).toEqual([['nested']]);
  });

  it('mounts the context, a stage and a tmpfs; nothing mounted or written through a mount lands in a layer', async () => {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({
      Dockerfile: DOCKERFILE,
      '.dockerignore': 'src/*.key\n',
      'src/app.txt': 'app-v1\n',
      'src/private.key': 'not-for-the-build\n',
    });
    const build = (tag: string) =>
      bench.gantry(
        [
          'build',
          '--explain-cache',
          '--build-arg',
          `BASE=${bench.image}`,
          '-o',
          `type=oci,dest=${out},name=${tag}`,
          ctx,
        ],
        { GANTRY_STORE: store },
      );
    const first = await build('v1');
    expect(first.code, first.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    const read = async (name: string) => (await readFile(join(rootfs, 'w', name), 'utf8')).trim();
    expect(await read('from-ctx')).toBe('app-v1');
    // .dockerignore applies to bind mounts as to COPY.
    expect(await read('ctx-listing')).toBe('app.txt');
    expect(await read('ctx-ro')).toBe('readonly');
    expect(await read('rw-saw')).toBe('scribble');
    expect(await read('from-stage')).toBe('built');
    expect(await read('stage-ro')).toBe('readonly');
    expect(await read('stage-rw')).toBe('changed');
    expect(await read('tmpfs-type')).toBe('tmpfs');
    expect(await read('tmpfs-size')).toBe('full');
    // rw writes are discarded: the context is untouched.
    expect(await readFile(join(ctx, 'src', 'app.txt'), 'utf8')).toBe('app-v1\n');
    await expect(readFile(join(ctx, 'src', 'extra'))).rejects.toThrow();

    const layers = await layerEntries(out, 'v1');
    const runLayers = layers.slice(-5).map((l) => l.sort());
    expect(runLayers).toEqual([
      ['w', 'w/ctx-listing', 'w/ctx-ro', 'w/from-ctx'],
      ['w', 'w/rw-saw'],
      ['w', 'w/from-stage', 'w/stage-ro'],
      ['w', 'w/stage-rw'],
      ['w', 'w/tmpfs-size', 'w/tmpfs-type'],
    ]);

    const cached = (r: { stderr: string }) =>
      r.stderr.split('\n').filter((l) => l.includes(' RUN ') && l.includes('CACHED')).length;
    // An ignored file is not part of any key.
    await writeFile(join(ctx, 'src', 'private.key'), 'rotated\n');
    const second = await build('v2');
    expect(second.code, second.stderr).toBe(0);
    expect(cached(second)).toBe(6);
    // A bound file is: the context mount's step reruns and says which file changed.
    await writeFile(join(ctx, 'src', 'app.txt'), 'app-v2\n');
    const third = await build('v3');
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toMatch(
      /cat \/ctx\/src\/app\.txt[^\n]*\(miss: files changed: mount \/ctx:\/src\/app\.txt/,
    );
    const rootfs3 = await unpack(out, 'v3', bench.userDir('unpack3'));
    expect((await readFile(join(rootfs3, 'w', 'from-ctx'), 'utf8')).trim()).toBe('app-v2');
  });
});
