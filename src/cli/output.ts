/**
 * cli/output: how the CLI talks to people. Messages and progress go to stderr (stdout is for results, so
 * `gantry inspect | jq` works). On a TTY blobs get live progress bars; in CI (`CI=true`) or when stderr is not a
 * TTY, one plain line per finished blob; `--quiet` prints only errors.
 */
import type { CopyProgress } from '../copy/index.js';
import type { Descriptor } from '../oci/index.js';
import type { Logger } from '../util/log.js';

export interface Output {
  logger: Logger;
  progress: CopyProgress | undefined;
  /** Stops live rendering; call before printing results. */
  finish(): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function shortDigest(d: Descriptor): string {
  return d.digest.slice(0, 19);
}

export function createOutput(options: { quiet?: boolean; json?: boolean }): Output {
  const stderr = process.stderr;
  const logger: Logger = {
    info: (m) => {
      if (!options.quiet) stderr.write(`${m}\n`);
    },
    warn: (m) => stderr.write(`warning: ${m}\n`),
    debug: (m) => {
      if (process.env.GANTRY_DEBUG) stderr.write(`debug: ${m}\n`);
    },
  };
  if (options.quiet || options.json) return { logger, progress: undefined, finish() {} };
  const live = stderr.isTTY === true && !process.env.CI;
  return live ? liveOutput(logger) : { logger, progress: lineProgress(logger), finish() {} };
}

function lineProgress(logger: Logger): CopyProgress {
  return {
    blobFinished(d, outcome) {
      logger.info(
        `${outcome === 'copied' ? 'Copied' : 'Skipped (present)'} blob ${shortDigest(d)} ${formatBytes(d.size)}`,
      );
    },
    manifestWritten(digest, role) {
      logger.info(`Wrote ${role} manifest ${digest}`);
    },
  };
}

/** Redraws one bar per active blob at most ten times a second. */
function liveOutput(logger: Logger): Output {
  const stderr = process.stderr;
  const active = new Map<string, { d: Descriptor; done: number }>();
  let drawn = 0;
  const draw = (): void => {
    if (drawn > 0) stderr.write(`\x1b[${drawn}A\x1b[J`);
    const width = 30;
    const lines = [...active.values()].map(({ d, done }) => {
      const ratio = d.size > 0 ? Math.min(1, done / d.size) : 1;
      const filled = Math.round(ratio * width);
      return `${shortDigest(d)} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${formatBytes(done)} / ${formatBytes(d.size)}`;
    });
    if (lines.length) stderr.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  const above = (message: string): void => {
    if (drawn > 0) stderr.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
    logger.info(message);
    draw();
  };
  return {
    logger,
    progress: {
      blobStarted(d) {
        active.set(d.digest, { d, done: 0 });
      },
      blobBytes(d, transferred) {
        const entry = active.get(d.digest);
        if (entry) entry.done = transferred;
      },
      blobFinished(d, outcome) {
        active.delete(d.digest);
        above(
          `${outcome === 'copied' ? 'Copied' : 'Skipped (present)'} blob ${shortDigest(d)} ${formatBytes(d.size)}`,
        );
      },
      manifestWritten(digest, role) {
        above(`Wrote ${role} manifest ${digest}`);
      },
    },
    finish() {
      clearInterval(timer);
      if (drawn > 0) stderr.write(`\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    },
  };
}
