// Step cache keys and miss explanations: every input changes the key, order-insensitive maps do not, secret
// values are never inputs, and explainMiss names what changed against the closest cached step.
import { describe, expect, it } from 'vitest';
import { explainMiss, type StepInputs, stepKey } from '../../src/cache/key.js';

const base: StepInputs = {
  parent: `sha256:${'a'.repeat(64)}`,
  instruction: '["/bin/sh","-c","make"]',
  env: ['A=1', 'B=2'],
  files: { '/app/a': 'file:644:aa', '/app/b': 'file:644:bb' },
  options: { compression: 'gzip', mounts: '[{"type":"secret","id":"token"}]' },
};

describe('stepKey', () => {
  it('is a sha256 digest, stable under reordering of env, files and options', () => {
    const key = stepKey(base);
    expect(key).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(
      stepKey({
        ...base,
        env: ['B=2', 'A=1'],
        files: { '/app/b': 'file:644:bb', '/app/a': 'file:644:aa' },
        options: { mounts: base.options?.mounts as string, compression: 'gzip' },
      }),
    ).toBe(key);
  });

  it.each([
    ['the parent', { parent: `sha256:${'b'.repeat(64)}` }],
    ['the instruction', { instruction: '["/bin/sh","-c","make all"]' }],
    ['a variable', { env: ['A=1', 'B=3'] }],
    ['a file', { files: { '/app/a': 'file:644:aa', '/app/b': 'file:755:bb' } }],
    ['an option', { options: { compression: 'zstd' } }],
  ])('changes with %s', (_what, change) => {
    expect(stepKey({ ...base, ...change })).not.toBe(stepKey(base));
  });
});

describe('explainMiss', () => {
  it('says the parent is new when nothing followed it', () => {
    expect(explainMiss(base, [])).toMatch(/no cached step follows the parent/);
  });

  it('names a changed instruction, variables, files and options', () => {
    expect(explainMiss(base, [{ ...base, instruction: 'other' }])).toBe(
      'instruction changed (cached: other)',
    );
    expect(explainMiss(base, [{ ...base, env: ['A=0', 'B=2'] }])).toBe('variables changed: A');
    expect(explainMiss(base, [{ ...base, files: { '/app/a': 'file:644:xx' } }])).toBe(
      'files changed: /app/a, /app/b',
    );
    expect(
      explainMiss(base, [
        { ...base, options: { compression: 'zstd', mounts: base.options?.mounts as string } },
      ]),
    ).toBe('options changed: compression');
  });

  it('compares against the closest cached step and shortens long lists', () => {
    const files = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`/f${i}`, `file:644:${i}`]));
    const current = { ...base, files };
    const far = { ...base, files: {} };
    const near = { ...base, files: { ...files, '/f3': 'file:644:changed' } };
    expect(explainMiss(current, [far, near])).toBe('files changed: /f3');
    expect(explainMiss(current, [far])).toBe('files changed: /f0, /f1, /f2, /f3, /f4 (+3 more)');
  });
});
