/**
 * `gantry verify-attestation IMAGE (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL
 * --trusted-root FILE) [--type T]`: checks an image's attestations in both cosign storage forms.
 */

import { predicateTypeFor } from '../../attest/statement.js';
import {
  type AttestationTrust,
  assertAttestationsVerified,
  verifyAttestations,
} from '../../attest/verify.js';
import { GantryError } from '../../errors/index.js';
import { parseSignReference } from '../../sign/args.js';
import { dockerReference, resolveSignedImage } from '../../sign/sign.js';
import { RegistrySignatureStore } from '../../sign/store.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';
import { parseVerifyOutput, verifyFlags, verifyOutputFlags, verifyTrustFromFlags } from '../verify-flags.js';

const flags = {
  ...verifyFlags,
  type: {
    type: 'string',
    valueName: 'TYPE',
    description: 'required predicate type: slsaprovenance|spdxjson|cyclonedx|... or a URI (default any)',
  },
  ...verifyOutputFlags,
  ...registryFlags(''),
  ...commonFlags,
} as const;

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
    const { forms, output } = parseVerifyOutput(f);
    const given = await verifyTrustFromFlags(f, 'verify-attestation');
    const trust: AttestationTrust =
      'publicKey' in given
        ? { kind: 'key', publicKey: given.publicKey }
        : { kind: 'keyless', policy: given.keyless };
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
