/** `gantry manifest-digest FILE`: the digest of a manifest file, as skopeo computes it (sha256 of the bytes). */
import { readFile } from 'node:fs/promises';
import { asGantryError, GantryError } from '../../errors/index.js';
import { parseManifest, sha256Digest } from '../../oci/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';

const flags = { help: { type: 'boolean', short: 'h', description: 'show help' } } as const;

export const command: Command = {
  summary: 'print the digest of a manifest file',
  usage: 'manifest-digest FILE',
  flags,
  async run(argv) {
    const { positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1)
      throw new GantryError('INVALID_ARGUMENT', 'manifest-digest needs exactly one FILE');
    const file = positionals[0] as string;
    const bytes = await readFile(file).catch((err: unknown) => {
      throw asGantryError(err, 'IO', 'cannot read manifest', file);
    });
    parseManifest(bytes, undefined, file);
    process.stdout.write(`${sha256Digest(bytes)}\n`);
    return 0;
  },
};
