/**
 * `gantry manifest create TARGET SRC...` assembles a multi-platform index from per-platform images;
 * `manifest inspect IMAGE` prints a manifest or index; `manifest push SRC DST` copies an index with all its images.
 */
import { GantryError } from '../../errors/index.js';
import { createIndex } from '../../manifest/index.js';
import { parseManifest } from '../../oci/index.js';
import { openDestination, openSource, parseTransportReference } from '../../transports/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  format: {
    type: 'string',
    short: 'f',
    valueName: 'oci|v2s2',
    description: 'index format for create (default: oci, or v2s2 when every image is v2s2)',
  },
  annotation: {
    type: 'string',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'index annotation for create (repeatable)',
  },
  ...registryFlags(''),
  ...commonFlags,
} as const;

function parseAnnotations(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0)
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--annotation must be KEY=VALUE, got ${JSON.stringify(value)}`,
      );
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

export const command: Command = {
  summary: 'create a multi-platform index from per-platform images, inspect or push one',
  usage: 'manifest create [flags] TARGET SRC... | manifest inspect IMAGE | manifest push SRC DST',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    const [verb, ...args] = positionals;
    const out = createOutput(f);
    const registry = registryClientFromFlags(f, '', out.logger);
    if (verb === 'create') {
      if (args.length < 2)
        throw new GantryError('INVALID_ARGUMENT', 'manifest create needs TARGET and at least one SRC');
      const format = f.format;
      if (format !== undefined && format !== 'oci' && format !== 'v2s2') {
        throw new GantryError(
          'INVALID_ARGUMENT',
          `--format must be oci or v2s2, got ${JSON.stringify(format)}`,
        );
      }
      const target = parseTransportReference(args[0] as string);
      const sources = await Promise.all(
        args.slice(1).map((a) => openSource(parseTransportReference(a), { registry })),
      );
      try {
        const index = await createIndex({
          sources,
          openDestination: () => openDestination(target, { registry }),
          format,
          annotations: parseAnnotations(f.annotation),
          logger: out.logger,
        });
        process.stdout.write(`${index.digest}\n`);
      } finally {
        await Promise.all(sources.map((s) => s.close()));
      }
      return 0;
    }
    if (verb === 'inspect') {
      if (args.length !== 1)
        throw new GantryError('INVALID_ARGUMENT', 'manifest inspect needs exactly one IMAGE');
      const source = await openSource(parseTransportReference(args[0] as string), { registry });
      try {
        const raw = await source.getManifest();
        const { manifest } = parseManifest(raw.bytes, raw.mediaType, source.name);
        process.stdout.write(`${JSON.stringify(manifest, null, 4)}\n`);
      } finally {
        await source.close();
      }
      return 0;
    }
    if (verb === 'push') {
      if (args.length !== 2) throw new GantryError('INVALID_ARGUMENT', 'manifest push needs SRC and DST');
      const { command: copy } = await import('./copy.js');
      return copy.run(['--all', ...argv.filter((a) => a !== 'push')]);
    }
    throw new GantryError(
      'INVALID_ARGUMENT',
      `manifest needs create, inspect or push, got ${JSON.stringify(verb ?? '')}`,
    );
  },
};
