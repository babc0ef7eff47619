/** sync/state: the --state file's format, checked before a sync trusts it. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isGantryError } from '../../src/errors/index.js';
import { parseSyncState, readSyncState, SyncStateFile, serializeSyncState } from '../../src/sync/state.js';

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

describe('sync state file shared by two runs', () => {
  it('merges each run’s own changes into the file as it stands, and forgets a tag on disk at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-state-'));
    const file = join(dir, 'state.json');
    const other = `sha256:${'b'.repeat(64)}`;
    await writeFile(file, serializeSyncState(new Map([['r/app:old', DIGEST]])));
    const first = await SyncStateFile.open(file);
    const second = await SyncStateFile.open(file);
    first.set('r/app:1', DIGEST);
    second.set('r/app:2', other);
    await first.save();
    await second.save();
    expect(await readSyncState(file)).toEqual(
      new Map([
        ['r/app:old', DIGEST],
        ['r/app:1', DIGEST],
        ['r/app:2', other],
      ]),
    );
    // A run about to overwrite r/app:old drops its record before copying, not when it finishes.
    const third = await SyncStateFile.open(file);
    await third.forget('r/app:old');
    expect((await readSyncState(file)).has('r/app:old')).toBe(false);
  });
});
