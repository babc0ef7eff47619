/**
 * attest/provenance: the SLSA provenance v1 predicate `gantry build --provenance` attaches — who built (builder
 * id), from what (the Dockerfile and its digest, build args, target) and on what (base image digests as
 * resolvedDependencies), when. `provenancePredicate` is pure; `resolveBaseImages` reads the bases the build
 * pulled from the local store.
 */
import { createHash } from 'node:crypto';
import { isProxyArg, parseDockerfile } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { digestHex } from '../oci/index.js';
import { ensureImage } from '../run/image.js';
import type { LayerStore } from '../store/index.js';
import type { Logger } from '../util/log.js';

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What a gantry build's externalParameters mean (SLSA's buildType). */
export const GANTRY_BUILD_TYPE = 'https://gantry.dev/build/dockerfile/v1';
export const DEFAULT_BUILDER_ID = 'https://gantry.dev/builder/local';

export interface BaseImage {
  /** The reference FROM named, after build-arg expansion. */
  ref: string;
  /** Manifest digest of the image the build used. */
  digest: string;
}

export interface ProvenanceInput {
  /** The Dockerfile as named to the build, and its bytes (digested, not embedded). */
  dockerfile: { path: string; content: Buffer };
  /** `--build-arg` values; proxy variables are left out (they may carry credentials, as BuildKit does). */
  buildArgs: Readonly<Record<string, string>>;
  target?: string;
  baseImages: readonly BaseImage[];
  startedOn: Date;
  finishedOn: Date;
  builderId?: string;
}

/** The predicate of an in-toto statement with predicateType SLSA_PROVENANCE_V1. Secrets never enter it. */
export function provenancePredicate(input: ProvenanceInput): Record<string, unknown> {
  const buildArgs = Object.fromEntries(
    Object.entries(input.buildArgs)
      .filter(([name]) => !isProxyArg(name))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const dockerfileDigest = createHash('sha256').update(input.dockerfile.content).digest('hex');
  return {
    buildDefinition: {
      buildType: GANTRY_BUILD_TYPE,
      externalParameters: {
        dockerfile: input.dockerfile.path,
        buildArgs,
        ...(input.target === undefined ? {} : { target: input.target }),
      },
      internalParameters: {},
      resolvedDependencies: [
        { name: input.dockerfile.path, digest: { sha256: dockerfileDigest } },
        ...input.baseImages.map((b) => ({
          uri: `docker://${b.ref}`,
          name: b.ref,
          digest: { sha256: digestHex(b.digest) },
        })),
      ],
    },
    runDetails: {
      builder: { id: input.builderId ?? DEFAULT_BUILDER_ID },
      metadata: {
        startedOn: isoSeconds(input.startedOn),
        finishedOn: isoSeconds(input.finishedOn),
      },
    },
  };
}

/** The image references the Dockerfile's stages are built FROM (not `scratch`, not other stages), once each. */
export function baseImageRefs(
  dockerfileText: string,
  o: { file: string; buildArgs: Readonly<Record<string, string>>; target?: string },
): string[] {
  const ir = parseDockerfile(dockerfileText, {
    file: o.file,
    buildArgs: o.buildArgs,
    ...(o.target ? { target: o.target } : {}),
  });
  const refs = ir.stages.flatMap((s) => (s.base.kind === 'image' ? [s.base.ref] : []));
  return [...new Set(refs)];
}

/** Digests of the base images as the local store holds them: the build has just pulled each one there. */
export async function resolveBaseImages(
  refs: readonly string[],
  o: { store: LayerStore; logger: Logger },
): Promise<BaseImage[]> {
  const out: BaseImage[] = [];
  for (const ref of refs) {
    const image = await ensureImage(o.store, ref, {
      policy: 'never',
      registry: async () => {
        throw new GantryError('INTERNAL', 'a base image the build used is not in the store', {
          subject: ref,
        });
      },
      logger: o.logger,
    });
    out.push({ ref, digest: image.digest });
  }
  return out;
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
