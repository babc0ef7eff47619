// `gantry build --cache-to/--cache-from` against a real docker-registry (distribution 2.8, no OCI 1.1
// referrers): a build pushes its image and its cache; a fresh, empty store imports the cache and rebuilds with
// every filesystem step a cache hit and the same image digest; a missing cache ref is not an error.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackTempDir } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { gantryOk } from '../support/cli.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'build');

describe('gantry build registry cache', () => {
  let registry: TestRegistry;
  let base: string;

  beforeAll(async () => {
    registry = await startRegistry();
    base = await mkdtemp(join(tmpdir(), 'gantry-build-cache-'));
    trackTempDir(base);
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it('gives an empty store full cache hits and the same digest, and pushes the image', async () => {
    const cacheRef = `${registry.host}/cache/app:buildcache`;
    const imageRef = `${registry.host}/app/image:v1`;
    const digestFile = (n: number) => join(base, `digest-${n}`);
    const build = (n: number, extra: string[]) =>
      gantryOk(
        [
          'build',
          '--explain-cache',
          '--timestamp',
          '0',
          '--digestfile',
          digestFile(n),
          '-o',
          `type=registry,name=${imageRef}`,
          ...extra,
          join(FIXTURES, 'multistage'),
        ],
        { env: { GANTRY_STORE: join(base, `store-${n}`) } },
      );
    const first = await build(1, ['--cache-from', cacheRef, '--cache-to', cacheRef]);
    const firstSteps = first.stderr.split('\n').filter((l) => l.includes(' COPY '));
    expect(firstSteps.length).toBe(6);
    expect(firstSteps.every((l) => l.includes('(miss'))).toBe(true);
    const second = await build(2, ['--cache-from', cacheRef]);
    const secondSteps = second.stderr.split('\n').filter((l) => l.includes(' COPY '));
    expect(secondSteps.length).toBe(6);
    expect(secondSteps.every((l) => l.includes('CACHED'))).toBe(true);
    expect(await readFile(digestFile(2), 'utf8')).toBe(await readFile(digestFile(1), 'utf8'));
  });
});
