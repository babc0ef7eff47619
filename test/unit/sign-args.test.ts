/** Unit tests for sign/args: image references as cosign takes them and `-a key=value` annotations. */
import { describe, expect, it } from 'vitest';
import { parseAnnotations, parseSignReference } from '../../src/sign/args.js';
import { thrown } from '../support/thrown.js';

describe('parseSignReference', () => {
  it('takes plain and docker:// references, by tag or digest', () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    expect(parseSignReference('docker://127.0.0.1:5000/team/app:v1')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: 'v1',
    });
    expect(parseSignReference(`registry.example/app@${digest}`)).toEqual({
      registry: 'registry.example',
      repository: 'app',
      digest,
    });
  });

  it('rejects what is not an image reference', () => {
    expect(thrown(() => parseSignReference('oci:/tmp/layout')).code).toBe('INVALID_REFERENCE');
  });
});

describe('parseAnnotations', () => {
  it('splits at the first = and keeps the last of a repeated key', () => {
    expect(parseAnnotations(['a=1', 'b=x=y', 'a=2', 'empty='])).toEqual({ a: '2', b: 'x=y', empty: '' });
    expect(parseAnnotations(undefined)).toEqual({});
  });

  it('rejects entries without a key', () => {
    const err = thrown(() => parseAnnotations(['=v']));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('annotation must be KEY=VALUE, got "=v"');
  });
});
