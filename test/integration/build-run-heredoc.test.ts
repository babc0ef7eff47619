// `gantry build` RUN heredocs as gantry-test, in BuildKit's three forms: a lone `<<EOF` runs its body as the
// shell's script, a `#!` body runs as a file mounted at /dev/pipes/EOF (which never reaches the layer), and
// anything else (`<<EOF sh`, several heredocs, `<<-`, quoted delimiters) goes to the shell with the bodies.
// The body is part of the step's key: editing it reruns that step and not the ones before.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { historyOf, layerEntries, type RunBench, runBench, unpack } from './build-run-harness.js';

const dockerfile = (shebangWord: string) => `ARG BASE
FROM \${BASE}
WORKDIR /out
ENV GREETING=hello
RUN <<EOF
echo "$GREETING from a script" > /out/plain
echo second-line >> /out/plain
EOF
RUN <<EOF sh
echo "piped into sh: $GREETING" > /out/piped
EOF
RUN <<'EOF'
#!/bin/sh
echo "${shebangWord} $0" > /out/shebang
EOF
RUN cat <<A > /out/a && cat <<-'B' > /out/b
first file $GREETING
A
\ttab-stripped $GREETING
\tB
`;

describe('gantry build RUN heredocs (as gantry-test)', () => {
  let bench: RunBench;
  beforeAll(async () => {
    bench = await runBench();
  });

  it('runs scripts, piped heredocs and shebang files; keys steps on the body', async () => {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({ Dockerfile: dockerfile('shebang') });
    const args = (tag: string) => [
      'build',
      '--build-arg',
      `BASE=${bench.image}`,
      '-o',
      `type=oci,dest=${out},name=${tag}`,
      ctx,
    ];
    const first = await bench.gantry(args('v1'), { GANTRY_STORE: store });
    expect(first.code, first.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    const read = (name: string) => readFile(join(rootfs, 'out', name), 'utf8');
    expect(await read('plain')).toBe('hello from a script\nsecond-line\n');
    expect(await read('piped')).toBe('piped into sh: hello\n');
    expect(await read('shebang')).toBe('shebang /dev/pipes/EOF\n');
    expect(await read('a')).toBe('first file hello\n');
    // `<<-` strips the tabs; the quoted delimiter keeps `$GREETING` from the shell.
    expect(await read('b')).toBe('tab-stripped $GREETING\n');

    // Each RUN's layer holds exactly what it wrote: no /dev/pipes mount point, no /dev.
    const layers = await layerEntries(out, 'v1');
    const runLayers = layers.slice(-4);
    expect(runLayers.map((l) => l.filter((e) => e !== 'out').sort())).toEqual([
      ['out/plain'],
      ['out/piped'],
      ['out/shebang'],
      ['out/a', 'out/b'],
    ]);
    const history = await historyOf(out, 'v1');
    expect(history.some((h) => h.includes('/bin/sh -c /dev/pipes/EOF'))).toBe(true);
    expect(history.some((h) => h.includes('echo "$GREETING from a script"'))).toBe(true);

    const again = await bench.gantry(args('v2'), { GANTRY_STORE: store });
    expect(again.code, again.stderr).toBe(0);
    const cached = (r: { stderr: string }) =>
      r.stderr.split('\n').filter((l) => l.includes(' RUN ') && l.includes('CACHED')).length;
    expect(cached(again)).toBe(4);

    // A changed shebang body reruns its step (and the next), never the two before it.
    const edited = await bench.context({ Dockerfile: dockerfile('edited') });
    const third = await bench.gantry(
      ['build', '--build-arg', `BASE=${bench.image}`, '-o', `type=oci,dest=${out},name=v3`, edited],
      { GANTRY_STORE: store },
    );
    expect(third.code, third.stderr).toBe(0);
    expect(cached(third)).toBe(2);
    const rootfs3 = await unpack(out, 'v3', bench.userDir('unpack3'));
    expect(await readFile(join(rootfs3, 'out', 'shebang'), 'utf8')).toBe('edited /dev/pipes/EOF\n');
  });
});
