// `gantry build --ssh` as gantry-test with a real ssh-agent (openssh-client) holding a fresh ed25519 key: the
// RUN's ssh-add (copied into the image with its libraries) lists the key through the forwarded socket at
// BuildKit's default path and at a chosen target, SSH_AUTH_SOCK points at the first, a `required` agent that
// was not given fails the build, and the agent's socket path is in no layer, config, history or cache record.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { access, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/procs.js';
import { historyOf, layerEntries, type RunBench, runBench, unpack } from './build-run-harness.js';
import { asTestUser } from './sandbox-user.js';

const DOCKERFILE = `ARG BASE
FROM \${BASE}
COPY sshroot/ /
WORKDIR /w
RUN --mount=type=ssh sh -c 'ssh-add -l > keys; echo "$SSH_AUTH_SOCK" > sock'
RUN --mount=type=ssh,id=other,target=/run/agent.sock,required sh -c 'SSH_AUTH_SOCK=/run/agent.sock ssh-add -l > other-keys'
`;

/** ssh-add and the shared libraries it loads, laid out as in the host's root, for COPY into a busybox image. */
async function sshAddTree(root: string): Promise<void> {
  const binary = execFileSync('sh', ['-c', 'command -v ssh-add'], { encoding: 'utf8' }).trim();
  const libs = execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  for (const file of [binary, ...libs]) {
    await cp(file, join(root, file), { dereference: true });
  }
}

describe('gantry build RUN --mount=type=ssh (as gantry-test)', () => {
  let bench: RunBench;
  let agent: ChildProcess | undefined;
  let socket: string;

  beforeAll(async () => {
    bench = await runBench();
    const dir = bench.userDir('agent');
    socket = join(dir, 'agent.sock');
    const [file, ...args] = asTestUser('ssh-agent', '-D', '-a', socket);
    agent = spawn(file as string, args, { stdio: 'ignore' });
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await access(socket).then(
        () => true,
        () => false,
      );
      if (!up) await sleep(100);
    }
    if (!up) throw new Error('ssh-agent did not create its socket');
    const key = join(dir, 'id_ed25519');
    const asUser = (...cmd: string[]) => {
      const [f, ...a] = asTestUser(...cmd);
      return run(f as string, a, { env: { ...process.env, SSH_AUTH_SOCK: socket } });
    };
    await asUser('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'gantry-test-key', '-f', key);
    await asUser('ssh-add', '-q', key);
  });

  afterAll(() => {
    agent?.kill();
  });

  it('forwards the agent by id without storing its path, and fails when a required one is missing', async () => {
    const store = bench.userDir('store');
    const out = join(bench.userDir('out'), 'layout');
    const ctx = await bench.context({ Dockerfile: DOCKERFILE });
    await sshAddTree(join(ctx, 'sshroot'));
    await run('chmod', ['-R', 'a+rX', ctx]);
    const base = ['build', '--build-arg', `BASE=${bench.image}`];
    const r = await bench.gantry(
      [...base, '--ssh', 'default', '--ssh', `other=${socket}`, '-o', `type=oci,dest=${out},name=v1`, ctx],
      { GANTRY_STORE: store, SSH_AUTH_SOCK: socket },
    );
    expect(r.code, r.stderr).toBe(0);
    const rootfs = await unpack(out, 'v1', bench.userDir('unpack'));
    const { stdout: keys } = await run('cat', [join(rootfs, 'w', 'keys'), join(rootfs, 'w', 'other-keys')]);
    expect(keys).toMatch(
      /^256 SHA256:\S+ gantry-test-key \(ED25519\)\n256 SHA256:\S+ gantry-test-key \(ED25519\)\n$/,
    );
    const { stdout: sock } = await run('cat', [join(rootfs, 'w', 'sock')]);
    expect(sock.trim()).toBe('/run/buildkit/ssh_agent.0');

    // The layers hold what the RUNs wrote, not the sockets' mount points.
    expect((await layerEntries(out, 'v1')).slice(-2).map((l) => l.sort())).toEqual([
      ['w', 'w/keys', 'w/sock'],
      ['w', 'w/other-keys'],
    ]);
    // The agent's path is nowhere: layers (uncompressed), config, history, cache records.
    expect((await historyOf(out, 'v1')).join('\n')).not.toContain(socket);
    const { stdout: found } = await run('sh', [
      '-c',
      `for f in ${out}/blobs/sha256/* ${store}/cache/records/*; do (gzip -dc "$f" 2>/dev/null || cat "$f"); done | grep -c "${socket}" || true`,
    ]);
    expect(found.trim()).toBe('0');

    // `required`: no agent for the id fails the build, naming the id and the flag.
    const missing = await bench.gantry([...base, '--ssh', 'default', '-t', 'never', ctx], {
      GANTRY_STORE: bench.userDir('store2'),
      SSH_AUTH_SOCK: socket,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ssh agent other was not given (--ssh other[=SOCKET])');
  });
});
