/** `gantry build [flags] CONTEXT`: builds a Dockerfile into an image with the step cache (see src/build). */
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Witness } from '@sigstore/sign';
import {
  parseBuildContext,
  parseOutput,
  parsePairs,
  parsePlatforms,
  parseSecret,
  parseTimestamp,
  registryOutputs,
} from '../../build/flags.js';
import {
  type BuildOptions,
  type BuildResult,
  type BuiltOutput,
  build,
  buildIndex,
  exportImage,
  isBuiltIndex,
} from '../../build/index.js';
import { parseSsh } from '../../build/ssh-agent.js';
import {
  type CacheRecord,
  defaultCacheBound,
  exportCache,
  type ImportedCache,
  importCache,
  LocalCache,
} from '../../cache/index.js';
import { resolveBuildArgs } from '../../dockerfile/index.js';
import { GantryError } from '../../errors/index.js';
import { formatPlatform } from '../../oci/index.js';
import type { RegistryClient } from '../../registry/index.js';
import type { PullPolicy } from '../../run/index.js';
import { ISOLATION_REQUESTS } from '../../sandbox/isolation.js';
import type { IsolationRequest } from '../../sandbox/spec.js';
import type { Signer } from '../../sign/types.js';
import { defaultStoreRoot, LayerStore } from '../../store/index.js';
import { parseTransportReference } from '../../transports/index.js';
import { parseArgs, parseChoice } from '../args.js';
import {
  createBuildProgress,
  jsonLogger,
  type ProgressMode,
  resolveProgressMode,
} from '../build-progress.js';
import type { Command } from '../command.js';
import { keylessSignFlags, keylessSigning } from '../keyless-flags.js';
import { createOutput, type Output } from '../output.js';
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
  ssh: {
    type: 'string',
    multiple: true,
    valueName: 'default|ID[=SOCKET]',
    description: 'forward an ssh agent ($SSH_AUTH_SOCK for default) to RUN --mount=type=ssh',
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
  'build-context': {
    type: 'string',
    multiple: true,
    valueName: 'NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG][@DIGEST]',
    description: 'replace the stage or image NAME (FROM, COPY --from, RUN --mount from=)',
  },
  platform: {
    type: 'string',
    multiple: true,
    valueName: 'OS/ARCH[/VARIANT][,...]',
    description: 'build for these platforms (several make an index; default the host)',
  },
  squash: {
    type: 'boolean',
    description: "keep the base image's layers and put every change the build made into one layer",
  },
  progress: {
    type: 'string',
    valueName: 'auto|plain|json',
    description: 'step display: auto (live on a terminal, else plain), plain lines, or JSON lines',
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
  'sign-by': {
    type: 'string',
    valueName: 'KEY',
    description: 'sign every registry output with this cosign key (.sig and bundle)',
  },
  'sign-passphrase-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'password of the --sign-by key (default: COSIGN_PASSWORD, else a prompt)',
  },
  provenance: {
    type: 'boolean',
    description: 'attach a signed SLSA provenance v1 attestation to every registry output',
  },
  sbom: {
    type: 'boolean',
    description: 'attach a signed SPDX 2.3 SBOM (files and OS packages) to every registry output',
  },
  ...keylessSignFlags,
  ...registryFlags(''),
  insecure: commonFlags.insecure,
  'retry-times': commonFlags['retry-times'],
  quiet: commonFlags.quiet,
  help: commonFlags.help,
} as const;

