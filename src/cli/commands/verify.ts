/**
 * `gantry verify IMAGE (--key KEY | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE)`:
 * checks an image's signatures, key-based or keyless, in both cosign storage forms.
 */
import { GantryError } from '../../errors/index.js';
import { parseAnnotations, parseSignReference } from '../../sign/args.js';
import { assertVerified, verifyImage } from '../../sign/verify.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';
import { parseVerifyOutput, verifyFlags, verifyOutputFlags, verifyTrustFromFlags } from '../verify-flags.js';

const flags = {
  ...verifyFlags,
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
  ...verifyOutputFlags,
  ...registryFlags(''),
  ...commonFlags,
} as const;

export const command: Command = {
  summary: "verify an image's signatures with a key or keyless (cosign .sig and sigstore bundles)",
  usage:
    'verify [flags] (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE) IMAGE',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) throw new GantryError('INVALID_ARGUMENT', 'verify needs exactly one IMAGE');
    const { forms, output } = parseVerifyOutput(f);
    const reference = parseSignReference(positionals[0] as string);
    const trust = await verifyTrustFromFlags(f, 'verify');
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
