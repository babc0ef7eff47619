/** `gantry cache prune [--all] [--max-size BYTES]`: trims the local build cache (see src/cache). */
import { defaultCacheBound, LocalCache } from '../../cache/index.js';
import { GantryError } from '../../errors/index.js';
import { defaultStoreRoot } from '../../store/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { formatBytes } from '../output.js';
import { commonFlags } from '../registry-flags.js';

const flags = {
  all: { type: 'boolean', description: 'remove every cached step and layer' },
  'max-size': {
    type: 'string',
    valueName: 'BYTES',
    description: 'keep the most recently used steps up to this size',
  },
  quiet: commonFlags.quiet,
  help: commonFlags.help,
} as const;

export const command: Command = {
  summary: 'manage the local build cache (prune)',
  usage: 'cache prune [--all] [--max-size BYTES]',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals[0] !== 'prune' || positionals.length !== 1) {
      throw new GantryError('INVALID_ARGUMENT', 'usage: gantry cache prune [--all] [--max-size BYTES]');
    }
    const max = f['max-size'] === undefined ? defaultCacheBound() : Number(f['max-size']);
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new GantryError('INVALID_ARGUMENT', `--max-size must be a number of bytes, got ${f['max-size']}`);
    }
    const cache = await LocalCache.open(defaultStoreRoot());
    const result = await cache.prune(f.all ? { all: true, graceMs: 0 } : { maxBytes: max });
    if (!f.quiet) {
      process.stdout.write(
        `removed ${result.records} steps and ${result.blobs} blobs (${formatBytes(result.bytes)})\n`,
      );
    }
    return 0;
  },
};
