// `gantry build --progress` through the CLI: json gives one JSON object per stderr line (a start and a finish
// per step, the failing step's error), plain gives the `[stage] file:line` lines, and a
// bad value fails naming the flag.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { trackTempDir } from '../harness/procs.js';
import { gantry, gantryOk } from '../support/cli.js';

let base: string;

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(base, `${name}-`));
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gantry-build-progress-'));
  trackTempDir(base);
});

async function context(dockerfile: string): Promise<string> {
  const dir = await fresh('context');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'a.txt'), 'a\n');
  return dir;
}

describe('gantry build --progress', () => {
  it('writes JSON lines per step event with json, and step lines with plain', async () => {
    const dir = await context('FROM scratch\nCOPY a.txt /a.txt\nENV A=1\n');
    const store = await fresh('store');
    const out = join(await fresh('out'), 'layout');
    const json = await gantryOk(['build', '--progress', 'json', '-o', `type=oci,dest=${out}`, dir], {
      env: { GANTRY_STORE: store },
    });
    const events = json.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = events.filter((e) => e.event.startsWith('step-'));
    // Locations name the Dockerfile as given (here an absolute path).
    expect(steps.map((e) => `${e.event} ${e.location.replace(/^.*\//, '')}`)).toEqual([
      'step-start Dockerfile:2',
      'step-done Dockerfile:2',
      'step-start Dockerfile:3',
      'step-done Dockerfile:3',
    ]);
    expect(steps[1]).toMatchObject({
      stage: 'stage-0',
      cache: 'miss',
      instruction: 'COPY a.txt /a.txt # buildkit',
    });
    expect(typeof steps[1].durationMs).toBe('number');
    expect(steps[3]).toMatchObject({ cache: 'none', instruction: 'ENV A=1' });

    const plain = await gantryOk(['build', '--progress', 'plain', '-o', `type=oci,dest=${out}`, dir], {
      env: { GANTRY_STORE: store },
    });
    expect(plain.stderr).toContain(
      `[stage-0] ${join(dir, 'Dockerfile')}:2 CACHED COPY a.txt /a.txt # buildkit\n`,
    );
  });

  it('reports the failing step as a JSON error event', async () => {
    const dir = await context('FROM scratch\nCOPY missing.txt /m\n');
    const result = await gantry(['build', '--progress', 'json', dir], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    const error = lines
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return undefined;
        }
      })
      .find((e) => e?.event === 'error');
    expect(error).toMatchObject({ code: 'NOT_FOUND', subject: `${join(dir, 'Dockerfile')}:2` });
  });

  it('fails naming --progress for an unknown mode', async () => {
    const dir = await context('FROM scratch\n');
    const result = await gantry(['build', '--progress', 'tty', dir], {
      env: { GANTRY_STORE: await fresh('store') },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('progress');
    expect(result.stderr).toContain('tty');
  });
});
