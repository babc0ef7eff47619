/**
 * sync/state: what a registry-to-registry sync remembers between runs (`gantry sync --state FILE`): for each
 * destination tag, the manifest digest it was last synced to. A re-run still asks the source for every tag's
 * digest, but a tag whose digest equals the record and that the destination still lists (one tag list per
 * repository) is up to date without a request of its own to the destination: half the requests of a mirror
 * that did not change. The price is trust: a tag someone else re-pushed in the destination is not noticed
 * until the source changes or the state file is dropped. The file is JSON, written whole and atomically; a
 * run forgets a tag on disk before it overwrites that tag, and merges only the entries it changed into the
 * file as it stands when saving, so neither a run killed mid-copy nor shards sharing one file leave a record
 * of a digest the destination no longer holds.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { GantryError } from '../errors/index.js';

const VERSION = 1;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Destination tag (`host/repository:tag`) -> manifest digest it was synced to. */
export type SyncState = Map<string, string>;

/** Reads a state file; a missing file is an empty state (the first run), anything unreadable an error. */
export async function readSyncState(file: string): Promise<SyncState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new GantryError('IO', 'cannot read the sync state file', { subject: file, cause: err });
  }
  return parseSyncState(text, file);
}

export function parseSyncState(text: string, file: string): SyncState {
  const fail = (why: string): never => {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `not a gantry sync state file (${why}); delete it to start over`,
      {
        subject: file,
      },
    );
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('invalid JSON');
  }
  const record = parsed as { version?: unknown; tags?: unknown };
  if (typeof record !== 'object' || record === null || record.version !== VERSION)
    fail(`version is not ${VERSION}`);
  if (typeof record.tags !== 'object' || record.tags === null || Array.isArray(record.tags))
    fail('no tags object');
  const state: SyncState = new Map();
  for (const [name, digest] of Object.entries(record.tags as Record<string, unknown>)) {
    if (typeof digest !== 'string' || !DIGEST.test(digest)) fail(`${name} has no valid digest`);
    state.set(name, digest as string);
  }
  return state;
}

export function serializeSyncState(state: SyncState): string {
  const tags = Object.fromEntries([...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ version: VERSION, tags }, null, 2)}\n`;
}

/** Writes the state through a temporary file and a rename, so a reader never sees half a file. */
export async function writeSyncState(file: string, state: SyncState): Promise<void> {
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, serializeSyncState(state), { mode: 0o644 });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw new GantryError('IO', 'cannot write the sync state file', { subject: file, cause: err });
  }
}

/** The state file of one sync run: read once, changed as images are checked and copied, saved by merging. */
export class SyncStateFile {
  /** Entries this run set (digest) or removed (undefined); only these are merged into the file. */
  private readonly changes = new Map<string, string | undefined>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly recordedAtStart: SyncState,
  ) {}

  static async open(file: string): Promise<SyncStateFile> {
    return new SyncStateFile(file, await readSyncState(file));
  }

  /** The digest recorded for a destination tag when this run started. */
  recorded(name: string): string | undefined {
    return this.recordedAtStart.get(name);
  }

  set(name: string, digest: string): void {
    this.changes.set(name, digest);
  }

  /** Drops a tag's record at the next save (it failed, or was deleted). */
  drop(name: string): void {
    this.changes.set(name, undefined);
  }

  /** Drops a tag's record on disk now, before its destination changes. */
  async forget(name: string): Promise<void> {
    this.drop(name);
    if (this.recordedAtStart.has(name)) await this.save();
  }

  /** Merges this run's changes into the file as it is now; saves run one at a time. */
  save(): Promise<void> {
    const next = this.writing.then(async () => {
      const merged = await readSyncState(this.file);
      for (const [name, digest] of this.changes) {
        if (digest === undefined) merged.delete(name);
        else merged.set(name, digest);
      }
      await writeSyncState(this.file, merged);
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}
