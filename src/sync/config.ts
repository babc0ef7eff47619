/**
 * sync/config: what `gantry sync` should mirror, from a registry reference or from a skopeo-compatible YAML file
 * (per registry: `images` with tag lists, `images-by-tag-regex`, `images-by-semver`, `tls-verify`, `cert-dir`,
 * `credentials`). Pure: parsing and tag selection only; listing tags is the caller's job.
 */
import semver from 'semver';
import { GantryError } from '../errors/index.js';
import { parseImageReference } from '../reference/index.js';

/** Which tags of a repository to mirror. */
export type TagSelector =
  | { kind: 'all' }
  | { kind: 'list'; tags: string[] }
  | { kind: 'regex'; pattern: RegExp }
  | { kind: 'semver'; range: string };

export interface SyncSourceRepo {
  registry: string;
  repository: string;
  selector: TagSelector;
  tlsVerify?: boolean;
  certDir?: string;
  credentials?: { username: string; password: string };
}

/** Selects tags from a full listing; explicit lists are kept even if absent, so a missing tag is an error later. */
export function selectTags(selector: TagSelector, available: readonly string[]): string[] {
  switch (selector.kind) {
    case 'all':
      return [...available];
    case 'list':
      return [...selector.tags];
    case 'regex':
      return available.filter((tag) => selector.pattern.test(tag));
    case 'semver':
      return available.filter((tag) => {
        // Like skopeo, tags that are not semantic versions (e.g. `latest`, `3.12`) never match a range.
        const version = semver.valid(tag, { loose: true });
        return version !== null && semver.satisfies(version, selector.range, { loose: true });
      });
  }
}

function fail(file: string, message: string): never {
  throw new GantryError('INVALID_ARGUMENT', message, { subject: file });
}

/**
 * Reads a skopeo sync document once parsed from YAML (see sync/yaml.ts). `file` is only used to name the input
 * in errors.
 */
export function parseSyncConfig(doc: unknown, file: string): SyncSourceRepo[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    fail(file, 'expected a map of registries');
  const repos: SyncSourceRepo[] = [];
  for (const [registry, raw] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) fail(file, `registry ${registry}: expected a map`);
    const entry = raw as Record<string, unknown>;
    const known = [
      'images',
      'images-by-tag-regex',
      'images-by-semver',
      'tls-verify',
      'cert-dir',
      'credentials',
    ];
    for (const key of Object.keys(entry)) {
      if (!known.includes(key))
        fail(file, `registry ${registry}: unknown key "${key}" (known: ${known.join(', ')})`);
    }
    const common: Omit<SyncSourceRepo, 'repository' | 'selector'> = { registry };
    const tlsVerify = entry['tls-verify'];
    if (tlsVerify !== undefined && typeof tlsVerify !== 'boolean')
      fail(file, `registry ${registry}: tls-verify must be true or false, not ${JSON.stringify(tlsVerify)}`);
    if (typeof tlsVerify === 'boolean') common.tlsVerify = tlsVerify;
    if (typeof entry['cert-dir'] === 'string') common.certDir = entry['cert-dir'];
    const creds = entry.credentials as { username?: unknown; password?: unknown } | undefined;
    if (creds) {
      if (typeof creds.username !== 'string' || typeof creds.password !== 'string') {
        fail(file, `registry ${registry}: credentials need username and password`);
      }
      common.credentials = { username: creds.username, password: creds.password };
    }
    const add = (key: string, repository: string, selector: TagSelector): void => {
      // Validates the repository name with the registry, so errors name the file and the exact entry.
      try {
        parseImageReference(`${registry}/${repository}`);
      } catch (cause) {
        throw new GantryError(
          'INVALID_ARGUMENT',
          `registry ${registry}: ${key}.${repository}: ${(cause as Error).message}`,
          { subject: file, cause },
        );
      }
      repos.push({ ...common, repository, selector });
    };
    for (const [repository, tags] of Object.entries((entry.images ?? {}) as Record<string, unknown>)) {
      if (tags === null || (Array.isArray(tags) && tags.length === 0))
        add('images', repository, { kind: 'all' });
      else if (Array.isArray(tags) && tags.every((t) => typeof t === 'string'))
        add('images', repository, { kind: 'list', tags });
      else fail(file, `images.${repository}: expected a list of tags`);
    }
    for (const [repository, pattern] of Object.entries(
      (entry['images-by-tag-regex'] ?? {}) as Record<string, unknown>,
    )) {
      if (typeof pattern !== 'string')
        fail(file, `images-by-tag-regex.${repository}: expected a regex string`);
      let compiled: RegExp;
      try {
        compiled = new RegExp(pattern);
      } catch (cause) {
        throw new GantryError(
          'INVALID_ARGUMENT',
          `images-by-tag-regex.${repository}: ${(cause as Error).message}`,
          {
            subject: file,
          },
        );
      }
      add('images-by-tag-regex', repository, { kind: 'regex', pattern: compiled });
    }
    for (const [repository, range] of Object.entries(
      (entry['images-by-semver'] ?? {}) as Record<string, unknown>,
    )) {
      if (typeof range !== 'string' || semver.validRange(range) === null) {
        fail(file, `images-by-semver.${repository}: ${JSON.stringify(range)} is not a semver range`);
      }
      add('images-by-semver', repository, { kind: 'semver', range });
    }
  }
  return repos;
}

/** Which shard an image belongs to: a stable hash, so every CI job of a matrix agrees without coordination. */
export function shardOf(key: string, shards: number): number {
  let hash = 2166136261;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % shards;
}

export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--shard must be i/n with 1 <= i <= n, got ${JSON.stringify(text)}`,
    );
  }
  return { index: index - 1, count };
}
