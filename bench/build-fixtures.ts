/**
 * Build benchmark fixtures: the four build contexts of bench/build.bench.ts (Dockerfiles in
 * bench/fixtures/build/<case>/, generated sources written here), the one-file edit each case makes between
 * the cached and the changed rebuild, and the Debian base image. The Debian base is made once with
 * `debootstrap --variant=minbase` from apt's configured mirror, turned into an OCI layout with umoci and cached
 * under the tools dir (like scripts/setup.sh caches cosign), so later runs need no network.
 */
import { access, appendFile, cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { exec } from './util.js';

export interface BenchCase {
  /** Short name, also the image name. */
  name: string;
  title: string;
  /** 'busybox' or 'debian': the base image the Dockerfile's BASE argument names. */
  base: 'busybox' | 'debian';
  /** How many layers the final image takes from its base (both bases have one). */
  baseLayers: number;
  /** Writes the context (Dockerfile and generated sources) into `dir`. */
  make(dir: string): Promise<void>;
  /** Changes one source file of the context in `dir` (a different change for each `round`). */
  touch(dir: string, round: number): Promise<void>;
}

const FIXTURES = join(process.cwd(), 'bench', 'fixtures', 'build');

/** Deterministic text of about `bytes` bytes: source-like lines, so it compresses like real code does. */
function sourceText(seed: number, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `export function f${seed}_${i}(x: number): number { return x * ${(seed * 31 + i) % 977} + ${i}; }`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

async function copyDockerfile(name: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await cp(join(FIXTURES, name, 'Dockerfile'), join(dir, 'Dockerfile'));
}

/** The one-file change: a comment line appended to a source file, different every round. */
async function appendLine(file: string, round: number, comment = '//'): Promise<void> {
  await appendFile(file, `${comment} edit ${round} ${Date.now()}\n`);
}

export const CASES: BenchCase[] = [
  {
    name: 'multistage',
    title: '(a) multi-stage',
    base: 'busybox',
    baseLayers: 1,
    async make(dir) {
      await copyDockerfile('multistage', dir);
      await mkdir(join(dir, 'src'));
      for (let i = 0; i < 50; i++) await writeFile(join(dir, 'src', `m${i}.txt`), sourceText(i, 8 << 10));
    },
    touch: (dir, round) => appendLine(join(dir, 'src', 'm7.txt'), round),
  },
  {
    name: 'copy2000',
    title: '(b) COPY of 2,000 files',
    base: 'busybox',
    baseLayers: 1,
    async make(dir) {
      await copyDockerfile('copy2000', dir);
      for (let d = 0; d < 20; d++) {
        const sub = join(dir, 'files', `pkg${d}`);
        await mkdir(sub, { recursive: true });
        for (let i = 0; i < 100; i++) {
          await writeFile(
            join(sub, `mod${i}.ts`),
            sourceText(d * 100 + i, 1024 + ((d * 100 + i) % 7) * 1024),
          );
        }
      }
    },
    touch: (dir, round) => appendLine(join(dir, 'files', 'pkg3', 'mod42.ts'), round),
  },
  {
    name: 'run100m',
    title: '(c) RUN writing 100 MiB',
    base: 'busybox',
    baseLayers: 1,
    async make(dir) {
      await copyDockerfile('run100m', dir);
      await cp(join(FIXTURES, 'run100m', 'gen.sh'), join(dir, 'gen.sh'));
    },
    touch: (dir, round) => appendLine(join(dir, 'gen.sh'), round, '#'),
  },
  {
    name: 'debian',
    title: '(d) Debian base, RUN touching many files',
    base: 'debian',
    baseLayers: 1,
    async make(dir) {
      await copyDockerfile('debian', dir);
      await mkdir(join(dir, 'app'));
      for (let i = 0; i < 20; i++) await writeFile(join(dir, 'app', `part${i}.sh`), sourceText(i, 4 << 10));
    },
    touch: (dir, round) => appendLine(join(dir, 'app', 'part3.sh'), round, '#'),
  },
];

export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.GANTRY_TOOLS_DIR || join(env.HOME || homedir(), '.cache', 'gantry-tools');
}

const DEBIAN_TAG = 'bookworm';

/**
 * An OCI layout holding a minimal Debian 12 image (tag `bookworm`, one layer), made on first use with
 * debootstrap (from apt's configured mirror) and umoci, then kept under the tools dir. Device nodes, apt's
 * downloaded .debs and package lists are left out, as Debian's official images do.
 */
export async function debianBaseLayout(): Promise<{ layoutDir: string; tag: string }> {
  const layoutDir = join(toolsDir(), 'debian-bookworm-minbase');
  const done = await access(join(layoutDir, 'index.json')).then(
    () => true,
    () => false,
  );
  if (done) return { layoutDir, tag: DEBIAN_TAG };
  await exec(['sh', '-c', 'command -v debootstrap && command -v umoci']).catch(() => {
    throw new Error('the Debian base needs debootstrap and umoci: apt-get install debootstrap umoci');
  });
  const mirror = await aptMirror();
  const work = `${layoutDir}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const rootfs = join(work, 'rootfs');
    console.log(`making the Debian base with debootstrap from ${mirror} (once; cached in ${layoutDir})`);
    await exec(['debootstrap', '--variant=minbase', DEBIAN_TAG, rootfs, mirror]);
    await exec([
      'sh',
      '-c',
      `cd "${rootfs}" && rm -rf dev/* proc/* sys/* var/cache/apt/archives/*.deb var/lib/apt/lists/* var/log/*.log tmp/*`,
    ]);
    const layout = join(work, 'layout');
    const bundle = join(work, 'bundle');
    await exec(['umoci', 'init', '--layout', layout]);
    await exec(['umoci', 'new', '--image', `${layout}:${DEBIAN_TAG}`]);
    await exec(['umoci', 'unpack', '--image', `${layout}:${DEBIAN_TAG}`, bundle]);
    await exec(['sh', '-c', `cp -a "${rootfs}/." "${bundle}/rootfs/"`]);
    await exec(['umoci', 'repack', '--image', `${layout}:${DEBIAN_TAG}`, bundle]);
    await exec([
      'umoci',
      'config',
      '--image',
      `${layout}:${DEBIAN_TAG}`,
      '--config.env',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--config.cmd',
      'bash',
    ]);
    await exec(['umoci', 'gc', '--layout', layout]);
    await mkdir(join(layoutDir, '..'), { recursive: true });
    await rename(layout, layoutDir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { layoutDir, tag: DEBIAN_TAG };
}

/** The first Debian mirror in apt's sources (deb822 `URIs:` or one-line `deb URL suite`). */
async function aptMirror(): Promise<string> {
  const text = await exec([
    'sh',
    '-c',
    'cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null; true',
  ]);
  for (const line of text.split('\n')) {
    const m = /^URIs:\s*(\S+)/.exec(line) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
    if (m && !m[1]?.includes('security')) return m[1] as string;
  }
  return 'http://deb.debian.org/debian';
}
