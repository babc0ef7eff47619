// The gantry-sandbox helper run directly, as the unprivileged user gantry-test (scripts/setup.sh creates it
// with /etc/subuid and /etc/subgid ranges), on a root filesystem made from busybox-static: ids, PID 1,
// hostname, network, clean-up after SIGTERM, many containers at once, and the chroot level as root where
// user namespaces are forbidden.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSpec } from '../../src/sandbox/spec.js';
import { trackTempDir, waitFor } from '../harness/procs.js';
import { asTestUser, installationForTestUser, type TestUser, testUser } from './sandbox-user.js';

const APPLETS = ['sh', 'id', 'cat', 'ls', 'chown', 'touch', 'hostname', 'sleep', 'echo', 'true', 'stat'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let helperBin = '';

/** Runs the helper as gantry-test (or root); setpriv execs directly, so signals reach the helper itself. */
function helper(specFile: string, asRoot = false, onStart?: (pid: number) => void): Promise<Run> {
  const [file, ...args] = asRoot ? [helperBin, 'run', specFile] : asTestUser(helperBin, 'run', specFile);
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('spawn', () => onStart?.(child.pid as number));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
  });
}

describe('gantry-sandbox (rootless, as gantry-test)', () => {
  let user: TestUser;
  let base: string;
  let rootfs: string;
  let count = 0;

  /** A spec with fresh scratch directories owned by gantry-test. */
  async function spec(
    script: string,
    extra: Partial<SandboxSpec> = {},
  ): Promise<{ file: string; spec: SandboxSpec }> {
    const scratch = join(base, `scratch-${++count}`);
    const owner = extra.isolation === 'chroot' ? 0 : user.uid;
    for (const d of ['', 'upper', 'work', 'rootfs']) {
      mkdirSync(join(scratch, d));
      chownSync(join(scratch, d), owner, owner);
    }
    const s: SandboxSpec = {
      isolation: 'rootless',
      idMaps: {
        uid: [
          { inside: 0, outside: user.uid, count: 1 },
          { inside: 1, outside: user.subuid, count: 65536 },
        ],
        gid: [
          { inside: 0, outside: user.gid, count: 1 },
          { inside: 1, outside: user.subgid, count: 65536 },
        ],
        useHelpers: true,
      },
      rootfs: {
        mode: 'overlay',
        layers: [rootfs],
        upper: join(scratch, 'upper'),
        work: join(scratch, 'work'),
        target: join(scratch, 'rootfs'),
      },
      hostname: `box${count}`,
      network: 'host',
      mounts: [],
      process: { args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, groups: [] },
      scratch,
      ...extra,
    };
    // The spec lives outside the scratch directory here so the test can check that scratch is gone.
    const file = join(base, `spec-${count}.json`);
    await writeFile(file, JSON.stringify(s));
    chmodSync(file, 0o644);
    return { file, spec: s };
  }

  beforeAll(async () => {
    user = testUser();
    helperBin = installationForTestUser().helper;
    base = await mkdtemp(join(tmpdir(), 'gantry-sandbox-'));
    trackTempDir(base);
    // gantry-test removes its scratch directories from here, as it would from its store's tmp/.
    chownSync(base, user.uid, user.gid);
    chmodSync(base, 0o755);
    rootfs = join(base, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    mkdirSync(join(rootfs, 'tmp'));
    writeFileSync(join(rootfs, 'tmp', 'old'), 'old\n');
    copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  });

  afterAll(() => undefined);

  it('maps the caller to root and a 65536-id subordinate range', async () => {
    const { file } = await spec('id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map');
    const r = await helper(file);
    expect(r.code, r.stderr).toBe(0);
    const [uid, gid, ...maps] = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect([uid, gid]).toEqual(['0', '0']);
    expect(maps).toEqual([
      `0 ${user.uid} 1`,
      `1 ${user.subuid} 65536`,
      `0 ${user.gid} 1`,
      `1 ${user.subgid} 65536`,
    ]);
  });

  it('without a subordinate range maps only the caller, writing the map itself', async () => {
    const single = {
      uid: [{ inside: 0, outside: user.uid, count: 1 }],
      gid: [{ inside: 0, outside: user.gid, count: 1 }],
      useHelpers: false,
    };
    const { file } = await spec('id -u; cat /proc/self/uid_map /proc/self/setgroups', { idMaps: single });
    const r = await helper(file);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['0', `0 ${user.uid} 1`, 'deny']);
  });

  it('chown 1000 inside shows as subuid start + 999 on the host', async () => {
    const vol = join(base, 'vol');
    mkdirSync(vol);
    chownSync(vol, user.uid, user.gid);
    const { file } = await spec('touch /data/f && chown 1000:1000 /data/f && stat -c %u:%g /data/f', {
      mounts: [{ source: vol, destination: '/data', readonly: false }],
    });
    const r = await helper(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('1000:1000');
    const s = await stat(join(vol, 'f'));
    // Container id 1 is subuid start, so container id 1000 is subuid start + 999.
    expect([s.uid, s.gid]).toEqual([user.subuid + 999, user.subgid + 999]);
  });

  it('runs the command as PID 2 under a reaper, with its own hostname, and returns its exit status', async () => {
    const { file } = await spec('echo $$; hostname; cat /proc/1/cmdline | tr "\\0" " " ; exit 7');
    const r = await helper(file);
    expect(r.code).toBe(7);
    const [pid, name] = r.stdout.split('\n');
    expect(['1', '2']).toContain(pid);
    expect(name).toBe(`box${count}`);
    expect(name).not.toBe(hostname());
  });

  it('--network none has only the loopback interface, and it is up', async () => {
    const { file } = await spec('cat /proc/net/dev', { network: 'none' });
    const r = await helper(file);
    expect(r.code, r.stderr).toBe(0);
    const interfaces = r.stdout
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]?.trim())
      .filter(Boolean);
    expect(interfaces).toEqual(['lo']);
  });

  it('refuses a volume target that resolves outside the root filesystem', async () => {
    const vol = join(base, 'vol2');
    mkdirSync(vol);
    const evil = join(base, 'evil-layer');
    mkdirSync(evil);
    symlinkSync('/etc', join(evil, 'escape'));
    const { file, spec: s } = await spec('true', {
      mounts: [{ source: vol, destination: '/escape/x', readonly: true }],
    });
    s.rootfs.layers = [rootfs, evil];
    await writeFile(file, JSON.stringify(s));
    const r = await helper(file);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/resolves outside/);
    expect(existsSync('/etc/x')).toBe(false);
  });

  it.each(['overlay', 'copy'] as const)(
    '%s root filesystem applies whiteouts and opaque directories of upper layers',
    async (mode) => {
      // An upper layer in overlayfs form: a 0/0 character device hides bin/cat, an opaque tmp/ hides tmp/old.
      const upperLayer = join(base, `layer-${mode}`);
      mkdirSync(join(upperLayer, 'bin'), { recursive: true });
      mkdirSync(join(upperLayer, 'tmp'));
      writeFileSync(join(upperLayer, 'tmp', 'new'), 'new\n');
      execFileSync('mknod', [join(upperLayer, 'bin', 'cat'), 'c', '0', '0']);
      execFileSync('setfattr', ['-n', 'user.overlay.opaque', '-v', 'y', join(upperLayer, 'tmp')]);
      execFileSync('chmod', ['-R', 'a+rX', upperLayer]);
      const { file, spec: s } = await spec('ls /bin/cat 2>/dev/null; ls /tmp; echo $$');
      s.rootfs.mode = mode;
      s.rootfs.layers = [rootfs, upperLayer];
      await writeFile(file, JSON.stringify(s));
      const r = await helper(file);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(['new', '2']);
    },
  );

  it('fuse-overlayfs root filesystem (as root, chroot level: /dev/fuse is root-only here)', async () => {
    const { file, spec: s } = await spec('echo $$; touch /new && ls /new', {
      isolation: 'chroot',
      idMaps: undefined,
    });
    s.rootfs.mode = 'fuse-overlayfs';
    await writeFile(file, JSON.stringify(s));
    const r = await helper(file, true);
    expect(r.code, r.stderr).toBe(0);
    const [pid, created] = r.stdout.trim().split('\n');
    // The fuse-overlayfs daemon is started by PID 1 and lives in the container's PID namespace too.
    expect(Number(pid)).toBeGreaterThan(1);
    expect(Number(pid)).toBeLessThan(10);
    expect(created).toBe('/new');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(s.scratch);
    expect(existsSync(s.scratch)).toBe(false);
  });

  it('removes the scratch directory, files owned by subordinate ids included', async () => {
    const { file, spec: s } = await spec(
      'mkdir -p /owned/deep && touch /owned/deep/f && chown -R 1000:1000 /owned && chmod 700 /owned',
    );
    const r = await helper(file);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(s.scratch)).toBe(false);
  });

  it('SIGTERM stops the container and leaves no processes, mounts or scratch', async () => {
    const marker = String(3000 + (process.pid % 1000));
    const { file, spec: s } = await spec(`sleep ${marker}`);
    let helperPid = 0;
    const running = helper(file, false, (pid) => {
      helperPid = pid;
    });
    const started = await waitFor(async () => (await processesNamed(marker)).length > 0, {
      timeoutMs: 20_000,
    });
    expect(started).toBe(true);
    process.kill(helperPid, 'SIGTERM');
    const r = await running;
    expect(r.code).toBe(128 + 15);
    expect(await processesNamed(marker)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(s.scratch);
    expect(existsSync(s.scratch)).toBe(false);
  });

  it('runs many containers at once (the helper forks while the test process is busy)', async () => {
    const specs = await Promise.all(Array.from({ length: 8 }, (_, i) => spec(`echo $$ ${i}`)));
    const runs = await Promise.all(specs.map((s) => helper(s.file)));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`2 ${i}`);
    });
    for (const s of specs) expect(existsSync(s.spec.scratch)).toBe(false);
  });

  it('chroot level: as root where user namespaces are forbidden, mount/PID namespaces still isolate', async () => {
    const { file } = await spec('echo $$; id -u; hostname', { isolation: 'chroot', idMaps: undefined });
    // A user namespace where root may not create further user namespaces (user.max_user_namespaces=0).
    const script = `echo 0 > /proc/sys/user/max_user_namespaces && exec ${helperBin} run ${file}`;
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn('unshare', ['--user', '--map-root-user', '--mount', '--', 'sh', '-c', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['2', '0', `box${count}`]);
  });
});

/** PIDs of `sleep SECONDS` processes. */
async function processesNamed(seconds: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === `sleep\0${seconds}\0`) pids.push(Number(entry));
  }
  return pids;
}
