/**
 * `gantry sign IMAGE [--key KEY]`: signs an image by digest in cosign's legacy `.sig` form and as a bundle
 * referrer. Without `--key` it signs keyless (a Fulcio certificate for an OIDC token, Rekor entries), as cosign does.
 */
import { GantryError } from '../../errors/index.js';
import { parseAnnotations, parseSignReference } from '../../sign/args.js';
import { loadKeySigner } from '../../sign/key-files.js';
import { type SignatureFormat, signImage } from '../../sign/sign.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { keylessSignFlags, keylessSigning } from '../keyless-flags.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  key: {
    type: 'string',
    valueName: 'FILE',
    description: 'private key (cosign.key, or a PEM EC P-256 key); without it, keyless',
  },
  'passphrase-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'password of the key (default: COSIGN_PASSWORD, else a prompt)',
  },
  annotations: {
    type: 'string',
    short: 'a',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'extra signed claim (repeatable)',
  },
  format: {
    type: 'string',
    valueName: 'legacy|bundle|both',
    description: 'where to store the signature: .sig tag, bundle referrer, or both (default)',
  },
  ...keylessSignFlags,
  ...registryFlags(''),
  ...commonFlags,
} as const;

const FORMATS: readonly string[] = ['legacy', 'bundle', 'both'];

export const command: Command = {
  summary: 'sign an image with a key or keyless (cosign .sig and sigstore bundle)',
  usage: 'sign [flags] [--key FILE] IMAGE   (IMAGE: host/repo:tag, host/repo@sha256:..., docker://...)',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) throw new GantryError('INVALID_ARGUMENT', 'sign needs exactly one IMAGE');
    const keylessFlag = Object.keys(keylessSignFlags).find((name) => f[name as keyof typeof f] !== undefined);
    if (f.key && keylessFlag) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--${keylessFlag} is for keyless signing; it cannot go with --key`,
      );
    }
    if (!f.key && f['passphrase-file']) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        '--passphrase-file is for --key; keyless signing has no key file',
      );
    }
    const format = f.format ?? 'both';
    if (!FORMATS.includes(format)) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--format must be legacy, bundle or both, got ${JSON.stringify(format)}`,
      );
    }
    const reference = parseSignReference(positionals[0] as string);
    const annotations = parseAnnotations(f.annotations);
    // The key, or the OIDC token, is checked before anything touches the registry.
    const signing = f.key
      ? { signer: await loadKeySigner(f.key, { passphraseFile: f['passphrase-file'] }), witnesses: [] }
      : await keylessSigning(f);
    const out = createOutput({ quiet: f.quiet, json: f.json });
    const client = registryClientFromFlags(f, '', out.logger);
    try {
      const result = await signImage({
        client,
        reference,
        ...signing,
        annotations,
        format: format as SignatureFormat,
        logger: out.logger,
      });
      if (f.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    } finally {
      out.finish();
      await client.close();
    }
  },
};
