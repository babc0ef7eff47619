/**
 * `gantry delete IMAGE`: deletes a manifest from a registry. A tag is resolved to its digest first; like skopeo,
 * this removes the manifest, so every tag pointing at it goes too.
 */
import { GantryError } from '../../errors/index.js';
import { manifestReference } from '../../reference/index.js';
import { parseTransportReference } from '../../transports/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = { ...registryFlags(''), ...commonFlags } as const;

export const command: Command = {
  summary: 'delete an image manifest from a registry (all its tags go with it)',
  usage: 'delete [flags] docker://HOST/REPO[:TAG|@DIGEST]',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) throw new GantryError('INVALID_ARGUMENT', 'delete needs exactly one image');
    const ref = parseTransportReference(positionals[0] as string);
    if (ref.transport !== 'docker') {
      throw new GantryError('INVALID_ARGUMENT', 'delete works on registry images (docker://)', {
        subject: ref.text,
      });
    }
    const out = createOutput(f);
    const registry = registryClientFromFlags(f, '', out.logger);
    let digest = ref.image.digest;
    if (!digest) {
      const head = await registry.headManifest(ref.image, manifestReference(ref.image));
      if (!head) throw new GantryError('NOT_FOUND', 'no such image', { subject: ref.text });
      digest = head.digest;
    }
    await registry.deleteManifest(ref.image, digest);
    out.logger.info(`Deleted ${ref.image.registry}/${ref.image.repository}@${digest}`);
    return 0;
  },
};
