// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables are written literally in these strings
import { describe, expect, it } from 'vitest';
import {
  type DockerfileIR,
  expandInstruction,
  type Instruction,
  initialVariables,
  type ParseOptions,
  parseDockerfile,
  parseImageTriggers,
  resolveBuildArgs,
  runEnvironment,
  type StageVariables,
  stageDependencies,
  stagesNeeded,
} from '../../src/dockerfile/index.js';
import { thrown } from '../support/thrown.js';

const PLATFORM = {
  build: { os: 'linux', architecture: 'amd64' },
  target: { os: 'linux', architecture: 'arm64', variant: 'v8' },
};

function parse(text: string, options: Partial<ParseOptions> = {}): DockerfileIR {
  return parseDockerfile(text, { file: 'Dockerfile', platform: PLATFORM, ...options });
}

const names = (ir: DockerfileIR, target?: string | number) =>
  stagesNeeded(ir, target).stages.map((s) => s.stage.name ?? String(s.stage.index));

describe('stage graph', () => {
  const MULTI = `FROM alpine AS base
RUN apk add --no-cache ca-certificates

FROM golang:1.22 AS build-api
COPY . .
RUN go build -o /api ./cmd/api

FROM node:20 AS build-web
RUN --mount=type=cache,target=/root/.npm npm ci && npm run build

FROM base AS docs
COPY --from=build-web /web/docs /docs

FROM base AS final
COPY --from=build-api /api /usr/bin/api
COPY --from=build-web /web/dist /srv
RUN --mount=type=bind,from=docs,target=/docs cp -r /docs /srv/docs

FROM busybox AS unused
COPY --from=3 /docs /docs
`;

  it('keeps only what the target needs, in dependency order, with levels', () => {
    const ir = parse(MULTI, { target: 'final' });
    const plan = stagesNeeded(ir);
    expect(plan.target).toBe(4);
    expect(plan.stages.map((s) => [s.stage.name, s.dependsOn, s.level])).toEqual([
      ['base', [], 0],
      ['build-api', [], 0],
      ['build-web', [], 0],
      ['docs', [0, 2], 1],
      ['final', [0, 1, 2, 3], 2],
    ]);
    expect(plan.levels).toEqual([[0, 1, 2], [3], [4]]);
  });

  it('prunes by target name or index and defaults to the last stage', () => {
    const ir = parse(MULTI);
    expect(names(ir)).toEqual(['base', 'build-web', 'docs', 'unused']);
    expect(names(ir, 'build-api')).toEqual(['build-api']);
    expect(names(ir, 'DOCS')).toEqual(['base', 'build-web', 'docs']);
    expect(names(ir, 0)).toEqual(['base']);
  });

  it('records images named by COPY --from and RUN --mount from=', () => {
    const ir = parse(
      'FROM alpine\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\nRUN --mount=from=busybox,target=/bb true\n',
    );
    expect(stagesNeeded(ir).stages[0]?.images).toEqual(['busybox', 'nginx:1.27']);
  });

  it('adds dependencies from ONBUILD triggers of a base stage', () => {
    const ir = parse(
      'FROM alpine AS assets\nFROM alpine AS builder\nONBUILD COPY --from=assets / /assets\nFROM builder AS app\n',
    );
    expect(stagesNeeded(ir).stages.map((s) => [s.stage.name, s.dependsOn])).toEqual([
      ['assets', []],
      ['builder', []],
      ['app', [0, 1]],
    ]);
  });

  it('keeps independent stages apart so they can build concurrently', () => {
    const ir = parse(
      'FROM a AS one\nFROM b AS two\nFROM c AS three\nCOPY --from=one / /1\nCOPY --from=two / /2\n',
    );
    expect(stagesNeeded(ir).levels).toEqual([[0, 1], [2]]);
  });

  const errors: [string, string][] = [
    [
      'FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n',
      'Dockerfile:2:1: COPY: cannot use stage "y", it needs to be defined before current stage "x"',
    ],
    [
      'FROM a\nCOPY --from=0 / /\n',
      'cannot use stage "stage-0", it needs to be defined before current stage "stage-0"',
    ],
    ['FROM a\nCOPY --from=7 / /\n', 'Dockerfile:2:1: COPY: invalid stage index 7'],
    ['FROM a AS s\nFROM b\nCOPY --from=$S / /\n', 'variable expansion is not supported for --from'],
    ['FROM a AS s\nFROM b\nCOPY --from=${S:-s} / /\n', 'variable expansion is not supported for --from'],
  ];
  it.each(errors)('%j', (text, message) => {
    expect(thrown(() => stagesNeeded(parse(text))).message).toContain(message);
  });

  it('does not report errors in stages the target does not need', () => {
    const ir = parse('FROM a AS ok\nFROM b AS broken\nCOPY --from=later / /\nFROM c AS later\n', {
      target: 'ok',
    });
    expect(names(ir)).toEqual(['ok']);
    expect(() => stageDependencies(ir, ir.stages[1] as never)).toThrow(/defined before current stage/);
  });

  it('resolves a later duplicate name for later references', () => {
    const ir = parse('FROM a AS x\nFROM b AS x\nFROM c\nCOPY --from=x / /\n');
    expect(stagesNeeded(ir).stages.map((s) => s.stage.index)).toEqual([1, 2]);
  });
});

