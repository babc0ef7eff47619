/** `gantry generate-key-pair`: writes cosign.key (cosign's encrypted format) and cosign.pub, as cosign does. */
import { GantryError } from '../../errors/index.js';
import { writeNewKeyPair } from '../../sign/key-files.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';

const flags = {
  'output-key-prefix': {
    type: 'string',
    valueName: 'PREFIX',
    description: 'write PREFIX.key and PREFIX.pub (default cosign)',
  },
  'passphrase-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'read the password from FILE (default: COSIGN_PASSWORD, else a prompt)',
  },
  help: { type: 'boolean', short: 'h', description: 'show help' },
} as const;

export const command: Command = {
  summary: 'generate a cosign-compatible key pair (cosign.key, cosign.pub)',
  usage: 'generate-key-pair [--output-key-prefix PREFIX]',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length > 0) {
      throw new GantryError('INVALID_ARGUMENT', 'generate-key-pair takes no arguments');
    }
    const files = await writeNewKeyPair({
      prefix: f['output-key-prefix'] ?? 'cosign',
      password: { passphraseFile: f['passphrase-file'] },
    });
    process.stderr.write(
      `Private key written to ${files.privateKeyPath}\nPublic key written to ${files.publicKeyPath}\n`,
    );
    return 0;
  },
};
