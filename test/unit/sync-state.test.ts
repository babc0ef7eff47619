/** sync/state: the --state file's format, checked before a sync trusts it. */
import { describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { parseSyncState, serializeSyncState } from '../../src/sync/state.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('sync state file', () => {
  it('round-trips, with tags in a stable order', () => {
    const state = new Map([
      ['r.example/b:2', DIGEST],
      ['r.example/a:1', DIGEST],
    ]);
    const text = serializeSyncState(state);
    expect(Object.keys(JSON.parse(text).tags)).toEqual(['r.example/a:1', 'r.example/b:2']);
    expect(parseSyncState(text, 'state.json')).toEqual(state);
  });

  it.each([
    ['not JSON', '{'],
    ['another version', JSON.stringify({ version: 2, tags: {} })],
    ['no tags object', JSON.stringify({ version: 1, tags: [] })],
    ['a digest that is not one', JSON.stringify({ version: 1, tags: { 'r/a:1': 'latest' } })],
  ])('rejects %s, naming the file', (_why, text) => {
    let caught: unknown;
    try {
      parseSyncState(text, '/ci/cache/state.json');
    } catch (err) {
      caught = err;
    }
    expect(isGantryError(caught, 'INVALID_ARGUMENT')).toBe(true);
    expect((caught as Error).message).toContain('/ci/cache/state.json');
  });
});
