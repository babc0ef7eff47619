/** `gantry inspect IMAGE`: skopeo-compatible image description, or the raw manifest / config. */
import { GantryError } from '../../errors/index.js';
import { describeImage, readConfig, resolveImage } from '../../inspect/index.js';
import { parsePlatform } from '../../oci/index.js';
import { openSource, parseTransportReference } from '../../transports/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  raw: { type: 'boolean', description: 'print the manifest (or index) bytes exactly as stored' },
  config: { type: 'boolean', description: 'print the image config (with --raw: its exact bytes)' },
  'no-tags': { type: 'boolean', short: 'n', description: 'do not list the repository tags' },
  platform: {
    type: 'string',
    valueName: 'OS/ARCH[/VARIANT]',
    description: 'image to pick from an index (default: host)',
  },
  ...registryFlags(''),
  ...commonFlags,
} as const;

export const command: Command = {
  summary: 'describe an image (skopeo inspect fields), its raw manifest or its config',
  usage: 'inspect [flags] IMAGE',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1)
      throw new GantryError('INVALID_ARGUMENT', 'inspect needs exactly one IMAGE');
    const ref = parseTransportReference(positionals[0] as string);
    const out = createOutput({ quiet: f.quiet, json: true });
    const registry = registryClientFromFlags(f, '', out.logger);
    const source = await openSource(ref, { registry });
    try {
      if (f.raw && !f.config) {
        process.stdout.write((await source.getManifest()).bytes);
        return 0;
      }
      // The tag list is fetched while the manifest and config are: on a nearby registry the round trips are
      // most of an inspect's time. The manifest goes first, since the config request waits for it.
      const resolving = resolveImage(source, f.platform ? parsePlatform(f.platform) : undefined);
      const listing =
        ref.transport === 'docker' && !f['no-tags'] && !f.config ? registry.listTags(ref.image) : undefined;
      listing?.catch(() => undefined);
      const { top, manifest } = await resolving;
      const { bytes, config } = await readConfig(source, manifest);
      if (f.config) {
        process.stdout.write(f.raw ? bytes : `${JSON.stringify(config, null, 4)}\n`);
        return 0;
      }
      let name = ref.text;
      let tags: string[] = [];
      if (ref.transport === 'docker') {
        name = `${ref.image.registry}/${ref.image.repository}`;
        if (listing) tags = await listing;
      }
      const description = describeImage({ name, digest: top.digest, tags, manifest, config });
      process.stdout.write(`${JSON.stringify(description, null, 4)}\n`);
      return 0;
    } finally {
      await source.close();
    }
  },
};