export const command: Command = {
  summary: 'build an image from a Dockerfile, rootless and daemonless, with a layer cache',
  usage: 'build [flags] CONTEXT',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, flags);
    if (positionals.length !== 1)
      throw new GantryError('INVALID_ARGUMENT', 'build needs exactly one CONTEXT directory');
    const mode = parseChoice<ProgressMode>('progress', f.progress, ['auto', 'plain', 'json'], 'auto');
    const platforms = parsePlatforms(f.platform ?? []);
    if (platforms.length > 1 && f.sbom) {
      throw new GantryError('INVALID_ARGUMENT', 'an SBOM per platform is not supported yet', {
        subject: '--sbom',
      });
    }
    const plainOutput = createOutput({ quiet: f.quiet, json: mode === 'json' });
    const out = mode === 'json' ? { ...plainOutput, logger: jsonLogger() } : plainOutput;
    const contextDir = resolve(positionals[0] as string);
    const buildArgFiles = await Promise.all(
      (f['build-arg-file'] ?? []).map(async (name) => ({ name, text: await readFile(name, 'utf8') })),
    );
    const store = await LayerStore.open(defaultStoreRoot());
    const cache = await LocalCache.open(store.root);
    const destinations = (f.output ?? []).map(parseOutput);
    // Keys (and OIDC tokens) are loaded before building, so a wrong password fails before the work is done.
    const signing = await signingFromFlags(f, registryOutputs(destinations));
    const startedOn = new Date();
    const registry = registryClientFromFlags(f, '', out.logger);
    const explain = Boolean(f['explain-cache']);
    const imported: ImportedCache[] = [];
    try {
      for (const ref of f['cache-from'] ?? []) {
        const cacheImage = await importCache(ref, { cache, registry, logger: out.logger });
        imported.push(cacheImage);
        out.logger.info(
          `imported ${cacheImage.records} cached steps from ${ref} (layers are fetched when needed)`,
        );
      }
      const buildArgs = resolveBuildArgs({
        args: f['build-arg'] ?? [],
        files: buildArgFiles,
        env: process.env,
      });
      const options: BuildOptions = {
        contextDir,
        ...(f.file ? { dockerfile: resolve(f.file) } : {}),
        buildArgs,
        ...(f.target ? { target: f.target } : {}),
        labels: parsePairs(f.label, '--label'),
        annotations: parsePairs(f.annotation, '--annotation'),
        secrets: Object.fromEntries((f.secret ?? []).map(parseSecret)),
        ssh: Object.fromEntries((f.ssh ?? []).map((s) => parseSsh(s, process.env))),
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
        contexts: Object.fromEntries(
          (f['build-context'] ?? []).map((v) => parseBuildContext(v, process.cwd())),
        ),
        squash: Boolean(f.squash),
      };
      const results: BuildResult[] = [];
      for (const platform of platforms.length > 0 ? platforms : [undefined]) {
        const progress = createBuildProgress({
          mode: resolveProgressMode(mode, {
            isTTY: process.stderr.isTTY === true,
            ci: Boolean(process.env.CI),
            quiet: Boolean(f.quiet),
          }),
          explain,
          quiet: Boolean(f.quiet),
          ...(platform && platforms.length > 1 ? { platform: formatPlatform(platform) } : {}),
        });
        try {
          results.push(
            await build({
              ...options,
              ...(platform ? { platform } : {}),
              onStepStart: (s) => progress.stepStarted(s),
              onStep: (r) => progress.stepDone(r),
            }),
          );
        } catch (err) {
          progress.failed(err);
          throw err;
        } finally {
          progress.finish();
        }
      }
      const result: BuiltOutput = results.length > 1 ? buildIndex(results) : (results[0] as BuildResult);
      const first = results[0] as BuildResult;
      const format = parseChoice('format', f.format, ['oci', 'docker'] as const, 'oci');
      const exported = await exportImage(result, {
        tags: f.tag ?? [],
        destinations,
        format,
        store,
        cache,
        registry,
        logger: out.logger,
      });
      if (signing) {
        await signAndAttest(first, {
          ...signing,
          outputs: [...exported]
            .filter(([name]) => registryOutputs([name]).length > 0)
            .map(([name, copied]) => ({ name, digest: copied.digest })),
          dockerfile: f.file ? resolve(f.file) : join(contextDir, 'Dockerfile'),
          contextDir,
          buildArgs,
          target: f.target,
          startedOn,
          timestamp: parseTimestamp(f.timestamp, process.env),
          store,
          cache,
          registry,
          out,
        });
      }
      if (f['cache-to']) {
        const records: CacheRecord[] = [];
        for (const step of results.flatMap((r) => r.steps)) {
          const record = step.key === undefined ? undefined : await cache.get(step.key);
          if (record) records.push(record);
        }
        await exportCache(records, f['cache-to'], { cache, registry, logger: out.logger });
      }
      if (imported.length > 0) out.logger.info(`fetched ${cache.fetched} cached layers`);
      await cache.prune({ maxBytes: defaultCacheBound() });
      const own = isBuiltIndex(result) ? result.index.digest : result.manifest.digest;
      // The image ID of a multi-platform build is its index's digest, as buildx writes it.
      const imageId = isBuiltIndex(result) ? result.index.digest : result.configDigest;
      const digest = [...exported.values()][0]?.digest ?? own;
      if (f.iidfile) await writeFile(f.iidfile, imageId);
      if (f.digestfile) await writeFile(f.digestfile, digest);
      if (f['metadata-file']) {
        const metadata = {
          'containerimage.digest': digest,
          ...(isBuiltIndex(result) ? {} : { 'containerimage.config.digest': result.configDigest }),
          'image.name': [...(f.tag ?? []), ...(f.output ?? [])].join(','),
          outputs: Object.fromEntries([...exported].map(([name, r]) => [name, r.digest])),
        };
        await writeFile(f['metadata-file'], `${JSON.stringify(metadata, null, 2)}\n`);
      }
      if (!f.quiet) process.stdout.write(`${imageId}\n`);
      return 0;
    } finally {
      // The connections to --cache-from images stay open while the build may still fetch layers.
      for (const cacheImage of imported) await cacheImage.close();
    }
  },
};

