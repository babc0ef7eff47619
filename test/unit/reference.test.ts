// Table-driven tests for image reference parsing, formatting and the loopback check that allows plain HTTP.
import { describe, expect, it } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import {
  formatImageReference,
  type ImageReference,
  isLoopbackRegistry,
  manifestReference,
  parseImageReference,
} from '../../src/reference/index.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference: good inputs', () => {
  const cases: [string, ImageReference][] = [
    ['busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['index.docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker.io/library/busybox:x', { registry: 'docker.io', repository: 'library/busybox', tag: 'x' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
    ['ghcr.io/o/r/deep/path:v1', { registry: 'ghcr.io', repository: 'o/r/deep/path', tag: 'v1' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/app:dev', { registry: 'localhost:5000', repository: 'app', tag: 'dev' }],
    ['127.0.0.1:5000/a/b:c', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'c' }],
    ['[::1]:5000/a/b:c', { registry: '[::1]:5000', repository: 'a/b', tag: 'c' }],
    ['[::1]:5000/a/b', { registry: '[::1]:5000', repository: 'a/b', tag: 'latest' }],
    ['[::1]/a', { registry: '[::1]', repository: 'a', tag: 'latest' }],
    [`example.com/app@${D}`, { registry: 'example.com', repository: 'app', digest: D }],
    [`example.com/app:v1@${D}`, { registry: 'example.com', repository: 'app', tag: 'v1', digest: D }],
    [
      'example.com/a_b/c__d/e-f/g--h/i.j:T_a.g-1',
      { registry: 'example.com', repository: 'a_b/c__d/e-f/g--h/i.j', tag: 'T_a.g-1' },
    ],
    // A host-looking word without '.' or ':' is a Docker Hub namespace, not a registry.
    ['myhost/app', { registry: 'docker.io', repository: 'myhost/app', tag: 'latest' }],
  ];
  it.each(cases)('%s', (input, want) => {
    expect(parseImageReference(input)).toEqual(want);
  });
});

describe('parseImageReference: bad inputs', () => {
  const cases: [string, string][] = [
    ['', 'empty'],
    ['a'.repeat(4097), 'too long'],
    ['Busybox', 'component "Busybox"'],
    ['example.com/App/x', 'component "App"'],
    ['example.com/a//b', 'component ""'],
    ['example.com/', 'empty'],
    ['example.com/a/', 'component ""'],
    ['a/-b', 'component "-b"'],
    ['a/b_', 'component "b_"'],
    ['a/b___c', 'component "b___c"'],
    ['busybox:', 'bad tag ""'],
    ['busybox:-x', 'bad tag "-x"'],
    ['busybox:.x', 'bad tag ".x"'],
    [`busybox:${'t'.repeat(129)}`, 'bad tag'],
    ['busybox:a+b', 'bad tag "a+b"'],
    ['busybox@sha256:abc', 'bad digest "sha256:abc"'],
    [`busybox@sha256:${'A'.repeat(64)}`, 'bad digest'],
    [`busybox@md5:${'a'.repeat(32)}`, 'bad digest'],
    ['busybox@', 'bad digest ""'],
    [`busybox@${D}@${D}`, 'bad digest'],
    ['localhost:abc/app', 'bad registry host "localhost:abc"'],
    ['ex_ample.com/app', 'bad registry host "ex_ample.com"'],
    ['-example.com/app', 'bad registry host "-example.com"'],
    ['[zz]:5000/app', 'bad registry host "[zz]:5000"'],
  ];
  it.each(cases)('%s is rejected (%s)', (input, why) => {
    let caught: unknown;
    try {
      parseImageReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GantryError);
    const err = caught as GantryError;
    expect(err.code).toBe('INVALID_REFERENCE');
    expect(err.subject).toBe(input);
    expect(err.message).toContain(why);
    if (input !== '') expect(err.message.startsWith(`${input}: `)).toBe(true);
  });
});

describe('formatImageReference', () => {
  const cases: [ImageReference, string][] = [
    [
      { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
      'docker.io/library/busybox:latest',
    ],
    [{ registry: '[::1]:5000', repository: 'a/b', digest: D }, `[::1]:5000/a/b@${D}`],
    [{ registry: 'r.io', repository: 'a', tag: 't', digest: D }, `r.io/a:t@${D}`],
    [{ registry: 'r.io', repository: 'a' }, 'r.io/a'],
  ];
  it.each(cases)('%j → %s', (ref, want) => {
    expect(formatImageReference(ref)).toBe(want);
  });

  it.each(['busybox', 'localhost:5000/app:dev', '[::1]:5000/a/b:c', `example.com/app:v1@${D}`])(
    'round-trips %s through parse and format',
    (input) => {
      const once = parseImageReference(input);
      expect(parseImageReference(formatImageReference(once))).toEqual(once);
    },
  );
});

describe('manifestReference', () => {
  it('prefers the digest over the tag', () => {
    expect(manifestReference(parseImageReference(`a.io/b:t@${D}`))).toBe(D);
    expect(manifestReference(parseImageReference('a.io/b:t'))).toBe('t');
    expect(manifestReference({ registry: 'a.io', repository: 'b' })).toBe('latest');
  });
});

describe('isLoopbackRegistry', () => {
  const cases: [string, boolean][] = [
    ['localhost', true],
    ['localhost:5000', true],
    ['127.0.0.1', true],
    ['127.0.0.1:5000', true],
    ['127.1.2.3:80', true],
    ['[::1]', true],
    ['[::1]:5000', true],
    ['docker.io', false],
    ['10.0.0.1:5000', false],
    ['localhost.example.com', false],
    ['mylocalhost:5000', false],
    // A DNS name that merely starts with "127." resolves anywhere: it must not get plain HTTP.
    ['127.example.com', false],
    ['127.0.0.1.nip.io:5000', false],
    ['[::2]:5000', false],
  ];
  it.each(cases)('%s → %s', (registry, want) => {
    expect(isLoopbackRegistry(registry)).toBe(want);
  });
});
