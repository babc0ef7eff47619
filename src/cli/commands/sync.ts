/**
 * `gantry sync SRC DST`: mirrors many images (see src/sync). SRC is `docker://HOST/REPO[:TAG]`, a YAML file
 * (`--src yaml`) or a bundle directory (`--src bundle`); DST is `docker://HOST[/PREFIX]` or a bundle directory
 * (`--dest bundle`).
 */
import { readFile } from 'node:fs/promises';
import { asGantryError, GantryError } from '../../errors/index.js';
import { parsePlatform } from '../../oci/index.js';
import { parseImageReference } from '../../reference/index.js';
import { createCredentialResolver } from '../../registry/credentials.js';
import { RegistryClient } from '../../registry/index.js';
import { parseShard, type SyncSource, type SyncSourceRepo, sync } from '../../sync/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, parseCount, registryFlags } from '../registry-flags.js';

const flags = {
  src: {
    type: 'string',
    short: 's',
    valueName: 'docker|yaml|bundle',
    description: 'kind of SRC (default docker)',
  },
  dest: {
    type: 'string',
    short: 'd',
    valueName: 'docker|bundle',
    description: 'kind of DST (default docker)',
  },
  all: { type: 'boolean', short: 'a', description: 'mirror every platform of multi-platform images' },
  platform: {
    type: 'string',
    valueName: 'OS/ARCH[/VARIANT]',
    description: 'platform to mirror (default: host)',
  },
  scoped: { type: 'boolean', description: 'keep the source registry host in destination names' },
  'remove-signatures': {
    type: 'boolean',
    description: 'do not copy signatures, attestations, SBOMs, referrers',
  },
  'delete-extraneous': { type: 'boolean', description: 'delete destination tags the source no longer has' },
  'keep-going': { type: 'boolean', description: 'continue after an image fails; exit non-zero at the end' },
  'dry-run': { type: 'boolean', description: 'show what would be copied or deleted, change nothing' },
  state: {
    type: 'string',
    valueName: 'FILE',
    description:
      'remember synced digests in FILE; re-runs skip asking the destination about unchanged tags (trusts that only this sync writes them)',
  },
  shard: { type: 'string', valueName: 'I/N', description: 'handle only shard I of N (for CI matrices)' },
  jobs: {
    type: 'string',
    short: 'j',
    valueName: 'N',
    description: 'parallel transfers of blobs over 1 MiB per image (default 6)',
  },
  'image-jobs': { type: 'string', valueName: 'N', description: 'images copied at once (default 3)' },
  ...registryFlags('src-'),
  ...registryFlags('dest-'),
  ...commonFlags,
} as const;

export const command: Command = {
  summary: 'mirror repositories, YAML image lists or air-gap bundles; re-runs move only what changed',
  usage: 'sync [flags] SRC DST',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 2) throw new GantryError('INVALID_ARGUMENT', 'sync needs exactly SRC and DST');
    const [srcText, destText] = positionals as [string, string];
    const out = createOutput({ quiet: f.quiet, json: f.json });
    const srcKind = f.src ?? 'docker';
    const destKind = f.dest ?? 'docker';

    let source: SyncSource;
    if (srcKind === 'bundle') {
      source = { kind: 'bundle', dir: srcText };
    } else if (srcKind === 'yaml' || srcKind === 'docker') {
      const repos = srcKind === 'yaml' ? await readYaml(srcText) : [repoFromReference(srcText)];
      const defaultClient = registryClientFromFlags(f, 'src-', out.logger);
      const clients = new Map<SyncSourceRepo, RegistryClient>();
      source = {
        kind: 'registry',
        repos,
        clientFor(repo) {
          if (!repo.credentials && repo.tlsVerify === undefined && !repo.certDir) return defaultClient;
          let client = clients.get(repo);
          if (!client) {
            const { credentials } = repo;
            client = new RegistryClient({
              credentials: credentials
                ? async () => ({ kind: 'basic', ...credentials })
                : createCredentialResolver({
                    creds: f['src-creds'],
                    authFile: f['src-authfile'] ?? f.authfile,
                  }),
              tlsVerify: repo.tlsVerify ?? f['src-tls-verify'] !== false,
              insecureRegistries: f.insecure ?? [],
              ...(repo.certDir ? { certDir: repo.certDir } : {}),
              logger: out.logger,
            });
            clients.set(repo, client);
          }
          return client;
        },
      };
    } else {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--src must be docker, yaml or bundle, got ${JSON.stringify(srcKind)}`,
      );
    }

    let destination: Parameters<typeof sync>[0]['destination'];
    if (destKind === 'bundle') {
      destination = { kind: 'bundle', dir: destText };
    } else if (destKind === 'docker') {
      const text = destText.replace(/^docker:\/\//, '');
      const slash = text.indexOf('/');
      const registry = slash >= 0 ? text.slice(0, slash) : text;
      const prefix = slash >= 0 ? text.slice(slash + 1).replace(/\/+$/, '') : '';
      // Validates host and prefix with the reference grammar so mistakes fail before any copying.
      parseImageReference(prefix ? `${registry}/${prefix}/x` : `${registry}/x`);
      destination = {
        kind: 'registry',
        registry,
        prefix,
        client: registryClientFromFlags(f, 'dest-', out.logger),
      };
    } else {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `--dest must be docker or bundle, got ${JSON.stringify(destKind)}`,
      );
    }

    const report = await sync({
      source,
      destination,
      scoped: f.scoped,
      all: f.all,
      platform: f.platform ? parsePlatform(f.platform) : undefined,
      removeSignatures: f['remove-signatures'],
      deleteExtraneous: f['delete-extraneous'],
      keepGoing: f['keep-going'],
      dryRun: f['dry-run'],
      stateFile: f.state,
      shard: f.shard ? parseShard(f.shard) : undefined,
      blobConcurrency: parseCount(f, 'jobs', 6, 64) || 1,
      imageConcurrency: parseCount(f, 'image-jobs', 3, 64) || 1,
      logger: out.logger,
      progress: out.progress,
    });
    out.finish();
    if (f.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      out.logger.info(
        `sync: ${report.copied} copied, ${report.upToDate} up to date, ${report.deleted} deleted, ${report.failed} failed${f['dry-run'] ? ' (dry run)' : ''}`,
      );
    }
    return report.failed > 0 ? 1 : 0;
  },
};

async function readYaml(file: string): Promise<SyncSourceRepo[]> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw asGantryError(err, 'IO', 'cannot read sync file', file);
  });
  const { parseSyncYaml } = await import('../../sync/yaml.js');
  return parseSyncYaml(text, file);
}

function repoFromReference(text: string): SyncSourceRepo {
  const stripped = text.replace(/^docker:\/\//, '');
  const ref = parseImageReference(stripped);
  // `host/repo` means every tag; `host/repo:tag` just that tag.
  const explicitTag = /:[^/]+$/.test(stripped.split('@')[0] ?? '');
  return {
    registry: ref.registry,
    repository: ref.repository,
    selector: explicitTag && ref.tag ? { kind: 'list', tags: [ref.tag] } : { kind: 'all' },
  };
}
