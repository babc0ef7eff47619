/**
 * `gantry verify-attestation IMAGE (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL
 * --trusted-root FILE) [--type T]`: checks an image's attestations in both cosign storage forms.
 */

import { predicateTypeFor } from '../../attest/statement.js';
import {
  type AttestationForm,
  type AttestationTrust,
  assertAttestationsVerified,
  verifyAttestations,
} from '../../attest/verify.js';
import { GantryError } from '../../errors/index.js';
import { parseSignReference } from '../../sign/args.js';
import { readPublicKeyFile } from '../../sign/key-files.js';
import { dockerReference, resolveSignedImage } from '../../sign/sign.js';
import { RegistrySignatureStore } from '../../sign/store.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { keylessPolicyFromFlags, keylessVerifyFlags } from '../keyless-flags.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  key: { type: 'string', valueName: 'FILE', description: 'public key (cosign.pub)' },
  type: {
    type: 'string',
    valueName: 'TYPE',
    description: 'required predicate type: slsaprovenance|spdxjson|cyclonedx|... or a URI (default any)',
  },
  ...keylessVerifyFlags,
  format: {
    type: 'string',
    valueName: 'legacy|bundle|both',
    description: 'which stored forms to check (default both)',
  },
  output: { type: 'string', short: 'o', valueName: 'text|json', description: 'output format (default text)' },
  ...registryFlags(''),
  ...commonFlags,
} as const;

const FORMS: Record<string, AttestationForm[]> = {
  legacy: ['legacy'],
  bundle: ['bundle'],
  both: ['legacy', 'bundle'],
};

export const command: Command = {
  summary: "verify an image's attestations (cosign .att and sigstore bundles)",
  usage:
    'verify-attestation [flags] (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL --trusted-root FILE) IMAGE',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) {
      throw new GantryError('INVALID_ARGUMENT', 'verify-attestation needs exactly one IMAGE');
    }
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
    const policy = await keylessPolicyFromFlags(f);
    if (f.key && policy) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'give either --key or the keyless --certificate-* flags, not both',
      );
    }
    let trust: AttestationTrust;
    if (f.key) trust = { kind: 'key', publicKey: await readPublicKeyFile(f.key) };
    else if (policy) trust = { kind: 'keyless', policy };
    else {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'verify-attestation needs --key FILE, or --certificate-identity, --certificate-oidc-issuer and --trusted-root',
      );
    }
    const predicateType = f.type === undefined ? undefined : predicateTypeFor(f.type);
    const reference = parseSignReference(positionals[0] as string);
    const out = createOutput({ quiet: f.quiet, json: output === 'json' });
    const client = registryClientFromFlags(f, '', out.logger);
    try {
      const image = await resolveSignedImage(client, reference);
      const result = await verifyAttestations({
        store: new RegistrySignatureStore(client),
        image,
        trust,
        predicateType,
        forms,
      });
      const name = `${dockerReference(reference)}@${result.digest}`;
      if (output === 'json')
        process.stdout.write(`${JSON.stringify({ reference: name, ...result }, null, 2)}\n`);
      assertAttestationsVerified(result, name);
      if (output === 'text') {
        for (const v of result.verified) {
          const by = v.signer ? ` signed by ${v.signer.identity} (${v.signer.issuer})` : '';
          process.stdout.write(
            `Verified ${name}: ${v.form} attestation ${v.source}, ${v.predicateType}${by}\n`,
          );
        }
        for (const r of result.rejected) {
          out.logger.warn(`ignored ${r.form} attestation ${r.source}: ${r.reason}: ${r.message}`);
        }
      }
      return 0;
    } finally {
      out.finish();
      await client.close();
    }
  },
};
