// `gantry run` and `gantry info` end to end, as the unprivileged user gantry-test (scripts/setup.sh creates it
// with subuid/subgid ranges): images from an OCI layout and from a real registry, the image config honoured,
// exit status, volumes, store reuse, SIGTERM clean-up, and the automatic choice of the chroot level as root
// where user namespaces are forbidden.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImageLayout, pushFixture } from '../harness/fixtures.js';
import { run, trackTempDir, waitFor } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { asTestUser, installationForTestUser, TEST_USER, testUser } from './sandbox-user.js';

/** The CLI gantry-test runs (the checkout's, or a readable copy of it). */
let BIN = '';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `gantry ARGS` as gantry-test (setpriv execs node itself, so a signal to the child reaches gantry). */
function gantryAs(
  args: string[],
  o: { store: string; root?: boolean; onSpawn?: (pid: number) => void; wrap?: string[] },
): Promise<Result> {
  const env = { PATH: process.env.PATH, HOME: '/nonexistent', GANTRY_STORE: o.store, CI: 'true' };
  const node = [process.execPath, BIN, ...args];
  const argv = o.wrap ?? (o.root ? node : asTestUser(...node));
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('spawn', () => o.onSpawn?.(child.pid as number));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr });
    });
  });
}

describe('gantry run (as gantry-test)', () => {
  const user = { uid: 0, gid: 0, subuid: 0, subgid: 0 };
  let base: string;
  let store: string;
  let image: string;
  let configured: string;
  let registry: TestRegistry;

  /** A directory gantry-test owns. */
  function userDir(name: string): string {
    const dir = join(base, name);
    mkdirSync(dir);
    chownSync(dir, user.uid, user.gid);
    return dir;
  }

  beforeAll(async () => {
    Object.assign(user, testUser());
    BIN = installationForTestUser().cli;
    base = await mkdtemp(join(tmpdir(), 'gantry-run-'));
    trackTempDir(base);
    await chmod(base, 0o755);
    const layout = join(base, 'image');
    const fixture = await makeImageLayout({ dir: layout, busybox: true, layers: 1 });
    image = `oci:${layout}:${fixture.tag}`;
    // A second tag with an /etc layer and a user, working directory, environment and entrypoint.
    const etc = join(base, 'etc-layer');
    mkdirSync(join(etc, 'etc'), { recursive: true });
    writeFileSync(
      join(etc, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
    );
    writeFileSync(join(etc, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n');
    // /home/app belongs to the image's user 1000: unpacked rootlessly it must still show as 1000 inside.
    mkdirSync(join(etc, 'home', 'app'), { recursive: true });
    chownSync(join(etc, 'home', 'app'), 1000, 1000);
    await run('tar', ['-C', etc, '--numeric-owner', '-cf', join(base, 'etc.tar'), 'etc', 'home']);
    await addTag(layout, fixture.tag, 'configured', join(base, 'etc.tar'), {
      User: 'app',
      WorkingDir: '/work',
      Env: ['PATH=/bin', 'FOO=bar'],
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo default'],
    });
    configured = `oci:${layout}:configured`;
    await run('chmod', ['-R', 'a+rX', layout]);
    store = userDir('store');
    registry = await startRegistry();
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it('runs as root in a user namespace mapped to the caller and a 65536 range, as PID 2, with its own hostname', async () => {
    const r = await gantryAs(['run', image, 'sh', '-c', 'id -u; cat /proc/self/uid_map; echo $$; hostname'], {
      store,
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines.slice(0, 3)).toEqual(['0', `0 ${user.uid} 1`, `1 ${user.subuid} 65536`]);
    expect(['1', '2']).toContain(lines[3]);
    expect(lines[4]).toMatch(/^[0-9a-f]{12}$/);
    expect(lines[4]).not.toBe(hostname());
  });

  it('chown 1000 in a volume shows as subuid start + 999 on the host; :ro volumes are read-only', async () => {
    const vol = userDir('vol');
    const ro = userDir('ro');
    const r = await gantryAs(
      [
        'run',
        '-v',
        `${vol}:/data`,
        '-v',
        `${ro}:/ro:ro`,
        image,
        'sh',
        '-c',
        'touch /data/f && chown 1000 /data/f && ! touch /ro/x',
      ],
      { store },
    );
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(join(vol, 'f'))).uid).toBe(user.subuid + 999);
    expect(await readdir(ro)).toEqual([]);
  });

  it('exits with the command status and streams stdout and stderr', async () => {
    const r = await gantryAs(['run', image, 'sh', '-c', 'echo out; echo err >&2; exit 3'], { store });
    expect(r).toMatchObject({ code: 3, stdout: 'out\n' });
    expect(r.stderr).toContain('err\n');
    const missing = await gantryAs(['run', image, 'no-such-command'], { store });
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/no-such-command: executable file not found/);
  });

  it('--network none shows only lo', async () => {
    const r = await gantryAs(['run', '--network', 'none', image, 'cat', '/proc/net/dev'], { store });
    expect(r.code, r.stderr).toBe(0);
    const names = r.stdout
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]?.trim())
      .filter(Boolean);
    expect(names).toEqual(['lo']);
  });

  it("honours the image's User (from its /etc/passwd and /etc/group), WorkingDir, Env and Entrypoint; flags override", async () => {
    const def = await gantryAs(['run', configured], { store });
    expect(def).toMatchObject({ code: 0, stdout: 'default\n' });
    const r = await gantryAs(
      ['run', configured, 'id -u; id -g; id -G; pwd; echo $FOO $HOME; stat -c %u:%g $HOME; touch $HOME/x'],
      { store },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      '1000',
      '1000',
      '1000 2000',
      '/work',
      'bar /home/app',
      '1000:1000',
    ]);
    const o = await gantryAs(
      ['run', '-u', '0', '-w', '/tmp', '-e', 'FOO=baz', configured, 'id -u; pwd; echo $FOO'],
      { store },
    );
    expect(o.stdout.trim().split('\n')).toEqual(['0', '/tmp', 'baz']);
  });

  it('unpacks each layer once and reuses it', async () => {
    const layers = join(store, 'layers', 'sha256');
    const before = await Promise.all(
      (await readdir(layers)).map(async (d) => [d, (await stat(join(layers, d))).ino]),
    );
    const r = await gantryAs(['run', '--pull', 'never', image, 'true'], { store });
    expect(r.code, r.stderr).toBe(0);
    const after = await Promise.all(
      (await readdir(layers)).map(async (d) => [d, (await stat(join(layers, d))).ino]),
    );
    expect(after).toEqual(before);
    expect(await readdir(join(store, 'tmp'))).toEqual([]);
  });

  it('pulls from a registry with the copy engine into the store', async () => {
    const ref = await pushFixture(
      { ...(await makeImageLayout({ dir: join(base, 'pushed'), busybox: true, layers: 0 })) },
      registry,
      'run/busybox:1',
    );
    const r = await gantryAs(['run', ref, 'echo', 'pulled'], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('pulled\n');
    const index = JSON.parse(await readFile(join(store, 'images', 'index.json'), 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toContain(ref);
  });

  it('SIGTERM to gantry run stops the container and leaves no processes, mounts or scratch directories', async () => {
    const seconds = String(4000 + (process.pid % 1000));
    let pid = 0;
    const running = gantryAs(['run', image, 'sleep', seconds], { store, onSpawn: (p) => (pid = p) });
    expect(await waitFor(async () => (await sleepers(seconds)).length > 0, { timeoutMs: 30_000 })).toBe(true);
    process.kill(pid, 'SIGTERM');
    const r = await running;
    expect(r.code).toBe(128 + 15);
    expect(await sleepers(seconds)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(store);
    expect(await readdir(join(store, 'tmp'))).toEqual([]);
  });

  it('removes scratch that a SIGKILLed run left behind, subordinate-owned files included', async () => {
    let pid = 0;
    const seconds = String(5000 + (process.pid % 1000));
    const running = gantryAs(
      ['run', image, 'sh', '-c', `mkdir -p /left/deep && chown -R 1000 /left && sleep ${seconds}`],
      {
        store,
        onSpawn: (p) => (pid = p),
      },
    );
    expect(await waitFor(async () => (await sleepers(seconds)).length > 0, { timeoutMs: 30_000 })).toBe(true);
    // Kill gantry and its helper at once, as a cancelled CI job does: nothing is left to clean up.
    const helperPid = Number(
      (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(' ')[0],
    );
    process.kill(helperPid, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await running;
    expect(await waitFor(async () => (await sleepers(seconds)).length === 0, { timeoutMs: 10_000 })).toBe(
      true,
    );
    const left = (await readdir(join(store, 'tmp'))).filter((n) => n.startsWith('run-'));
    expect(left.length).toBeGreaterThan(0);
    const r = await gantryAs(['run', image, 'true'], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(join(store, 'tmp'))).toEqual([]);
  });

  it('gantry info reports user namespaces, the subuid range and the rootless level', async () => {
    const r = await gantryAs(['info', '--json'], { store });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      user: TEST_USER,
      rootless: { namespaces: true },
      subuid: [{ start: user.subuid, count: 65536 }],
      commands: { run: { level: 'rootless', rootfs: 'overlay' } },
    });
  });

  it('--isolation none runs as root without namespaces in a copy of the image, only when asked for', async () => {
    const denied = await gantryAs(['run', '--isolation', 'none', image, 'true'], { store });
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/--isolation none needs root/);
    const rootStore = join(base, 'none-store');
    const r = await gantryAs(
      ['run', '--isolation', 'none', image, 'sh', '-c', 'echo $$; ls /dev; echo x > /dev/null'],
      {
        store: rootStore,
        root: true,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const [pid, ...devices] = r.stdout.trim().split('\n');
    // No PID namespace: the command has a host PID.
    expect(Number(pid)).toBeGreaterThan(2);
    expect(devices).toEqual(['full', 'null', 'random', 'urandom', 'zero']);
    expect(r.stderr).toMatch(/without namespaces; use it only inside a throwaway container/);
    expect(await readdir(join(rootStore, 'tmp'))).toEqual([]);
  });

  it('--isolation auto picks chroot for root where user namespaces are forbidden', async () => {
    const rootStore = join(base, 'root-store');
    mkdirSync(rootStore);
    // Root in a user+mount namespace whose user.max_user_namespaces is 0: no further user namespaces.
    const wrap = (args: string[]) => [
      'unshare',
      '--user',
      '--map-root-user',
      '--mount',
      '--',
      'sh',
      '-c',
      'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
      'sh',
      process.execPath,
      BIN,
      ...args,
    ];
    const info = await gantryAs(['info', '--json'], { store: rootStore, wrap: wrap(['info', '--json']) });
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      rootless: { namespaces: false },
      commands: { run: { level: 'chroot' } },
    });
    const r = await gantryAs([], {
      store: rootStore,
      wrap: wrap(['run', image, 'sh', '-c', 'echo $$; id -u']),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['2', '0']);
    const forced = await gantryAs([], {
      store: rootStore,
      wrap: wrap(['run', '--isolation', 'rootless', image, 'true']),
    });
    expect(forced.code).toBe(1);
    expect(forced.stderr).toMatch(/max_user_namespaces is 0/);
  });
});

/** Writes a JSON blob into an OCI layout; returns its descriptor. */
function putJson(
  layout: string,
  mediaType: string,
  value: unknown,
): { mediaType: string; digest: string; size: number } {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/** Tags `from` plus one more layer (an uncompressed tar) and config changes as `to`, in the same layout. */
async function addTag(
  layout: string,
  from: string,
  to: string,
  tarFile: string,
  config: Record<string, unknown>,
): Promise<void> {
  type Desc = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
  const blob = (d: { digest: string }) => join(layout, 'blobs', 'sha256', d.digest.slice(7));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const top = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === from,
  ) as Desc;
  const manifest = JSON.parse(await readFile(blob(top), 'utf8')) as { config: Desc; layers: Desc[] };
  const image = JSON.parse(await readFile(blob(manifest.config), 'utf8')) as {
    config: Record<string, unknown>;
    rootfs: { diff_ids: string[] };
  };
  const tar = readFileSync(tarFile);
  const hex = createHash('sha256').update(tar).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), tar);
  image.rootfs.diff_ids.push(`sha256:${hex}`);
  image.config = { ...image.config, ...config };
  manifest.layers.push({
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    digest: `sha256:${hex}`,
    size: tar.length,
  });
  manifest.config = putJson(layout, manifest.config.mediaType, image);
  const desc = putJson(layout, top.mediaType, manifest);
  index.manifests.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': to } });
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
}

/** PIDs of `sleep SECONDS` processes on the host. */
async function sleepers(seconds: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === `sleep\0${seconds}\0`) pids.push(Number(entry));
  }
  return pids;
}