/** Runs every instruction of a stage through expandInstruction, as the builder will. */
function dispatch(ir: DockerfileIR, index: number, start: StageVariables = initialVariables({})) {
  let vars = start;
  const out: Instruction[] = [];
  for (const instruction of ir.stages[index]?.instructions ?? []) {
    const step = expandInstruction(ir, vars, instruction);
    out.push(step.instruction);
    vars = step.variables;
  }
  return { out, vars };
}

describe('dispatch-time expansion', () => {
  it('expands exactly the fields BuildKit expands', () => {
    const ir = parse(
      `FROM alpine
ENV APP=/srv/app USERNAME=svc PORT=8080 SIG=SIGTERM
WORKDIR $APP
USER \${USERNAME}:\${USERNAME}
LABEL "version"="\${PORT}" "$USERNAME"=yes
EXPOSE $PORT \${PORT}/udp
VOLUME ["$APP/data"]
STOPSIGNAL $SIG
COPY --chown=$USERNAME --chmod=\${MODE:-0644} config/\${USERNAME}.yml $APP/
ADD --checksum=\${SUM:-sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d} https://example.com/$USERNAME.tgz $APP/
RUN echo $APP
CMD echo $APP
ENTRYPOINT ["$APP/bin"]
`,
    );
    const { out } = dispatch(ir, 0);
    expect(out.slice(1)).toMatchObject([
      { kind: 'WORKDIR', path: '/srv/app' },
      { kind: 'USER', user: 'svc:svc' },
      {
        kind: 'LABEL',
        pairs: [
          { key: 'version', value: '8080' },
          { key: 'svc', value: 'yes' },
        ],
      },
      { kind: 'EXPOSE', ports: ['8080', '8080/udp'] },
      { kind: 'VOLUME', volumes: ['/srv/app/data'] },
      { kind: 'STOPSIGNAL', signal: 'SIGTERM' },
      {
        kind: 'COPY',
        chown: 'svc',
        chmod: '0644',
        chmodSpec: { kind: 'octal', mode: 0o644 },
        sources: ['config/svc.yml'],
        dest: '/srv/app/',
      },
      {
        kind: 'ADD',
        checksum: expect.stringMatching(/^sha256:2445/),
        sources: ['https://example.com/svc.tgz'],
        dest: '/srv/app/',
      },
      { kind: 'RUN', command: { args: ['echo $APP'] } },
      { kind: 'CMD', command: { args: ['echo $APP'] } },
      { kind: 'ENTRYPOINT', command: { args: ['$APP/bin'] } },
    ]);
  });

  it('lets every ENV pair see the values from before the instruction', () => {
    const ir = parse('FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    const { vars } = dispatch(ir, 0);
    expect(Object.fromEntries(vars.env)).toEqual({ abc: 'bye', def: 'hello', ghi: 'bye' });
  });

  it('starts from the base image env and keeps config order when a key is reset', () => {
    const ir = parse('FROM a\nENV PATH=/opt/bin:$PATH LANG=C.UTF-8\n');
    const { vars } = dispatch(ir, 0, initialVariables({ imageEnv: ['PATH=/usr/bin', 'HOME=/root'] }));
    expect([...vars.env]).toEqual([
      ['PATH', '/opt/bin:/usr/bin'],
      ['HOME', '/root'],
      ['LANG', 'C.UTF-8'],
    ]);
  });

  it('scopes ARGs: declared before use, build args win, global values need redeclaring', () => {
    const ir = parse(
      `ARG VERSION=1.0 ONLY_GLOBAL=g
FROM alpine
USER \${username:-some_user}
ARG username
USER $username
ARG VERSION
ARG ONLY_GLOBAL
ARG LOCAL=\${VERSION}-local
WORKDIR /v/$VERSION/$LOCAL/$ONLY_GLOBAL/$TARGETARCH
ARG TARGETARCH
WORKDIR /$TARGETARCH
`,
      { buildArgs: { username: 'what_user', VERSION: '2.0' } },
    );
    const { out, vars } = dispatch(ir, 0);
    expect(out.filter((i) => i.kind === 'USER').map((i) => i.kind === 'USER' && i.user)).toEqual([
      'some_user',
      'what_user',
    ]);
    expect(out.filter((i) => i.kind === 'WORKDIR').map((i) => i.kind === 'WORKDIR' && i.path)).toEqual([
      '/v/2.0/2.0-local/g/',
      '/arm64',
    ]);
    expect(vars.args.map((a) => `${a.key}=${a.value ?? ''}`)).toEqual([
      'username=what_user',
      'VERSION=2.0',
      'ONLY_GLOBAL=g',
      'LOCAL=2.0-local',
      'TARGETARCH=arm64',
    ]);
    expect(vars.env.size).toBe(0);
  });

  it('exposes every automatic platform ARG after redeclaration', () => {
    const ir = parse(
      'FROM a\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n',
    );
    const { vars } = dispatch(ir, 0);
    expect(Object.fromEntries(vars.vars)).toEqual({
      TARGETPLATFORM: 'linux/arm64/v8',
      TARGETOS: 'linux',
      TARGETARCH: 'arm64',
      TARGETVARIANT: 'v8',
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
    });
  });

  it('inherits variables from a base stage', () => {
    const ir = parse('FROM a AS base\nARG V=1\nENV E=2\nFROM base\nWORKDIR /$V/$E\n');
    const base = dispatch(ir, 0).vars;
    const { out } = dispatch(ir, 1, initialVariables({ base }));
    expect(out[0]).toMatchObject({ path: '/1/2' });
  });

  it('parses mounts after expanding each value', () => {
    const ir = parse(
      'FROM a\nARG KIND=cache ID=gomod\nRUN --mount=type=$KIND,id=${ID},target=/go/pkg/mod,sharing=${SHARE:-locked} go build\n',
    );
    const { out } = dispatch(ir, 0);
    expect(out[1]?.kind === 'RUN' && out[1].mounts[0]?.mount).toEqual({
      type: 'cache',
      id: 'gomod',
      target: '/go/pkg/mod',
      sharing: 'locked',
      readOnly: false,
      required: false,
    });
    const bad = parse('FROM a\nARG KIND=nfs\nRUN --mount=type=$KIND true\n');
    expect(thrown(() => dispatch(bad, 0)).message).toContain(
      'Dockerfile:3:1: RUN: unsupported mount type "nfs"',
    );
  });

  it('expands COPY heredoc bodies unless the delimiter was quoted', () => {
    const ir = parse(
      'FROM a\nENV NAME=world\nCOPY <<EOF /a\nhello "$NAME" \\$NAME\nEOF\nCOPY <<"EOF" /b\nhello $NAME\nEOF\nRUN <<EOF\necho $NAME\nEOF\n',
    );
    const { out } = dispatch(ir, 0);
    expect(out[1]?.kind === 'COPY' && out[1].inline[0]?.content).toBe('hello "world" $NAME\n');
    expect(out[2]?.kind === 'COPY' && out[2].inline[0]?.content).toBe('hello $NAME\n');
    expect(out[3]?.kind === 'RUN' && out[3].command.files[0]?.content).toBe('echo $NAME\n');
  });

  it('reports expansion errors with the location and instruction', () => {
    const ir = parse('FROM a\n\nWORKDIR ${DIR:?set DIR}\n');
    expect(thrown(() => dispatch(ir, 0)).message).toBe(
      'Dockerfile:3:1: WORKDIR: failed to process "${DIR:?set DIR}": DIR: set DIR',
    );
    const chmod = parse('FROM a\nARG M=z+q\nCOPY --chmod=$M a b\n');
    expect(thrown(() => dispatch(chmod, 0)).message).toContain("COPY: invalid chmod parameter: 'z+q'");
  });

  const copyErrors: [string, string][] = [
    ['COPY https://example.com/a /a', "COPY: source can't be a URL for COPY"],
    ['ADD --checksum=sha256:00 https://example.com/a /a', 'ADD: invalid checksum digest format: sha256:00'],
    ['ADD --checksum=sha256:00 a.tar /a', 'ADD: checksum requires HTTP(S) or Git sources'],
    [
      'ADD --checksum=sha256:00 https://a/x https://b/y /a',
      "ADD: checksum can't be specified for multiple sources",
    ],
  ];
  it.each(copyErrors)('%s fails at dispatch', (line, message) => {
    expect(thrown(() => dispatch(parse(`FROM a\n${line}\n`), 0)).message).toContain(
      `Dockerfile:2:1: ${message}`,
    );
  });

  it('accepts a Git source with a commit checksum', () => {
    const ir = parse('FROM a\nADD --checksum=abc123 https://github.com/moby/buildkit.git#v0.14.0 /src\n');
    expect(dispatch(ir, 0).out[0]).toMatchObject({ checksum: 'abc123' });
  });

  it('keeps undeclared proxy build args out of the recorded environment', () => {
    const ir = parse('FROM a\nARG HTTPS_PROXY\nARG OTHER\n', {
      buildArgs: {
        http_proxy: 'http://u:p@proxy:3128',
        HTTPS_PROXY: 'http://proxy:3129',
        OTHER: 'x',
        NO_PROXY: 'localhost',
      },
    });
    const env = runEnvironment(ir, dispatch(ir, 0).vars);
    expect(Object.fromEntries(env.env)).toEqual({ HTTPS_PROXY: 'http://proxy:3129', OTHER: 'x' });
    expect(Object.fromEntries(env.proxy)).toEqual({
      http_proxy: 'http://u:p@proxy:3128',
      NO_PROXY: 'localhost',
    });
  });
});

describe('base image ONBUILD triggers', () => {
  const from = { file: 'Dockerfile', line: 3, column: 1, endLine: 3 };

  it('parses each trigger on its own, located at the FROM', () => {
    const triggers = parseImageTriggers(
      ['COPY . /app/src', 'RUN make -C /app/src', 'COPY <<EOF /x\nhi\nEOF'],
      from,
    );
    expect(triggers.map((t) => t.kind)).toEqual(['COPY', 'RUN', 'COPY']);
    expect(triggers[0]?.location).toEqual(from);
    expect(triggers[2]?.kind === 'COPY' && triggers[2].inline[0]?.content).toBe('hi\n');
  });

  const bad: [string, string][] = [
    ['FROM x', "ONBUILD: FROM isn't allowed as an ONBUILD trigger"],
    ['RUN a\nRUN b', 'onbuild trigger should be a single expression'],
    ['COPY --nope a b', 'Dockerfile:3:1: ONBUILD trigger "COPY --nope a b": COPY: unknown flag --nope'],
  ];
  it.each(bad)('%j fails', (expression, message) => {
    expect(thrown(() => parseImageTriggers([expression], from)).message).toContain(message);
  });
});

describe('resolveBuildArgs', () => {
  it('merges files then flags, later values winning, bare keys from the environment', () => {
    const args = resolveBuildArgs({
      files: [
        { name: 'a.args', text: '# versions\nGO_VERSION=1.21\n\nNODE=20\r\nEMPTY=\n' },
        { name: 'b.args', text: 'GO_VERSION=1.22\nURL=https://x/?a=b\n' },
      ],
      args: ['NODE=22', 'HTTP_PROXY', 'MISSING', 'EQ=a=b'],
      env: { HTTP_PROXY: 'http://proxy:3128' },
    });
    expect(args).toEqual({
      GO_VERSION: '1.22',
      NODE: '22',
      EMPTY: '',
      URL: 'https://x/?a=b',
      HTTP_PROXY: 'http://proxy:3128',
      EQ: 'a=b',
    });
  });

  it('names the file and line of a bad entry', () => {
    const err = thrown(() => resolveBuildArgs({ files: [{ name: 'ci.args', text: 'A=1\n=oops\n' }] }));
    expect(err.message).toBe('ci.args:2: invalid build argument "=oops"');
    expect(thrown(() => resolveBuildArgs({ args: ['BAD KEY=1'] })).subject).toBe('--build-arg');
  });
});
