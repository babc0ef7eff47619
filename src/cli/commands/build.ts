/** `gantry build [flags] CONTEXT`: builds a Dockerfile into an image with the step cache (see src/build). */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseOutput, parsePairs, parseSecret, parseTimestamp } from '../../build/flags.js';
import { build, exportImage, type StepReport } from '../../build/index.js';
import {
  type CacheRecord,
  defaultCacheBound,
  exportCache,
  importCache,
  LocalCache,
} from '../../cache/index.js';
import { resolveBuildArgs } from '../../dockerfile/index.js';
import { GantryError } from '../../errors/index.js';
import type { PullPolicy } from '../../run/index.js';
import { ISOLATION_REQUESTS } from '../../sandbox/isolation.js';
import type { IsolationRequest } from '../../sandbox/spec.js';
import { defaultStoreRoot, LayerStore } from '../../store/index.js';
import { parseArgs, parseChoice } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { registryClientFromFlags } from '../registry-client.js';
import { commonFlags, registryFlags } from '../registry-flags.js';

const flags = {
  tag: {
    type: 'string',
    short: 't',
    multiple: true,
    valueName: 'NAME',
    description: 'name the image in the local store (repeatable)',
  },
  file: {
    type: 'string',
    short: 'f',
    valueName: 'PATH',
    description: 'Dockerfile (default CONTEXT/Dockerfile)',
  },
  'build-arg': {
    type: 'string',
    multiple: true,
    valueName: 'KEY[=VALUE]',
    description: 'set a build argument',
  },
  'build-arg-file': {
    type: 'string',
    multiple: true,
    valueName: 'FILE',
    description: 'read build arguments from a file',
  },
  target: { type: 'string', valueName: 'STAGE', description: 'build this stage (default the last)' },
  label: {
    type: 'string',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'add a label to the image config',
  },
  annotation: {
    type: 'string',
    multiple: true,
    valueName: 'KEY=VALUE',
    description: 'add a manifest annotation',
  },
  secret: {
    type: 'string',
    multiple: true,
    valueName: 'id=ID,src=FILE|env=VAR',
    description: 'a secret for RUN --mount=type=secret',
  },
  output: {
    type: 'string',
    short: 'o',
    multiple: true,
    valueName: 'type=...',
    description: 'registry (name=REF), oci|oci-archive|docker-archive (dest=PATH)',
  },
  format: {
    type: 'string',
    valueName: 'oci|docker',
    description: 'manifest and config format of the outputs (default oci)',
  },
  compression: { type: 'string', valueName: 'gzip|zstd', description: 'layer compression (default gzip)' },
  timestamp: {
    type: 'string',
    valueName: 'SECONDS',
    description: 'set every timestamp (default $SOURCE_DATE_EPOCH) for reproducible images',
  },
  'cache-from': {
    type: 'string',
    multiple: true,
    valueName: 'REF',
    description: 'import the build cache stored at this image reference first',
  },
  'cache-to': {
    type: 'string',
    valueName: 'REF',
    description: "push this build's cache to an image reference",
  },
  'no-cache': { type: 'boolean', description: 'run every step' },
  'explain-cache': { type: 'boolean', description: 'say for each step why it hit or missed the cache' },
  pull: {
    type: 'string',
    valueName: 'missing|always|never',
    description: 'when to pull base images (default missing)',
  },
  isolation: {
    type: 'string',
    valueName: 'auto|rootless|chroot|none',
    description: 'how RUN steps are isolated (default auto)',
  },
  iidfile: { type: 'string', valueName: 'FILE', description: 'write the image ID (config digest)' },
  digestfile: { type: 'string', valueName: 'FILE', description: 'write the manifest digest' },
  'metadata-file': { type: 'string', valueName: 'FILE', description: 'write build metadata as JSON' },
  ...registryFlags(''),
  insecure: commonFlags.insecure,
  'retry-times': commonFlags['retry-times'],
  quiet: commonFlags.quiet,
  help: commonFlags.help,
} as const;

