// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables are written literally in these strings
import { describe, expect, it } from 'vitest';
import {
  type Instruction,
  type ParseOptions,
  parseDockerfile,
  parseGoDuration,
} from '../../src/dockerfile/index.js';
import { thrown } from '../support/thrown.js';

const PLATFORM = {
  build: { os: 'linux', architecture: 'amd64' },
  target: { os: 'linux', architecture: 'amd64' },
};

function parse(text: string, options: Partial<ParseOptions> = {}) {
  return parseDockerfile(text, { file: 'Dockerfile', platform: PLATFORM, ...options });
}

/** The instructions of the only (or last) stage of `FROM scratch\n<body>`. */
function body(text: string): Instruction[] {
  const ir = parse(`FROM scratch\n${text}`);
  return [...(ir.stages[ir.stages.length - 1]?.instructions ?? [])];
}

function first<K extends Instruction['kind']>(text: string, kind: K): Extract<Instruction, { kind: K }> {
  const found = body(text).find((i) => i.kind === kind);
  if (!found) throw new Error(`no ${kind} in ${text}`);
  return found as Extract<Instruction, { kind: K }>;
}

function failure(text: string, options: Partial<ParseOptions> = {}): string {
  return thrown(() => parse(text, options)).message;
}

describe('errors name file:line:column and the instruction', () => {
  const cases: [string, string][] = [
    ['FROM alpine\nRUN true\n\n\n\n\nCOPY --chownx=1 a b\n', 'Dockerfile:7:6: COPY: unknown flag --chownx'],
    ['FROM alpine\n  COPY --chown a b\n', 'Dockerfile:2:8: COPY: missing a value on flag: --chown'],
    ['FROM alpine\nRUN --network=bridge true\n', 'Dockerfile:2:5: RUN: invalid network mode "bridge"'],
    ['FROM alpine\nCOPY a\n', 'Dockerfile:2:1: COPY: COPY requires at least two arguments'],
    ['FROM alpine\nWORKDIR\n', 'Dockerfile:2:1: WORKDIR: WORKDIR requires exactly one argument'],
    ['FROM alpine\nFOO bar\n', 'Dockerfile:2:1: unknown instruction: FOO'],
    ['FROM alpine\nRUNN true\n', 'Dockerfile:2:1: unknown instruction: RUNN (did you mean run?)'],
    ['RUN true\n', 'Dockerfile:1:1: RUN: no build stage in current context'],
    ['ARG A\n', 'Dockerfile:1:1: dockerfile contains no stages to build'],
    ['# just a comment\n', 'file with no instructions'],
    ['FROM alpine AS 1st\n', 'Dockerfile:1:1: FROM: invalid name for build stage: "1st"'],
    ['FROM alpine AS\n', 'Dockerfile:1:1: FROM: FROM requires either one or three arguments'],
    [
      'FROM alpine\nRUN --mount=type=cache,target=/x \\\n    --mount=type=nfs true\n',
      'Dockerfile:3:5: RUN: unsupported mount type "nfs"',
    ],
    ['FROM alpine\nCOPY --chmod=999 a b\n', "Dockerfile:2:6: COPY: invalid chmod parameter: '999'"],
    ['FROM alpine\nRUN <<EOF\necho hi\n', 'Dockerfile:2:1: RUN: unterminated heredoc'],
    ['FROM ${UNSET}\n', 'Dockerfile:1:1: FROM: base name (${UNSET}) should not be blank'],
    ['FROM alpine\nENV ${\n', 'Dockerfile:2:1: ENV: ENV must have two arguments'],
  ];
  it.each(cases)('%j', (text, message) => {
    expect(failure(text)).toContain(message);
  });

  it('uses INVALID_ARGUMENT with the location as subject', () => {
    const err = thrown(() => parse('FROM a\nCOPY --nope x y\n', { file: 'build/Containerfile' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.subject).toBe('build/Containerfile:2:6');
  });
});

describe('parser directives', () => {
  it('reads syntax, escape and check, case-insensitively and with spaces', () => {
    const ir = parse('# Syntax = docker/dockerfile:1.7\n#  ESCAPE=`\n# check=skip=all\nFROM a\n');
    expect(ir.directives).toEqual({ syntax: 'docker/dockerfile:1.7', escape: '`', check: 'skip=all' });
  });

  it('stops at the first comment that is not a directive', () => {
    expect(parse('# a comment\n# escape=`\nFROM a\n').directives.escape).toBe('\\');
  });

  it('rejects a repeated directive and a bad escape token', () => {
    expect(failure('# escape=`\n# escape=\\\nFROM a\n')).toContain(
      'Dockerfile:2:1: only one escape parser directive',
    );
    expect(failure('# escape=x\nFROM a\n')).toContain("invalid escape token 'x'");
  });

  it('strips a byte-order mark', () => {
    expect(parse('\uFEFF# escape=`\nFROM a\n').directives.escape).toBe('`');
  });

  it('continues lines with a backtick under escape=`', () => {
    // Without the directive a trailing backtick is literal and the next line is a new instruction.
    expect(failure('FROM a\nRUN dir c:\\ `\n  && echo done\n')).toContain(
      'Dockerfile:3:3: unknown instruction: &&',
    );
    const ir = parse('# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo done\nCOPY a.txt c:\\\n');
    const [r, c] = ir.stages[0]?.instructions ?? [];
    expect(r?.kind === 'RUN' && r.command.args).toEqual(['dir c:\\   && echo done']);
    expect(c?.kind === 'COPY' && c.dest).toBe('c:\\');
  });
});

describe('line continuation', () => {
  it('joins lines, drops comment and empty lines inside, and tracks the end line', () => {
    const run = first(
      'RUN apt-get update \\\n  # refresh\n\n  && apt-get install -y curl\nUSER nobody\n',
      'RUN',
    );
    expect(run.command.args).toEqual(['apt-get update   && apt-get install -y curl']);
    expect(run.location).toEqual({ file: 'Dockerfile', line: 2, column: 1, endLine: 5 });
  });

  it('does not continue after an escaped escape token', () => {
    const ins = body('RUN echo a\\\\\nUSER x\n');
    expect(ins.map((i) => i.kind)).toEqual(['RUN', 'USER']);
  });

  it('handles CRLF line endings', () => {
    const ins = body('RUN echo a \\\r\n  b\r\nUSER x\r\n');
    expect(ins[0]?.kind === 'RUN' && ins[0].command.args).toEqual(['echo a   b']);
    expect(ins[1]?.kind === 'USER' && ins[1].user).toBe('x');
  });
});

describe('FROM and stages', () => {
  it('names stages in lowercase, resolves stage bases, scratch and images', () => {
    const ir = parse('FROM alpine:3.19 AS Base\nFROM base AS dev\nFROM scratch\nFROM Base\n');
    expect(ir.stages.map((s) => [s.name, s.base])).toEqual([
      ['base', { kind: 'image', ref: 'alpine:3.19' }],
      ['dev', { kind: 'stage', index: 0 }],
      [undefined, { kind: 'scratch' }],
      // BuildKit looks up FROM names as written against lowercased stage names.
      [undefined, { kind: 'image', ref: 'Base' }],
    ]);
    expect(ir.target).toBe(3);
  });

  it('substitutes global ARGs, build args and platform ARGs', () => {
    const text =
      'ARG REGISTRY=docker.io\nARG TAG=3.19\nARG IMAGE=${REGISTRY}/library/alpine:${TAG}\n' +
      'FROM --platform=$BUILDPLATFORM $IMAGE AS tools\nFROM --platform=${TARGETPLATFORM} busybox:${TAG:-latest}\n';
    const ir = parse(text, {
      buildArgs: { TAG: '3.20' },
      platform: {
        build: { os: 'linux', architecture: 'amd64' },
        target: { os: 'linux', architecture: 'arm', variant: 'v7' },
      },
    });
    expect(ir.stages[0]?.baseName).toBe('docker.io/library/alpine:3.20');
    expect(ir.stages[0]?.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(ir.stages[1]?.baseName).toBe('busybox:3.20');
    expect(ir.stages[1]?.platform).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(ir.globalArgs.get('TARGETVARIANT')).toBe('v7');
    expect(ir.globalArgs.get('BUILDARCH')).toBe('amd64');
    expect(ir.metaArgs.map((a) => a.args[0]?.key)).toEqual(['REGISTRY', 'TAG', 'IMAGE']);
  });

  it('does not see ARGs declared inside a stage', () => {
    const ir = parse('FROM alpine\nARG V=1\nFROM busybox:${V:-none}\n');
    expect(ir.stages[1]?.baseName).toBe('busybox:none');
  });

  it('rejects an empty or unparsable platform', () => {
    expect(failure('FROM --platform=$NOPE a\n')).toContain(
      'FROM: empty platform value from expression $NOPE',
    );
    expect(failure('FROM --platform=linux a\n')).toContain('FROM: failed to parse platform linux');
  });

  it('selects a target by name and rejects unknown ones', () => {
    expect(parse('FROM a AS one\nFROM b AS two\n', { target: 'ONE' }).target).toBe(0);
    expect(failure('FROM a AS one\n', { target: 'nope' })).toContain(
      'target stage "nope" could not be found',
    );
  });

  it('warns about duplicate and reserved stage names, MAINTAINER, legacy ENV and empty continuations', () => {
    const ir = parse(
      'FROM a AS x\nMAINTAINER me\nENV A b\nRUN a \\\n\n  b\nFROM b AS x\nFROM c AS context\n',
    );
    expect(ir.warnings.map((w) => [w.rule, w.location.line])).toEqual([
      ['MaintainerDeprecated', 2],
      ['LegacyKeyValueFormat', 3],
      ['NoEmptyContinuation', 4],
      ['DuplicateStageName', 7],
      ['ReservedStageName', 8],
    ]);
  });
});

describe('ARG, ENV, LABEL', () => {
  it('parses ARG names and defaults', () => {
    expect(first('ARG A B=2 C="x y" D=\n', 'ARG').args).toEqual([
      { key: 'A' },
      { key: 'B', value: '2' },
      { key: 'C', value: '"x y"' },
      { key: 'D', value: '' },
    ]);
    expect(failure('FROM a\nARG =x\n')).toContain('ARG: ARG names can not be blank');
    expect(failure('FROM a\nARG\n')).toContain('ARG requires at least one argument');
  });

  const envCases: [string, { key: string; value: string; legacy: boolean }[]][] = [
    ['ENV A=1', [{ key: 'A', value: '1', legacy: false }]],
    [
      'ENV A=1 B="two words" C=x\\ y',
      [
        { key: 'A', value: '1', legacy: false },
        { key: 'B', value: '"two words"', legacy: false },
        { key: 'C', value: 'x\\ y', legacy: false },
      ],
    ],
    ['ENV A', []],
    ['ENV PATH /usr/local/bin:$PATH', [{ key: 'PATH', value: '/usr/local/bin:$PATH', legacy: true }]],
    ['ENV MSG  hello   world', [{ key: 'MSG', value: 'hello   world', legacy: true }]],
    [
      'ENV A= B=""',
      [
        { key: 'A', value: '', legacy: false },
        { key: 'B', value: '""', legacy: false },
      ],
    ],
  ];
  it.each(envCases)('%s', (line, pairs) => {
    if (pairs.length === 0) {
      expect(failure(`FROM a\n${line}\n`)).toContain('ENV must have two arguments');
    } else {
      expect(first(`${line}\n`, 'ENV').pairs).toEqual(pairs);
    }
  });

  it('rejects malformed ENV and LABEL', () => {
    expect(failure('FROM a\nENV A=1 B\n')).toContain(`Syntax error - can't find = in "B"`);
    expect(failure('FROM a\nENV =1\n')).toContain('ENV names can not be blank');
    expect(failure('FROM a\nLABEL\n')).toContain('LABEL requires at least one argument');
    expect(failure('FROM a\nENV --x A=1\n')).toContain('ENV: unknown flag --x');
  });

  it('parses LABEL pairs with quoted keys', () => {
    expect(first('LABEL "com.example.vendor"="ACME Inc" version=1.0\n', 'LABEL').pairs).toEqual([
      { key: '"com.example.vendor"', value: '"ACME Inc"', legacy: false },
      { key: 'version', value: '1.0', legacy: false },
    ]);
  });
});

describe('RUN', () => {
  it('keeps shell form as one string and exec form as argv', () => {
    expect(first('RUN echo "a  b" && ls\n', 'RUN').command).toEqual({
      form: 'shell',
      args: ['echo "a  b" && ls'],
      files: [],
    });
    expect(first('RUN ["sh", "-c", "echo $HOME"]\n', 'RUN').command).toEqual({
      form: 'exec',
      args: ['sh', '-c', 'echo $HOME'],
      files: [],
    });
    // Not valid JSON: shell form, as BuildKit does.
    expect(first("RUN ['sh']\n", 'RUN').command.form).toBe('shell');
    expect(failure('FROM a\nRUN ["sh", 1]\n')).toContain('arrays must be comprised of strings only');
  });

  it('parses --network and --security', () => {
    const run = first('RUN --network=none --security=insecure true\n', 'RUN');
    expect([run.network, run.security]).toEqual(['none', 'insecure']);
    expect(first('RUN true\n', 'RUN').network).toBe('default');
    expect(failure('FROM a\nRUN --security=root true\n')).toContain('security "root" is not valid');
    expect(failure('FROM a\nRUN --network=host --network=none true\n')).toContain(
      'duplicate flag specified: --network',
    );
  });

  it('stops reading flags at --', () => {
    expect(first('RUN -- --version\n', 'RUN').command.args).toEqual(['--version']);
  });

  const mounts: [string, object][] = [
    [
      'type=cache,target=/root/.cache/go-build',
      { type: 'cache', target: '/root/.cache/go-build', readOnly: false },
    ],
    [
      'type=cache,id=apt,sharing=locked,target=/var/cache/apt,mode=0755,uid=1000,gid=1000',
      {
        type: 'cache',
        id: 'apt',
        sharing: 'locked',
        target: '/var/cache/apt',
        mode: 0o755,
        uid: 1000,
        gid: 1000,
      },
    ],
    [
      'type=bind,source=go.sum,target=go.sum',
      { type: 'bind', source: 'go.sum', target: 'go.sum', readOnly: true },
    ],
    ['target=/src,rw', { type: 'bind', target: '/src', readOnly: false }],
    [
      'type=bind,from=build,src=/out,dst=/in,ro=false',
      { type: 'bind', from: 'build', source: '/out', target: '/in', readOnly: false },
    ],
    [
      'type=secret,id=npmrc,target=/root/.npmrc,required',
      { type: 'secret', id: 'npmrc', target: '/root/.npmrc', required: true },
    ],
    ['type=secret,id=token,env=TOKEN', { type: 'secret', id: 'token', env: 'TOKEN', readOnly: true }],
    [
      'type=tmpfs,target=/tmp,size=64m',
      { type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024, readOnly: false },
    ],
    ['type=ssh,required=true', { type: 'ssh', required: true }],
    [`'"source=a,b",target=/x'`, { source: 'a,b', target: '/x' }],
  ];
  it.each(mounts)('--mount=%s', (value, expected) => {
    const run = first(`RUN --mount=${value} true\n`, 'RUN');
    expect(run.mounts[0]?.mount).toMatchObject(expected);
  });

  const badMounts: [string, string][] = [
    ['type=volume', 'unsupported mount type "volume"'],
    ['type=cache,sharing=exclusive', 'unsupported sharing value "exclusive"'],
    ['type=bind,sharing=shared', 'invalid cache sharing set for bind mount'],
    ['type=bind,mode=0700', 'mode not allowed for "bind" type mounts'],
    ['type=tmpfs,uid=0', 'uid not allowed for "tmpfs" type mounts'],
    ['type=cache,size=1g', "unexpected key 'size' for mount type 'cache'"],
    ['type=bind,required', "unexpected key 'required' for mount type 'bind'"],
    ['type=secret', 'invalid secret mount. one of source, target required'],
    ['type=secret,id=a,source=b', "both source and id can't be set"],
    ['type=secret,id=a,from=x', 'secret mount should not have a from'],
    ['type=cache,mode=999', 'invalid value 999 for mode'],
    ['type=cache,uid=-1', 'invalid value -1 for uid'],
    ['type=bind,ro=maybe', 'invalid value for ro: maybe'],
    ['type=tmpfs,size=lots', 'invalid value for size: lots'],
    ['type=bind,bogus=1', "unexpected key 'bogus'"],
    ['type=bind,target', "invalid field 'target' must be a key=value pair"],
    ['type=bind,from=$STAGE', "'from' doesn't support variable expansion"],
  ];
  it.each(badMounts)('--mount=%s fails', (value, message) => {
    expect(failure(`FROM a\nRUN --mount=${value} true\n`)).toContain(`Dockerfile:2:5: RUN: ${message}`);
  });

  it('defers mounts with variables to dispatch', () => {
    const run = first('RUN --mount=type=cache,id=${CACHE_ID},target=/c true\n', 'RUN');
    expect(run.mounts[0]).toEqual({ text: 'type=cache,id=${CACHE_ID},target=/c' });
  });

  it('keeps quoted flag values together', () => {
    const run = first(`RUN --mount="type=bind,target=/a b" true\n`, 'RUN');
    expect(run.mounts[0]?.mount?.target).toBe('/a b');
  });
});

describe('heredocs', () => {
  it('reads RUN heredocs with their interpreter', () => {
    const run = first('RUN <<EOF\nset -e\necho "$HOME"\nEOF\nUSER x\n', 'RUN');
    expect(run.command).toEqual({
      form: 'shell',
      args: ['<<EOF'],
      files: [{ name: 'EOF', fd: 0, chomp: false, expand: true, content: 'set -e\necho "$HOME"\n' }],
    });
    expect(run.location.endLine).toBe(5);
    expect(first('RUN python3 <<PY\nprint(1)\nPY\n', 'RUN').command.args).toEqual(['python3 <<PY']);
  });

  it('strips leading tabs for <<- and finds an indented delimiter', () => {
    const run = first('RUN <<-EOT\n\tif true; then\n\t\techo yes\n\tfi\n\tEOT\n', 'RUN');
    expect(run.command.files[0]?.content).toBe('if true; then\necho yes\nfi\n');
    expect(run.command.files[0]?.chomp).toBe(true);
  });

  it('does not expand quoted delimiters', () => {
    for (const word of ['"EOF"', "'EOF'", 'E"O"F']) {
      const copy = first(`COPY <<${word} /x\n$A\nEOF\n`, 'COPY');
      expect(copy.inline[0]).toMatchObject({ name: 'EOF', expand: false, content: '$A\n' });
    }
  });

  const names: [string, string, boolean][] = [
    ["<<eo\\'f", "eo'f", true],
    [`<<"eo'f"`, "eo'f", false],
    ["<<'one two'", 'one two', false],
    ['<<$EOF', '$EOF', true],
    ['<<file.txt', 'file.txt', true],
    ['<< EOF', 'EOF', true],
  ];
  it.each(names)('delimiter %s is %s (expand=%s)', (word, name, expand) => {
    const run = first(`RUN cat ${word}\nbody\n${name}\n`, 'RUN');
    expect(run.command.files[0]).toMatchObject({ name, expand, content: 'body\n' });
  });

  it('reads several heredocs in order, with file descriptors', () => {
    const run = first('RUN <<A 3<<B cat /dev/fd/3\na\nA\nb\nB\nUSER u\n', 'RUN');
    expect(run.command.files.map((f) => [f.name, f.fd, f.content])).toEqual([
      ['A', 0, 'a\n'],
      ['B', 3, 'b\n'],
    ]);
  });

  it('makes COPY heredocs inline sources', () => {
    const copy = first(
      'COPY --chmod=755 <<run.sh <<EOF /usr/local/bin/\n#!/bin/sh\nrun.sh\nconf\nEOF\n',
      'COPY',
    );
    expect(copy.sources).toEqual([]);
    expect(copy.inline.map((d) => [d.name, d.content])).toEqual([
      ['run.sh', '#!/bin/sh\n'],
      ['EOF', 'conf\n'],
    ]);
    expect(failure('FROM a\nCOPY x <<EOF\nEOF\n')).toContain('COPY cannot accept a heredoc as a destination');
  });

  it('ignores << in exec form, in quotes and in other instructions', () => {
    expect(body('RUN ["cat", "<<EOF"]\nUSER x\n').map((i) => i.kind)).toEqual(['RUN', 'USER']);
    expect(failure("FROM a\nRUN echo '<<EOF'\nEOF\n")).toContain('unknown instruction: EOF');
    expect(first('LABEL a=<<EOF\n', 'LABEL').pairs[0]?.value).toBe('<<EOF');
  });

  it('keeps a heredoc body that looks like an instruction', () => {
    const ins = body('RUN <<EOF\nFROM x\nEOF\n');
    expect(ins.length).toBe(1);
  });
});

describe('COPY and ADD', () => {
  it('parses every COPY flag', () => {
    const copy = first(
      'COPY --from=build --chown=app:app --chmod=u=rwX,go=rX --link --parents --exclude=*.md --exclude=tests/ ./src/ ./lib/ /app/\n',
      'COPY',
    );
    expect(copy).toMatchObject({
      from: 'build',
      chown: 'app:app',
      chmod: 'u=rwX,go=rX',
      link: true,
      parents: true,
      excludes: ['*.md', 'tests/'],
      sources: ['./src/', './lib/'],
      dest: '/app/',
    });
    expect(copy.chmodSpec?.kind).toBe('symbolic');
  });

  it('accepts the JSON form for paths with spaces', () => {
    expect(first('COPY ["my file.txt", "/dst dir/"]\n', 'COPY')).toMatchObject({
      sources: ['my file.txt'],
      dest: '/dst dir/',
    });
  });

  it('parses every ADD flag', () => {
    const add = first(
      'ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=false --unpack=true --link https://example.com/a.tar.gz /\n',
      'ADD',
    );
    expect(add).toMatchObject({
      checksum: expect.stringMatching(/^sha256:/),
      keepGitDir: false,
      unpack: true,
      link: true,
    });
    expect(first('ADD a.tar /x\n', 'ADD').unpack).toBeUndefined();
  });

  const bad: [string, string][] = [
    ['COPY --checksum=sha256:00 a b', 'COPY: unknown flag --checksum'],
    ['ADD --from=x a b', 'ADD: unknown flag --from'],
    ['ADD --parents a b', 'ADD: unknown flag --parents'],
    ['COPY --link=maybe a b', 'expecting boolean value for flag --link, not: maybe'],
    ['COPY --link= a b', 'missing a value on flag: --link'],
    ['COPY --from=a --from=b x y', 'duplicate flag specified: --from'],
    ['COPY --exclude a b', 'missing a value on flag: --exclude'],
    ['COPY --chmod=u+q a b', "invalid chmod parameter: 'u+q'"],
    ['COPY --chmod=07777777 a b', 'it should be octal string and between 0 and 07777'],
    ['ADD https://example.com/a', 'ADD requires at least two arguments'],
  ];
  it.each(bad)('%s fails', (line, message) => {
    expect(failure(`FROM a\n${line}\n`)).toContain(message);
  });

  it('accepts --link=false and --chmod with a variable (checked at dispatch)', () => {
    expect(first('COPY --link=false a b\n', 'COPY').link).toBe(false);
    const copy = first('COPY --chmod=$MODE a b\n', 'COPY');
    expect([copy.chmod, copy.chmodSpec]).toEqual(['$MODE', undefined]);
  });
});

describe('other instructions', () => {
  it('parses WORKDIR, USER, STOPSIGNAL, MAINTAINER, EXPOSE, VOLUME, SHELL, CMD, ENTRYPOINT', () => {
    const ins = body(
      [
        'WORKDIR /app/$NAME',
        'USER app:app',
        'STOPSIGNAL SIGQUIT',
        'MAINTAINER Jane <jane@example.com>',
        'EXPOSE 8080/tcp 53/udp $PORT',
        'VOLUME ["/data", "/logs"]',
        'VOLUME /a /b',
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
        'CMD ["--help"]',
        'ENTRYPOINT exec ./app',
      ].join('\n'),
    );
    expect(ins.map((i) => i.kind)).toEqual([
      'WORKDIR',
      'USER',
      'STOPSIGNAL',
      'MAINTAINER',
      'EXPOSE',
      'VOLUME',
      'VOLUME',
      'SHELL',
      'CMD',
      'ENTRYPOINT',
    ]);
    expect(ins).toMatchObject([
      { path: '/app/$NAME' },
      { user: 'app:app' },
      { signal: 'SIGQUIT' },
      { maintainer: 'Jane <jane@example.com>' },
      { ports: ['$PORT', '53/udp', '8080/tcp'] },
      { volumes: ['/data', '/logs'] },
      { volumes: ['/a', '/b'] },
      { shell: ['/bin/bash', '-o', 'pipefail', '-c'] },
      { command: { form: 'exec', args: ['--help'] } },
      { command: { form: 'shell', args: ['exec ./app'] } },
    ]);
  });

  const bad: [string, string][] = [
    ['SHELL /bin/sh -c', 'SHELL requires the arguments to be in JSON form'],
    ['SHELL []', 'SHELL requires at least one argument'],
    ['EXPOSE', 'EXPOSE requires at least one argument'],
    ['VOLUME [""]', 'VOLUME specified can not be an empty string'],
    ['USER', 'USER requires exactly one argument'],
    ['STOPSIGNAL', 'STOPSIGNAL requires exactly one argument'],
    ['ONBUILD ONBUILD RUN x', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['ONBUILD FROM x', "FROM isn't allowed as an ONBUILD trigger"],
    ['ONBUILD MAINTAINER x', "MAINTAINER isn't allowed as an ONBUILD trigger"],
    ['ONBUILD COPY --bogus a b', 'COPY: unknown flag --bogus'],
    ['USER --x=1 root', 'USER: unknown flag --x'],
  ];
  it.each(bad)('%s fails', (line, message) => {
    expect(failure(`FROM a\n${line}\n`)).toContain(message);
  });

  it('parses ONBUILD triggers, heredocs included', () => {
    const ob = first('onbuild copy --from=assets <<EOF /etc/motd\nhello\nEOF\n', 'ONBUILD');
    expect(ob.expression).toBe('copy --from=assets <<EOF /etc/motd\nhello\nEOF');
    expect(ob.trigger).toMatchObject({ kind: 'COPY', from: 'assets', dest: '/etc/motd' });
    expect(ob.trigger.location).toMatchObject({ line: 2, column: 9 });
  });
});

describe('HEALTHCHECK', () => {
  it('parses all options', () => {
    const hc = first(
      'HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1\n',
      'HEALTHCHECK',
    );
    expect(hc.health).toEqual({
      test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
      interval: 90e9,
      timeout: 10e9,
      startPeriod: 5e9,
      startInterval: 500e6,
      retries: 3,
    });
    expect(first('HEALTHCHECK CMD ["/bin/check", "--fast"]\n', 'HEALTHCHECK').health.test).toEqual([
      'CMD',
      '/bin/check',
      '--fast',
    ]);
    expect(first('HEALTHCHECK none\n', 'HEALTHCHECK').health.test).toEqual(['NONE']);
  });

  const bad: [string, string][] = [
    ['HEALTHCHECK NONE x', 'HEALTHCHECK NONE takes no arguments'],
    ['HEALTHCHECK CMD', 'Missing command after HEALTHCHECK CMD'],
    ['HEALTHCHECK RUN x', 'Unknown type "RUN" in HEALTHCHECK (try CMD)'],
    ['HEALTHCHECK --interval=10 CMD x', 'time: missing unit in duration "10"'],
    ['HEALTHCHECK --interval=1x CMD x', 'time: unknown unit "x" in duration "1x"'],
    ['HEALTHCHECK --interval=1.5.5s CMD x', 'time: missing unit in duration "1.5.5s"'],
    ['HEALTHCHECK --interval=s CMD x', 'time: invalid duration "s"'],
    ['HEALTHCHECK --timeout=10us CMD x', 'Interval "timeout" cannot be less than 1ms'],
    ['HEALTHCHECK --retries=-1 CMD x', '--retries cannot be negative (-1)'],
    ['HEALTHCHECK --retries=two CMD x', 'invalid syntax'],
    ['HEALTHCHECK --period=1s CMD x', 'unknown flag --period'],
  ];
  it.each(bad)('%s fails', (line, message) => {
    expect(failure(`FROM a\n${line}\n`)).toContain(message);
  });

  const durations: [string, number][] = [
    ['0', 0],
    ['1h', 3600e9],
    ['1.5s', 1.5e9],
    ['2m3s', 123e9],
    ['100ms', 100e6],
    ['3µs', 3000],
    ['7ns', 7],
  ];
  it.each(durations)('Go duration %s', (text, ns) => {
    expect(parseGoDuration(text)).toBe(ns);
  });
});

describe('well-known Dockerfile styles', () => {
  it('parses a multi-stage Go build with cache mounts and a distroless runtime', () => {
    const text = `# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM --platform=$BUILDPLATFORM golang:\${GO_VERSION}-bookworm AS build
WORKDIR /src
RUN --mount=type=cache,target=/go/pkg/mod \\
    --mount=type=bind,source=go.sum,target=go.sum \\
    --mount=type=bind,source=go.mod,target=go.mod \\
    go mod download -x
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \\
    --mount=type=bind,target=. \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /bin/server ./cmd/server

FROM gcr.io/distroless/static-debian12:nonroot AS final
COPY --from=build /bin/server /bin/
EXPOSE 8080
ENTRYPOINT ["/bin/server"]
`;
    const ir = parse(text);
    expect(ir.stages.map((s) => s.instructions.length)).toEqual([4, 3]);
    expect(ir.stages[0]?.baseName).toBe('golang:1.22-bookworm');
  });

  it('parses a Node build with npm ci, a secret and a non-root user', () => {
    const text = `FROM node:20-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci --omit=dev

FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node . .
USER node
HEALTHCHECK --interval=30s CMD node healthcheck.js
CMD ["node", "server.js"]
`;
    const ir = parse(text);
    expect(ir.stages[1]?.instructions.map((i) => i.kind)).toEqual([
      'ENV',
      'WORKDIR',
      'COPY',
      'COPY',
      'USER',
      'HEALTHCHECK',
      'CMD',
    ]);
  });

  it('parses a Debian image with apt heredoc and labels', () => {
    const text = `FROM debian:bookworm-slim
LABEL org.opencontainers.image.source="https://example.com/repo" \\
      org.opencontainers.image.licenses="Apache-2.0"
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    --mount=type=cache,target=/var/lib/apt,sharing=locked <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl
EOF
STOPSIGNAL SIGTERM
`;
    const [label, run] = parse(text).stages[0]?.instructions ?? [];
    expect(label?.kind === 'LABEL' && label.pairs.map((p) => p.key)).toEqual([
      'org.opencontainers.image.source',
      'org.opencontainers.image.licenses',
    ]);
    expect(run?.kind === 'RUN' && run.mounts.map((m) => m.mount?.sharing)).toEqual(['locked', 'locked']);
    expect(run?.kind === 'RUN' && run.command.files[0]?.content.split('\n').length).toBe(4);
  });
});
