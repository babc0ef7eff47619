// The pure parts of RUN: the argv BuildKit's dispatchRun makes of each heredoc form (from parsed Dockerfiles),
// `--ssh` flag values, and cache mount directory scoping.
import { describe, expect, it } from 'vitest';
import { cacheDirName } from '../../src/build/cache-mount.js';
import { runScript } from '../../src/build/run-heredoc.js';
import { parseSsh } from '../../src/build/ssh-agent.js';
import { parseDockerfile, type RunInstruction } from '../../src/dockerfile/index.js';
import { thrown } from '../support/thrown.js';

function scriptOf(body: string, shell?: string[]) {
  const ir = parseDockerfile(`FROM scratch\n${body}\n`, { file: 'Dockerfile' });
  const run = ir.stages[0]?.instructions[0] as RunInstruction;
  return runScript(run.command, shell);
}

describe('runScript', () => {
  it('runs a lone heredoc body as the shell script, with the SHELL', () => {
    expect(scriptOf('RUN <<EOF\necho "$A"\necho b\nEOF')).toEqual({
      args: ['/bin/sh', '-c', 'echo "$A"\necho b\n'],
    });
    expect(scriptOf('RUN <<EOF\necho x\nEOF', ['/bin/bash', '-eu', '-c']).args).toEqual([
      '/bin/bash',
      '-eu',
      '-c',
      'echo x\n',
    ]);
  });

  it('runs a shebang body as a file under /dev/pipes, whatever the delimiter quoting', () => {
    expect(scriptOf("RUN <<'SCRIPT'\n#!/usr/bin/env python3\nprint(1)\nSCRIPT")).toEqual({
      args: ['/bin/sh', '-c', '/dev/pipes/SCRIPT'],
      pipe: { name: 'SCRIPT', content: '#!/usr/bin/env python3\nprint(1)\n' },
    });
  });

  it('hands every other form to the shell with the bodies after the line', () => {
    expect(scriptOf('RUN <<EOF bash\necho hi\nEOF').args).toEqual([
      '/bin/sh',
      '-c',
      '<<EOF bash\necho hi\nEOF',
    ]);
    expect(scriptOf('RUN cat <<A >a && cat <<-"B" >b\none\nA\n\ttwo\n\tB').args).toEqual([
      '/bin/sh',
      '-c',
      'cat <<A >a && cat <<-"B" >b\none\nA\ntwo\nB',
    ]);
  });

  it('leaves commands without heredocs as they were', () => {
    expect(scriptOf('RUN echo hi')).toEqual({ args: ['/bin/sh', '-c', 'echo hi'] });
    expect(scriptOf('RUN ["echo", "hi"]')).toEqual({ args: ['echo', 'hi'] });
  });
});

describe('parseSsh', () => {
  it('takes default from SSH_AUTH_SOCK and ID=SOCKET as given', () => {
    expect(parseSsh('default', { SSH_AUTH_SOCK: '/tmp/a.sock' })).toEqual(['default', '/tmp/a.sock']);
    expect(parseSsh('git=/run/agent', {})).toEqual(['git', '/run/agent']);
  });

  it('refuses a missing agent and key file lists', () => {
    const missing = thrown(() => parseSsh('default', {}));
    expect(missing.code).toBe('INVALID_ARGUMENT');
    expect(missing.message).toContain('SSH_AUTH_SOCK is not set');
    expect(thrown(() => parseSsh('k=/a/id_rsa,/b/id_ed25519', {})).message).toContain('one agent');
  });
});

describe('cacheDirName', () => {
  const empty = { kind: 'empty' as const, uid: 0, gid: 0, mode: 0o755 };
  it('scopes by id, by explicit owner and mode, and by seed', () => {
    const plain = cacheDirName({ id: '/c', seed: empty, explicitOwner: false });
    expect(plain).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheDirName({ id: '/c', seed: empty, explicitOwner: false })).toBe(plain);
    expect(cacheDirName({ id: '/d', seed: empty, explicitOwner: false })).not.toBe(plain);
    // BuildKit: giving uid/gid/mode, even the defaults, makes another directory.
    expect(cacheDirName({ id: '/c', seed: empty, explicitOwner: true })).not.toBe(plain);
    const seed = (identity: string) => ({ kind: 'copy' as const, identity, fill: async () => undefined });
    expect(cacheDirName({ id: '/c', seed: seed('sha256:a:/x'), explicitOwner: false })).not.toBe(
      cacheDirName({ id: '/c', seed: seed('sha256:b:/x'), explicitOwner: false }),
    );
  });
});
