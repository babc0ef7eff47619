// cli/build-progress: what `--progress` shows for step events — plain lines, JSON lines with durations and
// errors, the live footer of running steps (cleared while a RUN streams its output) — and how `auto` resolves.
import { describe, expect, it } from 'vitest';
import {
  createBuildProgress,
  jsonLogger,
  resolveProgressMode,
  stepLine,
} from '../../src/cli/build-progress.js';
import { GantryError } from '../../src/errors/index.js';

function sink() {
  const chunks: string[] = [];
  return { chunks, stream: { write: (t: string) => chunks.push(t) } };
}

const start = { stage: 'build', location: 'Dockerfile:3', kind: 'COPY', text: 'COPY a /a' };
const done = {
  stage: 'build',
  location: 'Dockerfile:3',
  instruction: 'COPY a /a # buildkit',
  cache: 'miss' as const,
  reason: 'files changed: /a',
  key: 'sha256:00',
};

describe('resolveProgressMode', () => {
  it('makes auto live only on a terminal outside CI and without --quiet', () => {
    expect(resolveProgressMode('auto', { isTTY: true, ci: false, quiet: false })).toBe('live');
    expect(resolveProgressMode('auto', { isTTY: false, ci: false, quiet: false })).toBe('plain');
    expect(resolveProgressMode('auto', { isTTY: true, ci: true, quiet: false })).toBe('plain');
    expect(resolveProgressMode('auto', { isTTY: true, ci: false, quiet: true })).toBe('plain');
    expect(resolveProgressMode('json', { isTTY: true, ci: false, quiet: false })).toBe('json');
  });
});

describe('createBuildProgress', () => {
  it('prints one plain line per finished step, with the reason under --explain-cache', () => {
    const { chunks, stream } = sink();
    const p = createBuildProgress({ mode: 'plain', explain: true, quiet: false, stream });
    p.stepStarted(start);
    p.stepDone(done);
    p.stepDone({ ...done, cache: 'hit', reason: 'cached' });
    expect(chunks).toEqual([
      '[build] Dockerfile:3 COPY a /a # buildkit (miss: files changed: /a)\n',
      '[build] Dockerfile:3 CACHED COPY a /a # buildkit (hit: cached)\n',
    ]);
    expect(stepLine(done, false, 'linux/arm64')).toBe(
      '[linux/arm64 build] Dockerfile:3 COPY a /a # buildkit',
    );
  });

  it('writes JSON lines for starts, finishes (with durations) and errors', () => {
    const { chunks, stream } = sink();
    let t = 1_000;
    const p = createBuildProgress({
      mode: 'json',
      explain: false,
      quiet: true,
      platform: 'linux/arm64',
      stream,
      now: () => t,
    });
    p.stepStarted(start);
    t += 250;
    p.stepDone(done);
    p.failed(new GantryError('INVALID_ARGUMENT', 'RUN failed', { subject: 'Dockerfile:4' }));
    const events = chunks.map((c) => JSON.parse(c));
    expect(chunks.every((c) => c.endsWith('\n') && !c.slice(0, -1).includes('\n'))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['step-start', 'step-done', 'error']);
    expect(events[0]).toMatchObject({
      ...start,
      platform: 'linux/arm64',
      time: new Date(1000).toISOString(),
    });
    expect(events[1]).toMatchObject({ cache: 'miss', reason: 'files changed: /a', durationMs: 250 });
    expect(events[2]).toMatchObject({ code: 'INVALID_ARGUMENT', subject: 'Dockerfile:4' });
  });

  it('draws running steps live and stops redrawing while a RUN streams its output', async () => {
    const { chunks, stream } = sink();
    const p = createBuildProgress({ mode: 'live', explain: false, quiet: false, stream });
    p.stepStarted(start);
    expect(chunks.join('')).toContain('=> [build] Dockerfile:3 COPY a /a 0.0s');
    p.stepDone(done);
    expect(chunks.join('')).toContain('[build] Dockerfile:3 COPY a /a # buildkit 0.0s\n');
    chunks.length = 0;
    p.stepStarted({ ...start, location: 'Dockerfile:4', kind: 'RUN', text: 'RUN make' });
    await new Promise((r) => setTimeout(r, 250));
    // Only the one line saying what runs: no footer redraws over the command's output.
    expect(chunks).toEqual(['=> [build] Dockerfile:4 RUN make\n']);
    p.finish();
  });

  it('turns log messages into JSON events in json mode', () => {
    const { chunks, stream } = sink();
    jsonLogger(stream, () => 0).info('Pulled base');
    expect(JSON.parse(chunks[0] as string)).toEqual({
      time: new Date(0).toISOString(),
      event: 'log',
      level: 'info',
      message: 'Pulled base',
    });
  });
});
