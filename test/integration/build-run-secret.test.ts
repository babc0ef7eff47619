// `gantry build` RUN --mount=type=secret,env= as gantry-test: the secret is an environment variable of that RUN
// only (no file unless a target is given too), BuildKit's source= names it, a secret file has the mount's
// mode (0400 unless mode= says otherwise), and its value is in no layer, config, history or cache record.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/procs.js';
import { historyOf, layerEntries, type RunBench, runBench, unpack } from './build-run-harness.js';

const SECRET = 'env-secret-5be1c9d04a';

const DOCKERFILE = `ARG BASE
FROM \${BASE}
WORKDIR /w
RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo \${#TOK} > len; ls /run/secrets > listing 2>&1 || echo none > listing'
RUN --mount=type=secret,source=tok,env=TOK,target=/s/tok sh -c 'test "$TOK" = "$(cat /s/tok)" && echo same > both; stat -c %a /s/tok >> both'
RUN sh -c 'echo "\${TOK:-unset}" > after'
RUN --mount=type=secret,id=tok,mode=0444 stat -c %a /run/secrets/tok > mode
`;

describe('gantry build RUN --mount=type=secret,env= (as gantry-test)', () => {
  let bench: RunBench;
  beforeAll(async () => {
    bench = await runBench();
  });

  it('gives the secret as a variable of that RUN only and stores it nowhere', async () => {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({ Dockerfile: DOCKERFILE });
    const secretFile = join(bench.userDir('secrets'), 'tok');
    await writeFile(secretFile, SECRET);
    await run('chmod', ['a+r', secretFile]);
    const r = await bench.gantry(
      [
        'build',
        '--build-arg',
        `BASE=${bench.image}`,
        '--secret',
        `id=tok,src=${secretFile}`,
        '-o',
        `type=oci,dest=${out},name=v1`,
        ctx,
      ],
      { GANTRY_STORE: store },
    );
    expect(r.code, r.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    const read = async (name: string) => (await readFile(join(rootfs, 'w', name), 'utf8')).trim();
    expect(await read('len')).toBe(String(SECRET.length));
    expect(await read('listing')).toBe('none');
    // The file has the mount's mode (BuildKit's default 0400), not the secret file's.
    expect(await read('both')).toBe('same\n400');
    expect(await read('after')).toBe('unset');
    expect(await read('mode')).toBe('444');
    expect((await layerEntries(out, 'v1')).slice(-4).map((l) => l.sort())).toEqual([
      ['w', 'w/len', 'w/listing'],
      ['w', 'w/both'],
      ['w', 'w/after'],
      ['w', 'w/mode'],
    ]);
    expect((await historyOf(out, 'v1')).join('\n')).not.toContain(SECRET);
    const { stdout: found } = await run('sh', [
      '-c',
      `for f in ${out}/blobs/sha256/* ${store}/cache/records/*; do (gzip -dc "$f" 2>/dev/null || cat "$f"); done | grep -c ${SECRET} || true`,
    ]);
    expect(found.trim()).toBe('0');
  });
});
