/** `gantry copy SRC DST`: copies an image between any two transports (see src/copy). */
import { writeFile } from 'node:fs/promises';
import { copyImage, type ManifestFormat } from '../../copy/index.js';
import { GantryError } from '../../errors/index.js';
import { parsePlatform } from '../../oci/index.js';
import { openDestination, openSource, parseTransportReference } from '../../transports/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput, formatBytes } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, parseCount, registryFlags } from '../registry-flags.js';

const flags = {
  all: { type: 'boolean', short: 'a', description: 'copy every image of a multi-platform index' },
  platform: {
    type: 'string',
    valueName: 'OS/ARCH[/VARIANT]',
    description: 'copy only this platform of an index',
  },
  format: {
    type: 'string',
    short: 'f',
    valueName: 'oci|v2s2',
    description: 'convert manifests (digests change)',
  },
  'remove-signatures': {
    type: 'boolean',
    description: 'do not copy signatures, attestations, SBOMs, referrers',
  },
  digestfile: {
    type: 'string',
    valueName: 'FILE',
    description: 'write the digest of the copied manifest here',
  },
  jobs: {
    type: 'string',
    short: 'j',
    valueName: 'N',
    description: 'parallel transfers of blobs over 1 MiB (default 6)',
  },
  'sign-by': {
    type: 'string',
    valueName: 'KEY',
    description: 'sign the copied image with this cosign key (.sig and bundle; registry destinations)',
  },
  'sign-passphrase-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'password of the --sign-by key (default: COSIGN_PASSWORD, else a prompt)',
  },
  ...registryFlags('src-'),
  ...registryFlags('dest-'),
  ...commonFlags,
} as const;

export const command: Command = {
  summary: 'copy an image between registries, OCI layouts, archives and directories',
  usage:
    'copy [flags] SRC DST   (SRC/DST: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], dir:DIR)',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 2) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `copy needs exactly SRC and DST, got ${positionals.length} argument(s)`,
      );
    }
    const format = f.format;
    if (format !== undefined && format !== 'oci' && format !== 'v2s2') {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--format must be oci or v2s2, got ${JSON.stringify(format)}`,
      );
    }
    if (f.all && f.platform)
      throw new GantryError('INVALID_ARGUMENT', '--all and --platform exclude each other');
    const srcRef = parseTransportReference(positionals[0] as string);
    const destRef = parseTransportReference(positionals[1] as string);
    if (f['sign-by'] && destRef.transport !== 'docker') {
      throw new GantryError('INVALID_ARGUMENT', '--sign-by needs a registry (docker://) destination');
    }
    // The key is loaded before copying, so a wrong password fails fast instead of after the transfer; the
    // signing modules (sigstore, tweetnacl) load only then, keeping plain copies' start-up lean.
    const signing = f['sign-by'] ? await import('../../sign/index.js') : undefined;
    const signer =
      signing && f['sign-by']
        ? await signing.loadKeySigner(f['sign-by'], { passphraseFile: f['sign-passphrase-file'] })
        : undefined;
    const out = createOutput({ quiet: f.quiet, json: f.json });
    const source = await openSource(srcRef, { registry: registryClientFromFlags(f, 'src-', out.logger) });
    try {
      const destClient = registryClientFromFlags(f, 'dest-', out.logger);
      const destination = await openDestination(destRef, { registry: destClient });
      const started = Date.now();
      const result = await copyImage(source, destination, {
        all: f.all,
        platform: f.platform ? parsePlatform(f.platform) : undefined,
        format: format as ManifestFormat | undefined,
        removeSignatures: f['remove-signatures'],
        concurrency: parseCount(f, 'jobs', 6, 64) || 1,
        logger: out.logger,
        progress: out.progress,
      });
      if (signing && signer && destRef.transport === 'docker') {
        await signing.signImage({
          client: destClient,
          reference: { ...destRef.image, digest: result.digest },
          signer,
          logger: out.logger,
        });
      }
      out.finish();
      if (f.digestfile) await writeFile(f.digestfile, result.digest);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        out.logger.info(
          `Copied ${srcRef.text} to ${destRef.text} (${result.digest}): ${result.blobs.copied} blob(s) copied ` +
            `(${formatBytes(result.bytesCopied)}), ${result.blobs.skipped} already present, ` +
            `${result.attachments} signature(s)/attachment(s), in ${seconds}s`,
        );
      }
      return 0;
    } finally {
      out.finish();
      await source.close();
    }
  },
};
