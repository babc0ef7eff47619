// Table-driven tests for skopeo-style transport strings: which transport, which path, which image name inside.
import { describe, expect, it } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import { parseTransportReference, type TransportReference } from '../../src/transports/index.js';

describe('parseTransportReference: good inputs', () => {
  const cases: [string, TransportReference][] = [
    [
      'docker://busybox',
      {
        transport: 'docker',
        image: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
        text: 'docker://busybox',
      },
    ],
    [
      'docker://[::1]:5000/a/b:c',
      {
        transport: 'docker',
        image: { registry: '[::1]:5000', repository: 'a/b', tag: 'c' },
        text: 'docker://[::1]:5000/a/b:c',
      },
    ],
    // Without a transport prefix a string is a registry reference, even when it has a ':' (tag or port).
    [
      'busybox:latest',
      {
        transport: 'docker',
        image: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' },
        text: 'busybox:latest',
      },
    ],
    [
      '127.0.0.1:5000/a/b:c',
      {
        transport: 'docker',
        image: { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'c' },
        text: '127.0.0.1:5000/a/b:c',
      },
    ],
    [
      'localhost:5000/app',
      {
        transport: 'docker',
        image: { registry: 'localhost:5000', repository: 'app', tag: 'latest' },
        text: 'localhost:5000/app',
      },
    ],
    ['oci:/tmp/layout', { transport: 'oci', path: '/tmp/layout', text: 'oci:/tmp/layout' }],
    ['oci:rel/dir:v1', { transport: 'oci', path: 'rel/dir', ref: 'v1', text: 'oci:rel/dir:v1' }],
    [
      'oci-archive:/x/img.tar:latest',
      { transport: 'oci-archive', path: '/x/img.tar', ref: 'latest', text: 'oci-archive:/x/img.tar:latest' },
    ],
    ['oci-archive:img.tar', { transport: 'oci-archive', path: 'img.tar', text: 'oci-archive:img.tar' }],
    // The path ends at the first ':' so the name inside the archive may itself contain ':' (port and tag).
    [
      'docker-archive:/x.tar:example.com/app:v1',
      {
        transport: 'docker-archive',
        path: '/x.tar',
        ref: 'example.com/app:v1',
        text: 'docker-archive:/x.tar:example.com/app:v1',
      },
    ],
    [
      'docker-archive:/x.tar:localhost:5000/app:v1',
      {
        transport: 'docker-archive',
        path: '/x.tar',
        ref: 'localhost:5000/app:v1',
        text: 'docker-archive:/x.tar:localhost:5000/app:v1',
      },
    ],
    ['docker-archive:/x.tar', { transport: 'docker-archive', path: '/x.tar', text: 'docker-archive:/x.tar' }],
    ['dir:/tmp/d', { transport: 'dir', path: '/tmp/d', text: 'dir:/tmp/d' }],
    // dir: takes the whole rest as the path, colons included.
    ['dir:/tmp/a:b', { transport: 'dir', path: '/tmp/a:b', text: 'dir:/tmp/a:b' }],
  ];
  it.each(cases)('%s', (input, want) => {
    expect(parseTransportReference(input)).toEqual(want);
  });
});

describe('parseTransportReference: bad inputs', () => {
  const cases: [string, string][] = [
    ['dir:', 'dir: needs a directory path'],
    ['oci:', 'oci: needs a path'],
    ['oci::v1', 'oci: needs a path'],
    ['oci-archive:', 'oci-archive: needs a path'],
    ['docker-archive:', 'docker-archive: needs a path'],
    ['oci:/tmp/layout:', 'empty image name'],
    ['docker-daemon:busybox:latest', 'transport "docker-daemon"'],
    ['containers-storage:busybox', 'transport "containers-storage"'],
    ['sif:/x.sif', 'transport "sif"'],
    ['tarball:/x.tar', 'transport "tarball"'],
  ];
  it.each(cases)('%s is rejected (%s)', (input, why) => {
    let caught: unknown;
    try {
      parseTransportReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GantryError);
    const err = caught as GantryError;
    expect(err.code).toBe('INVALID_REFERENCE');
    expect(err.subject).toBe(input);
    expect(err.message).toContain(input);
    expect(err.message).toContain(why);
  });

  it.each([
    ['docker://Busybox', 'Busybox'],
    ['docker://busybox:-bad', 'busybox:-bad'],
    ['Upper/case', 'Upper/case'],
    ['busybox@sha256:short', 'busybox@sha256:short'],
  ])('%s is an invalid image reference naming %s', (input, subject) => {
    let caught: unknown;
    try {
      parseTransportReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GantryError);
    expect((caught as GantryError).code).toBe('INVALID_REFERENCE');
    expect((caught as GantryError).subject).toBe(subject);
    expect((caught as GantryError).message).toContain(subject);
  });

  it('mentions the supported transports when refusing a daemon transport', () => {
    expect(() => parseTransportReference('docker-daemon:busybox')).toThrow(/docker:\/\/, oci:, oci-archive:/);
  });
});
