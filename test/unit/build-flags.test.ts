// build/flags: `--build-context` values in buildx's forms, context names matched as BuildKit normalises them,
// and `--platform` lists; bad values fail naming the flag value.
import { describe, expect, it } from 'vitest';
import { contextKey, parseBuildContext, parsePlatforms } from '../../src/build/flags.js';
import { thrown } from '../support/thrown.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseBuildContext', () => {
  it('reads directories, docker-image:// and oci-layout:// with tag, digest or both', () => {
    expect(parseBuildContext('src=../lib', '/work/app')).toEqual([
      contextKey('src'),
      { kind: 'dir', dir: '/work/lib', spec: 'src=../lib' },
    ]);
    expect(parseBuildContext('alpine=docker-image://alpine:3.20', '/')).toEqual([
      'docker.io/library/alpine:latest',
      { kind: 'image', ref: 'alpine:3.20', spec: 'alpine=docker-image://alpine:3.20' },
    ]);
    const layout = (value: string) => parseBuildContext(`base=oci-layout://${value}`, '/cwd')[1];
    expect(layout('/l')).toMatchObject({ kind: 'oci-layout', dir: '/l', tag: 'latest' });
    expect(layout('/l:v1')).toMatchObject({ dir: '/l', tag: 'v1' });
    expect(layout('rel@v2')).toMatchObject({ dir: '/cwd/rel', tag: 'v2' });
    expect(layout(`/l@${DIGEST}`)).toEqual({
      kind: 'oci-layout',
      dir: '/l',
      digest: DIGEST,
      spec: `base=oci-layout:///l@${DIGEST}`,
    });
    expect(layout(`/l:v1@${DIGEST}`)).toMatchObject({ tag: 'v1', digest: DIGEST });
  });

  it('matches names the way BuildKit normalises them', () => {
    expect(contextKey('alpine')).toBe(contextKey('docker.io/library/alpine:latest'));
    expect(contextKey('alpine:3.20')).not.toBe(contextKey('alpine'));
    expect(contextKey('Build_Stage')).toBe('build_stage');
  });

  it('fails naming the value', () => {
    for (const [value, message] of [
      ['noequals', '--build-context needs NAME=VALUE'],
      ['x=', '--build-context needs NAME=VALUE'],
      ['scratch=/d', '"scratch" is a reserved name'],
      ['x=https://example.com/ctx.tar', 'not Git or URLs'],
      ['x=git@github.com:o/r.git', 'not Git or URLs'],
      ['x=docker-image://UPPER/case', 'invalid image reference'],
      ['x=oci-layout://', 'needs DIR[:TAG][@DIGEST]'],
      ['x=oci-layout:///l@sha256:12', 'bad digest'],
    ] as const) {
      const err = thrown(() => parseBuildContext(value, '/'));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.subject).toBe(value);
      expect(err.message).toContain(message);
    }
  });
});

describe('parsePlatforms', () => {
  it('takes repeated and comma-separated values, in order', () => {
    expect(parsePlatforms(['linux/amd64,linux/arm64/v8', 'linux/arm/v7'])).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    expect(parsePlatforms([])).toEqual([]);
  });

  it('fails naming --platform', () => {
    expect(thrown(() => parsePlatforms(['linux'])).subject).toBe('--platform');
    expect(thrown(() => parsePlatforms(['linux/amd64', 'linux/amd64'])).message).toContain('given twice');
  });
});
