// `gantry build` RUN --mount=type=cache as gantry-test: uid/gid/mode applied when the directory is made (and
// scoping it apart from the plain id, as in BuildKit), seeding from a stage with from=/source= that persists,
// and the sharing modes across concurrent builds on one store: `locked` waits for the RUN holding the
// directory, `private` takes a fresh instance instead. No cache mount ever lands in a layer.
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { cacheDirName } from '../../src/build/cache-mount.js';
import { layerEntries, type RunBench, runBench, unpack } from './build-run-harness.js';

const OPTIONS_DOCKERFILE = `ARG BASE
FROM \${BASE} AS seed
RUN mkdir -p /seed && echo seeded > /seed/file

FROM \${BASE}
WORKDIR /w
RUN --mount=type=cache,id=owned,target=/c,uid=1234,gid=2345,mode=0750 stat -c '%u:%g %a' /c > owned
RUN --mount=type=cache,id=scope,target=/c sh -c 'echo plain > /c/marker'
RUN --mount=type=cache,id=scope,target=/c,mode=0700 sh -c 'ls -A /c > scoped; stat -c %a /c >> scoped'
RUN --mount=type=cache,target=/c,from=seed,source=/seed sh -c 'echo run >> /c/file; cat /c/file > seeded'
`;

// The holder keeps the directory for 4s, or (`untilGo`) until the test drops a `go` file into it (at most 120s).
const holder = (sharing: string, untilGo: boolean) => `ARG BASE
FROM \${BASE}
RUN --mount=type=cache,id=${sharing}-id,target=/c,sharing=${sharing} sh -c 'echo A >> /c/log; touch /c/busy; i=0; \\
  while [ ${untilGo ? '! -e /c/go' : '$i -lt 4'} ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done; rm /c/busy'
`;

const second = (sharing: string) => `ARG BASE
FROM \${BASE}
WORKDIR /w
RUN --mount=type=cache,id=${sharing}-id,target=/c,sharing=${sharing} sh -c 'ls -A /c > seen; echo B >> /c/log'
`;

describe('gantry build RUN --mount=type=cache (as gantry-test)', () => {
  let bench: RunBench;
  beforeAll(async () => {
    bench = await runBench();
  });

  const build = (ctx: string, store: string, out: string, tag: string, extra: string[] = []) =>
    bench.gantry(
      [
        'build',
        ...extra,
        '--build-arg',
        `BASE=${bench.image}`,
        '-o',
        `type=oci,dest=${out},name=${tag}`,
        ctx,
      ],
      { GANTRY_STORE: store },
    );

  it('applies uid/gid/mode, scopes ids by them, and seeds from a stage', async () => {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({ Dockerfile: OPTIONS_DOCKERFILE });
    const first = await build(ctx, store, out, 'v1');
    expect(first.code, first.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    const read = async (name: string) => (await readFile(join(rootfs, 'w', name), 'utf8')).trim();
    expect(await read('owned')).toBe('1234:2345 750');
    // Same id, but mode= given: another directory, made with that mode.
    expect(await read('scoped')).toBe('700');
    expect(await read('seeded')).toBe('seeded\nrun');
    for (const layer of (await layerEntries(out, 'v1')).slice(-4)) {
      expect(layer.filter((e) => e !== 'w' && !e.startsWith('w/'))).toEqual([]);
    }
    // The seeded directory persists: a rerun sees the first run's write.
    const again = await build(ctx, store, out, 'v2', ['--no-cache']);
    expect(again.code, again.stderr).toBe(0);
    const rootfs2 = await unpack(out, 'v2', bench.userDir('unpack2'));
    expect((await readFile(join(rootfs2, 'w', 'seeded'), 'utf8')).trim()).toBe('seeded\nrun\nrun');
  });

  /**
   * Starts the holder build, waits until its RUN holds the directory, then runs the second build; a private
   * holder is let go only after the second build is done, a locked one after 4s.
   */
  async function contend(sharing: 'locked' | 'private'): Promise<{ seen: string; log: string }> {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const first = await bench.context({ Dockerfile: holder(sharing, sharing === 'private') });
    const next = await bench.context({ Dockerfile: second(sharing) });
    const dir = join(
      store,
      'cache',
      'mounts',
      `${cacheDirName({ id: `${sharing}-id`, seed: { kind: 'empty', uid: 0, gid: 0, mode: 0o755 }, explicitOwner: false })}-0`,
    );
    const holding = build(first, store, out, 'holder');
    let busy = false;
    for (let i = 0; i < 600 && !busy; i++) {
      busy = await access(join(dir, 'busy')).then(
        () => true,
        () => false,
      );
      if (!busy) await sleep(100);
    }
    expect(busy, 'the holder build never started its RUN').toBe(true);
    const r = await build(next, store, out, 'second');
    if (sharing === 'private') await writeFile(join(dir, 'go'), '');
    const held = await holding;
    expect(held.code, held.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const rootfs = await unpack(out, 'second', bench.userDir('unpack'));
    return {
      seen: (await readFile(join(rootfs, 'w', 'seen'), 'utf8')).trim(),
      log: (await readFile(join(dir, 'log'), 'utf8')).trim(),
    };
  }

  it('concurrent builds make one seeded shared directory and all write to it', async () => {
    const store = bench.userDir('store');
    const ctx = await bench.context({
      Dockerfile: `ARG BASE\nARG N\nFROM \${BASE} AS seed\nRUN mkdir /seed && echo seeded > /seed/log\nFROM \${BASE}\nARG N\nRUN --mount=type=cache,id=together,target=/c,from=seed,source=/seed sh -c 'echo "build $N" >> /c/log'\n`,
    });
    const results = await Promise.all(
      [1, 2, 3].map((n) =>
        bench.gantry(['build', '--build-arg', `BASE=${bench.image}`, '--build-arg', `N=${n}`, ctx], {
          GANTRY_STORE: store,
        }),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const mounts = join(store, 'cache', 'mounts');
    const dirs = (await readdir(mounts)).filter((n) => !n.endsWith('.lock'));
    // One directory, no half-made ones left over.
    expect(dirs).toHaveLength(1);
    const log = (await readFile(join(mounts, dirs[0] as string, 'log'), 'utf8')).trim().split('\n');
    expect(log[0]).toBe('seeded');
    expect(log.slice(1).sort()).toEqual(['build 1', 'build 2', 'build 3']);
  });

  it('sharing=locked: a concurrent build waits until the RUN holding the directory is done', async () => {
    const { seen, log } = await contend('locked');
    // The holder had finished (busy removed) before the second RUN saw the directory.
    expect(seen).toBe('log');
    expect(log).toBe('A\nB');
  });

  it('sharing=private: a concurrent build gets a fresh directory instead of waiting', async () => {
    const { seen, log } = await contend('private');
    expect(seen).toBe('');
    // The holder's directory saw only the holder.
    expect(log).toBe('A');
  });
});