function stepLine(r: StepReport, explain: boolean): string {
  const mark = r.cache === 'hit' ? 'CACHED ' : '';
  const why = explain && r.cache !== 'none' ? ` (${r.cache}: ${r.reason})` : '';
  return `[${r.stage}] ${r.location} ${mark}${r.instruction}${why}`;
}

export const command: Command = {
  summary: 'build an image from a Dockerfile, rootless and daemonless, with a layer cache',
  usage: 'build [flags] CONTEXT',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1)
      throw new GantryError('INVALID_ARGUMENT', 'build needs exactly one CONTEXT directory');
    const out = createOutput({ quiet: f.quiet });
    const contextDir = resolve(positionals[0] as string);
    const buildArgFiles = await Promise.all(
      (f['build-arg-file'] ?? []).map(async (name) => ({ name, text: await readFile(name, 'utf8') })),
    );
    const store = await LayerStore.open(defaultStoreRoot());
    const cache = await LocalCache.open(store.root);
    const registry = registryClientFromFlags(f, '', out.logger);
    const explain = Boolean(f['explain-cache']);
    for (const ref of f['cache-from'] ?? []) {
      const n = await importCache(ref, { cache, registry, logger: out.logger });
      out.logger.info(`imported ${n} cached steps from ${ref}`);
    }
    const result = await build({
      contextDir,
      ...(f.file ? { dockerfile: resolve(f.file) } : {}),
      buildArgs: resolveBuildArgs({ args: f['build-arg'] ?? [], files: buildArgFiles, env: process.env }),
      ...(f.target ? { target: f.target } : {}),
      labels: parsePairs(f.label, '--label'),
      annotations: parsePairs(f.annotation, '--annotation'),
      secrets: Object.fromEntries((f.secret ?? []).map(parseSecret)),
      noCache: Boolean(f['no-cache']),
      pull: parseChoice<PullPolicy>('pull', f.pull, ['missing', 'always', 'never'], 'missing'),
      compression: parseChoice('compression', f.compression, ['gzip', 'zstd'] as const, 'gzip'),
      ...(() => {
        const timestamp = parseTimestamp(f.timestamp, process.env);
        return timestamp === undefined ? {} : { timestamp };
      })(),
      isolation: parseChoice<IsolationRequest>('isolation', f.isolation, ISOLATION_REQUESTS, 'auto'),
      store,
      cache,
      registry,
      logger: out.logger,
      onStep: (r) => {
        if (!f.quiet || explain) process.stderr.write(`${stepLine(r, explain)}\n`);
      },
    });
    const format = parseChoice('format', f.format, ['oci', 'docker'] as const, 'oci');
    const exported = await exportImage(result, {
      tags: f.tag ?? [],
      destinations: (f.output ?? []).map(parseOutput),
      format,
      store,
      cache,
      registry,
      logger: out.logger,
    });
    if (f['cache-to']) {
      const records: CacheRecord[] = [];
      for (const step of result.steps) {
        const record = step.key === undefined ? undefined : await cache.get(step.key);
        if (record) records.push(record);
      }
      await exportCache(records, f['cache-to'], { cache, registry, logger: out.logger });
    }
    await cache.prune({ maxBytes: defaultCacheBound() });
    const digest = [...exported.values()][0]?.digest ?? result.manifest.digest;
    if (f.iidfile) await writeFile(f.iidfile, result.configDigest);
    if (f.digestfile) await writeFile(f.digestfile, digest);
    if (f['metadata-file']) {
      const metadata = {
        'containerimage.digest': digest,
        'containerimage.config.digest': result.configDigest,
        'image.name': [...(f.tag ?? []), ...(f.output ?? [])].join(','),
        outputs: Object.fromEntries([...exported].map(([name, r]) => [name, r.digest])),
      };
      await writeFile(f['metadata-file'], `${JSON.stringify(metadata, null, 2)}\n`);
    }
    if (!f.quiet) process.stdout.write(`${result.configDigest}\n`);
    return 0;
  },
};
