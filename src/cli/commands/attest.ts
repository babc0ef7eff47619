/**
 * `gantry attest IMAGE --predicate FILE --type T (--key FILE | keyless)`: an in-toto statement about the image's
 * digest, signed as DSSE, stored as cosign's `.att` manifest and as a sigstore bundle referrer. Without `--key`
 * it signs keyless (Fulcio certificate from an OIDC token, Rekor entry), as cosign does.
 */
import { readFile } from 'node:fs/promises';
import { type AttestationFormat, attestImage } from '../../attest/create.js';
import { predicateTypeFor } from '../../attest/statement.js';
import { asGantryError, GantryError } from '../../errors/index.js';
import { parseSignReference } from '../../sign/args.js';
import { readPrivateKeyFile } from '../../sign/key-files.js';
import { KeySigner } from '../../sign/keys.js';
import { dockerReference, resolveSignedImage } from '../../sign/sign.js';
import { legacyTag, RegistrySignatureStore } from '../../sign/store.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { keylessSignFlags, keylessSigning } from '../keyless-flags.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  predicate: { type: 'string', valueName: 'FILE', description: 'the predicate (JSON; `-` reads stdin)' },
  type: {
    type: 'string',
    valueName: 'TYPE',
    description:
      'slsaprovenance|slsaprovenance1|spdxjson|cyclonedx|link|vuln|openvex|custom or a URI (default custom)',
  },
  key: {
    type: 'string',
    valueName: 'FILE',
    description: 'private key (cosign.key or PEM); without it, keyless',
  },
  'passphrase-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'password of the key (default: COSIGN_PASSWORD, else a prompt)',
  },
  format: {
    type: 'string',
    valueName: 'legacy|bundle|both',
    description: 'where to store the attestation: .att tag, bundle referrer, or both (default)',
  },
  ...keylessSignFlags,
  ...registryFlags(''),
  ...commonFlags,
} as const;

const FORMATS: readonly string[] = ['legacy', 'bundle', 'both'];

export const command: Command = {
  summary: 'attach a signed in-toto attestation to an image (cosign .att and sigstore bundle)',
  usage: 'attest [flags] --predicate FILE --type TYPE [--key FILE] IMAGE',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1) throw new GantryError('INVALID_ARGUMENT', 'attest needs exactly one IMAGE');
    if (!f.predicate) throw new GantryError('INVALID_ARGUMENT', 'attest needs --predicate FILE');
    const format = f.format ?? 'both';
    if (!FORMATS.includes(format)) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--format must be legacy, bundle or both, got ${JSON.stringify(format)}`,
      );
    }
    const predicateType = predicateTypeFor(f.type ?? 'custom');
    const reference = parseSignReference(positionals[0] as string);
    const predicateSource = f.predicate === '-' ? 'stdin' : f.predicate;
    const predicate = await (f.predicate === '-' ? readStdin() : readFile(f.predicate)).catch(
      (err: unknown) => {
        throw asGantryError(err, 'IO', 'cannot read the predicate', predicateSource);
      },
    );
    const signing = f.key
      ? {
          signer: new KeySigner(await readPrivateKeyFile(f.key, { passphraseFile: f['passphrase-file'] })),
          witnesses: [],
        }
      : await keylessSigning(f);
    const out = createOutput({ quiet: f.quiet, json: f.json });
    const client = registryClientFromFlags(f, '', out.logger);
    try {
      const image = await resolveSignedImage(client, reference);
      const result = await attestImage({
        store: new RegistrySignatureStore(client),
        image,
        subjectName: dockerReference(reference),
        predicateType,
        predicate,
        predicateSource,
        ...signing,
        format: format as AttestationFormat,
        logger: out.logger,
      });
      const summary = {
        reference: `${dockerReference(reference)}@${result.digest}`,
        digest: result.digest,
        predicateType: result.predicateType,
        ...(result.legacyManifest && {
          legacy: { tag: legacyTag(result.digest, 'att'), manifestDigest: result.legacyManifest },
        }),
        ...(result.referrer && { bundle: result.referrer }),
      };
      if (f.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return 0;
    } finally {
      out.finish();
      await client.close();
    }
  },
};

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
