/**
 * `gantry verify IMAGE (--key KEY | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE)`:
 * checks an image's signatures, key-based or keyless, in both cosign storage forms.
 */
import type { KeyObject } from 'node:crypto';
import { GantryError } from '../../errors/index.js';
import { parseAnnotations, parseSignReference } from '../../sign/args.js';
import { readPublicKeyFile } from '../../sign/key-files.js';
import type { KeylessPolicy } from '../../sign/keyless.js';
import { assertVerified, type StoredForm, verifyImage } from '../../sign/verify.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { keylessPolicyFromFlags, keylessVerifyFlags } from '../keyless-flags.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  key: { type: 'string', valueName: 'FILE', description: 'public key (cosign.pub)' },
  ...keylessVerifyFlags,
  annotations: {
    type: 'string',
    short: 'a',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'require this signed annotation (repeatable)',
  },
  identity: {
    type: 'string',
    valueName: 'HOST/REPO',
    description: "repository the signatures must name (default: the image's own, e.g. a mirror's source)",
  },
  format: {
    type: 'string',
    valueName: 'legacy|bundle|both',
    description: 'which stored forms to check (default both)',
  },
  output: { type: 'string', short: 'o', valueName: 'text|json', description: 'output format (default text)' },
  ...registryFlags(''),
  ...commonFlags,
} as const;

const FORMS: Record<string, StoredForm[]> = {
  legacy: ['legacy'],
  bundle: ['bundle'],
  both: ['legacy', 'bundle'],
};

export const command: Command = {
  summary: "verify an image's signatures with a key or keyless (cosign .sig and sigstore bundles)",
  usage:
    'verify [flags] (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE) IMAGE',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) throw new GantryError('INVALID_ARGUMENT', 'verify needs exactly one IMAGE');
    const forms = FORMS[f.format ?? 'both'];
    if (!forms) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--format must be legacy, bundle or both, got ${JSON.stringify(f.format)}`,
      );
    }
    const output = f.output ?? (f.json ? 'json' : 'text');
    if (output !== 'text' && output !== 'json') {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--output must be text or json, got ${JSON.stringify(output)}`,
      );
    }
    const reference = parseSignReference(positionals[0] as string);
    const keyless = await keylessPolicyFromFlags(f);
    if (f.key && keyless) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'give either --key or the keyless --certificate-* flags, not both',
      );
    }
    let trust: { publicKey: KeyObject } | { keyless: KeylessPolicy };
    if (f.key) trust = { publicKey: await readPublicKeyFile(f.key) };
    else if (keyless) trust = { keyless };
    else {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'verify needs --key FILE, or --certificate-identity, --certificate-oidc-issuer and --trusted-root',
      );
    }
    const out = createOutput({ quiet: f.quiet, json: output === 'json' });
    const client = registryClientFromFlags(f, '', out.logger);
    try {
      const result = await verifyImage({
        client,
        reference,
        ...trust,
        annotations: parseAnnotations(f.annotations),
        identity: f.identity,
        forms,
      });
      if (output === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      assertVerified(result);
      if (output === 'text') {
        for (const v of result.verified) {
          const by = v.signer ? ` signed by ${v.signer.identity} (${v.signer.issuer})` : '';
          process.stdout.write(`Verified ${result.reference}: ${v.form} signature ${v.source}${by}\n`);
        }
        for (const r of result.rejected) {
          out.logger.warn(`ignored ${r.form} signature ${r.source}: ${r.reason}: ${r.message}`);
        }
      }
      return 0;
    } finally {
      out.finish();
      await client.close();
    }
  },
};