/** The layers with their blobs on disk: lazily imported --cache-from layers are fetched first. */
async function localLayers<T extends { digest: string; path: string }>(
  layers: readonly T[],
  cache: LocalCache,
): Promise<readonly T[]> {
  for (const l of layers) if (l.path === cache.blobPath(l.digest)) await cache.ensureBlob(l.digest);
  return layers;
}

interface Signing {
  /** Sign the image itself (`--sign-by`). */
  signImage: boolean;
  provenance: boolean;
  sbom: boolean;
  signer: Signer;
  witnesses: Witness[];
}

/** What --sign-by, --provenance and --sbom ask for, with the signer: the key, else keyless (OIDC token). */
async function signingFromFlags(
  f: {
    'sign-by'?: string;
    'sign-passphrase-file'?: string;
    provenance?: boolean;
    sbom?: boolean;
    'identity-token'?: string;
    'identity-token-env'?: string;
    'fulcio-url'?: string;
    'rekor-url'?: string;
  },
  registryDestinations: readonly string[],
): Promise<Signing | undefined> {
  const provenance = Boolean(f.provenance);
  const sbom = Boolean(f.sbom);
  if (!f['sign-by'] && !provenance && !sbom) return undefined;
  if (registryDestinations.length === 0) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      '--sign-by, --provenance and --sbom need an --output type=registry to attach to',
    );
  }
  // The signing modules (sigstore, tweetnacl) load only when asked for, keeping plain builds' start-up lean.
  const keys = await import('../../sign/key-files.js');
  const key = f['sign-by'];
  const signing = key
    ? { signer: await keys.loadKeySigner(key, { passphraseFile: f['sign-passphrase-file'] }), witnesses: [] }
    : await keylessSigning(f);
  return { signImage: key !== undefined, provenance, sbom, ...signing };
}

/** Signs and attests each pushed registry output, by the digest it got. */
async function signAndAttest(
  result: BuildResult,
  o: Signing & {
    outputs: readonly { name: string; digest: string }[];
    dockerfile: string;
    contextDir: string;
    buildArgs: Readonly<Record<string, string>>;
    target: string | undefined;
    startedOn: Date;
    timestamp: number | undefined;
    store: LayerStore;
    cache: LocalCache;
    registry: RegistryClient;
    out: Output;
  },
): Promise<void> {
  const { signImage, resolveSignedImage, dockerReference } = await import('../../sign/sign.js');
  const { RegistrySignatureStore } = await import('../../sign/store.js');
  const { attestImage } = await import('../../attest/create.js');
  const predicates: { type: string; bytes: Buffer; source: string }[] = [];
  if (o.provenance) {
    const provenance = await import('../../attest/provenance.js');
    const content = await readFile(o.dockerfile);
    const rel = relative(o.contextDir, o.dockerfile);
    const path = isAbsolute(rel) || rel.startsWith('..') ? o.dockerfile : rel;
    const refs = provenance.baseImageRefs(content.toString('utf8'), {
      file: path,
      buildArgs: o.buildArgs,
      target: o.target,
    });
    const predicate = provenance.provenancePredicate({
      dockerfile: { path, content },
      buildArgs: o.buildArgs,
      target: o.target,
      baseImages: await provenance.resolveBaseImages(refs, { store: o.store, logger: o.out.logger }),
      startedOn: o.startedOn,
      finishedOn: new Date(),
    });
    predicates.push({
      type: provenance.SLSA_PROVENANCE_V1,
      bytes: Buffer.from(JSON.stringify(predicate)),
      source: 'build provenance',
    });
  }
  if (o.sbom) {
    const sbom = await import('../../attest/sbom.js');
    const document = sbom.spdxDocument({
      name: o.outputs[0]?.name.slice('docker://'.length) ?? result.configDigest,
      imageId: result.configDigest,
      contents: await sbom.readImageContents(await localLayers(result.layers, o.cache)),
      created: o.timestamp === undefined ? new Date() : new Date(o.timestamp * 1000),
    });
    predicates.push({
      type: sbom.SPDX_PREDICATE_TYPE,
      bytes: Buffer.from(JSON.stringify(document)),
      source: 'build SBOM',
    });
  }
  const store = new RegistrySignatureStore(o.registry);
  for (const output of o.outputs) {
    const parsed = parseTransportReference(output.name);
    if (parsed.transport !== 'docker')
      throw new GantryError('INTERNAL', 'not a registry output', { subject: output.name });
    const reference = { ...parsed.image, digest: output.digest };
    if (o.signImage) {
      await signImage({
        client: o.registry,
        reference,
        signer: o.signer,
        witnesses: o.witnesses,
        store,
        logger: o.out.logger,
      });
    }
    const image = await resolveSignedImage(o.registry, reference);
    for (const p of predicates) {
      await attestImage({
        store,
        image,
        subjectName: dockerReference(reference),
        predicateType: p.type,
        predicate: p.bytes,
        predicateSource: p.source,
        signer: o.signer,
        witnesses: o.witnesses,
        logger: o.out.logger,
      });
    }
  }
}
