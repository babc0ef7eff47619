/**
 * cli/build-progress: how `gantry build --progress auto|plain|json` shows steps on stderr. `plain`: one line
 * per finished step (`[stage] Dockerfile:3 CACHED COPY ...`). `json`: one JSON object per line per event
 * (`step-start`, `step-done`, `error`, and `log` for messages). `auto`: live on a terminal (finished steps scroll above a footer of
 * running steps with their elapsed time, redrawn ten times a second, in cli/output's style), plain otherwise
 * (not a TTY, or CI=true). A RUN's own output goes straight to the terminal, so the footer is cleared while one
 * runs.
 */
import type { StepReport, StepStart } from '../build/index.js';
import { isGantryError } from '../errors/index.js';
import type { Logger } from '../util/log.js';

export type ProgressMode = 'auto' | 'plain' | 'json';

/** What `auto` becomes: live on a terminal unless in CI (as cli/output decides), plain otherwise. */
export function resolveProgressMode(
  mode: ProgressMode,
  o: { isTTY: boolean; ci: boolean; quiet: boolean },
): 'live' | 'plain' | 'json' {
  if (mode !== 'auto') return mode;
  return o.isTTY && !o.ci && !o.quiet ? 'live' : 'plain';
}

export interface BuildProgress {
  stepStarted(step: StepStart): void;
  stepDone(report: StepReport): void;
  failed(err: unknown): void;
  /** Stops live drawing; call before printing results. */
  finish(): void;
}

export interface BuildProgressOptions {
  /** After resolveProgressMode. */
  mode: 'live' | 'plain' | 'json';
  /** Append why each step hit or missed. */
  explain: boolean;
  /** Only `--explain-cache` lines (plain) are printed; json is never quiet. */
  quiet: boolean;
  /** Prefixed to stage names when several platforms build (`linux/arm64 build`). */
  platform?: string;
  stream?: { write(text: string): unknown };
  now?: () => number;
}

/** `[stage] Dockerfile:3 CACHED COPY a /a (hit: cached)` */
export function stepLine(r: StepReport, explain: boolean, platform?: string): string {
  const mark = r.cache === 'hit' ? 'CACHED ' : '';
  const why = explain && r.cache !== 'none' ? ` (${r.cache}: ${r.reason})` : '';
  return `[${platform ? `${platform} ` : ''}${r.stage}] ${r.location} ${mark}${r.instruction}${why}`;
}

/** One line of `--progress json`. */
export function jsonEvent(event: string, fields: Record<string, unknown>, time: number): string {
  return JSON.stringify({ time: new Date(time).toISOString(), event, ...fields });
}

/** A logger for `--progress json`: messages become `log` events, so stderr stays one JSON object per line. */
export function jsonLogger(
  stream: NodeJS.WritableStream = process.stderr,
  now: () => number = Date.now,
): Logger {
  const write = (level: string, message: string) =>
    stream.write(`${jsonEvent('log', { level, message }, now())}\n`);
  return {
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    debug: (m) => {
      if (process.env.GANTRY_DEBUG) write('debug', m);
    },
  };
}

const stepId = (s: { stage: string; location: string }) => `${s.stage}\u0000${s.location}`;

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function createBuildProgress(o: BuildProgressOptions): BuildProgress {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? Date.now;
  const started = new Map<string, { step: StepStart; at: number }>();
  const took = (r: StepReport) => {
    const s = started.get(stepId(r));
    started.delete(stepId(r));
    return s ? now() - s.at : 0;
  };
  const platformField = o.platform ? { platform: o.platform } : {};
  if (o.mode === 'json') {
    return {
      stepStarted(step) {
        started.set(stepId(step), { step, at: now() });
        stream.write(`${jsonEvent('step-start', { ...platformField, ...step }, now())}\n`);
      },
      stepDone(r) {
        const durationMs = took(r);
        stream.write(`${jsonEvent('step-done', { ...platformField, ...r, durationMs }, now())}\n`);
      },
      failed(err) {
        const fields = isGantryError(err)
          ? { code: err.code, subject: err.subject, message: err.message }
          : { message: err instanceof Error ? err.message : String(err) };
        stream.write(`${jsonEvent('error', { ...platformField, ...fields }, now())}\n`);
      },
      finish() {},
    };
  }
  const print = (r: StepReport) => {
    if (!o.quiet || o.explain) stream.write(`${stepLine(r, o.explain, o.platform)}\n`);
  };
  if (o.mode === 'plain') {
    return {
      stepStarted() {},
      stepDone: print,
      failed() {},
      finish() {},
    };
  }
  let drawn = 0;
  let runs = 0;
  const clear = () => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    clear();
    if (runs > 0) return;
    const lines = [...started.values()].map(
      ({ step, at }) =>
        `=> [${o.platform ? `${o.platform} ` : ''}${step.stage}] ${step.location} ${step.text} ${formatSeconds(now() - at)}`,
    );
    if (lines.length) stream.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  return {
    stepStarted(step) {
      started.set(stepId(step), { step, at: now() });
      if (step.kind === 'RUN') {
        // The command's output is about to go straight to the terminal: say what runs, then stop redrawing.
        clear();
        stream.write(
          `=> [${o.platform ? `${o.platform} ` : ''}${step.stage}] ${step.location} ${step.text}\n`,
        );
        runs++;
      }
      draw();
    },
    stepDone(r) {
      const step = started.get(stepId(r))?.step;
      const ms = took(r);
      if (step?.kind === 'RUN') runs--;
      clear();
      stream.write(`${stepLine(r, o.explain, o.platform)} ${formatSeconds(ms)}\n`);
      draw();
    },
    failed() {
      clear();
    },
    finish() {
      clearInterval(timer);
      clear();
    },
  };
}
