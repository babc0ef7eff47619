// Metadata instructions applied to an image config with BuildKit's semantics, and the build CLI's flag parsers.
import { describe, expect, it } from 'vitest';
import { applyInstruction, commandArgs, emptyConfig, type ImageConfig } from '../../src/build/config.js';
import { parseOutput, parsePairs, parseSecret, parseTimestamp } from '../../src/build/flags.js';
import { type Instruction, parseDockerfile } from '../../src/dockerfile/index.js';
import { isGantryError } from '../../src/errors/index.js';
import { thrown } from '../support/thrown.js';

function configFor(lines: string, start: ImageConfig = emptyConfig({ os: 'linux', architecture: 'amd64' })) {
  const ir = parseDockerfile(`FROM scratch\n${lines}\n`, { file: 'Dockerfile' });
  let image = start;
  let state = { cmdSet: false };
  for (const instruction of (ir.stages[0]?.instructions ?? []) as Instruction[]) {
    ({ image, state } = applyInstruction(image, instruction, state));
  }
  return image.config;
}

describe('applyInstruction', () => {
  it('replaces ENV keys in place and merges LABELs', () => {
    const c = configFor('ENV A=1 B=2\nENV A=3\nLABEL x=1\nLABEL y=2 x=3');
    expect(c.Env).toEqual([
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'A=3',
      'B=2',
    ]);
    expect(c.Labels).toEqual({ x: '3', y: '2' });
  });

  it('resolves WORKDIR against the previous one and normalises EXPOSE ports', () => {
    const c = configFor('WORKDIR /a\nWORKDIR b/../c\nEXPOSE 80 53/UDP');
    expect(c.WorkingDir).toBe('/a/c');
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
  });

  it('runs shell-form CMD/ENTRYPOINT through SHELL; ENTRYPOINT clears only an inherited CMD', () => {
    const c = configFor('SHELL ["/bin/bash", "-c"]\nENTRYPOINT run me');
    expect(c.Entrypoint).toEqual(['/bin/bash', '-c', 'run me']);
    const inherited = emptyConfig({ os: 'linux', architecture: 'amd64' });
    inherited.config.Cmd = ['old'];
    expect(configFor('ENTRYPOINT ["/e"]', inherited).Cmd).toBeNull();
    expect(configFor('CMD ["new"]\nENTRYPOINT ["/e"]', inherited).Cmd).toEqual(['new']);
  });

  it('sets USER, VOLUME, STOPSIGNAL, HEALTHCHECK and ONBUILD', () => {
    const c = configFor(
      'USER app:staff\nVOLUME /v /w\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --retries=2 CMD true\nONBUILD RUN echo hi',
    );
    expect(c.User).toBe('app:staff');
    expect(c.Volumes).toEqual({ '/v': {}, '/w': {} });
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000, Retries: 2 });
    expect(c.OnBuild).toEqual(['RUN echo hi']);
  });

  it('builds exec and shell argv', () => {
    expect(commandArgs({ form: 'exec', args: ['a', 'b'], files: [] }, undefined)).toEqual(['a', 'b']);
    expect(commandArgs({ form: 'shell', args: ['echo hi'], files: [] }, undefined)).toEqual([
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
  });
});

describe('build flags', () => {
  it('turns --output values into transport references', () => {
    expect(parseOutput('type=registry,name=localhost:5000/a:b')).toBe('docker://localhost:5000/a:b');
    expect(parseOutput('type=oci,dest=/tmp/x')).toBe('oci:/tmp/x');
    expect(parseOutput('type=oci-archive,dest=/tmp/x.tar,name=v1')).toBe('oci-archive:/tmp/x.tar:v1');
    expect(parseOutput('type=docker-archive,dest=/tmp/d.tar')).toBe('docker-archive:/tmp/d.tar');
    expect(
      isGantryError(
        thrown(() => parseOutput('type=local,dest=/x')),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
    expect(
      isGantryError(
        thrown(() => parseOutput('type=registry')),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });

  it('parses secrets, pairs and timestamps', () => {
    expect(parseSecret('id=tok,src=/run/tok')).toEqual(['tok', { file: '/run/tok' }]);
    expect(parseSecret('id=tok,env=TOKEN')).toEqual(['tok', { env: 'TOKEN' }]);
    expect(parseSecret('id=TOKEN')).toEqual(['TOKEN', { env: 'TOKEN' }]);
    expect(parsePairs(['a=1', 'b=x=y', 'a=2'], '--label')).toEqual({ a: '2', b: 'x=y' });
    expect(parseTimestamp('12', {})).toBe(12);
    expect(parseTimestamp(undefined, { SOURCE_DATE_EPOCH: '34' })).toBe(34);
    expect(parseTimestamp(undefined, {})).toBeUndefined();
    expect(
      isGantryError(
        thrown(() => parseTimestamp('yesterday', {})),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });
});
