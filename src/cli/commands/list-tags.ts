/** `gantry list-tags REPO`: every tag of a registry repository (Link-paginated), in skopeo's JSON shape. */
import { GantryError } from '../../errors/index.js';
import { parseTransportReference } from '../../transports/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = { ...registryFlags(''), ...commonFlags } as const;

export const command: Command = {
  summary: 'list the tags of a registry repository',
  usage: 'list-tags [flags] docker://HOST/REPO',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1)
      throw new GantryError('INVALID_ARGUMENT', 'list-tags needs exactly one repository');
    const ref = parseTransportReference(positionals[0] as string);
    if (ref.transport !== 'docker') {
      throw new GantryError('INVALID_ARGUMENT', 'list-tags works on registry repositories (docker://)', {
        subject: ref.text,
      });
    }
    const registry = registryClientFromFlags(f, '', createOutput(f).logger);
    const tags = await registry.listTags(ref.image);
    const repository = `${ref.image.registry}/${ref.image.repository}`;
    process.stdout.write(`${JSON.stringify({ Repository: repository, Tags: tags }, null, 4)}\n`);
    return 0;
  },
};
