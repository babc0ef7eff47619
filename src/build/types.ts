/** build/types: the options and results of a build, shared by the builder's modules and the CLI. */
import type { LocalCache } from '../cache/local.js';
import type { DockerfileIR, IgnoreMatcher } from '../dockerfile/index.js';
import type { LayerCompression } from '../layer/index.js';
import type { Platform } from '../oci/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { PullPolicy } from '../run/index.js';
import type { IsolationRequest } from '../sandbox/spec.js';
import type { LayerStore } from '../store/index.js';
import type { Logger } from '../util/log.js';
import type { ImageConfig } from './config.js';
import type { BuiltLayer } from './lower.js';

/**
 * `--build-context NAME=...`: what replaces the stage or image NAME in FROM, COPY --from and RUN --mount from=.
 * `spec` is the value as given, named in errors.
 */
export type NamedContext =
  | { kind: 'dir'; dir: string; spec: string }
  | { kind: 'image'; ref: string; spec: string }
  | { kind: 'oci-layout'; dir: string; tag?: string; digest?: string; spec: string };

/** Where a `--secret` value comes from: a file or an environment variable. */
export type SecretSource = { file: string } | { env: string };

export interface BuildOptions {
  contextDir: string;
  /** Default `<contextDir>/Dockerfile`. */
  dockerfile?: string;
  buildArgs?: Readonly<Record<string, string>>;
  target?: string;
  /** `--label`: added to the final image's config. */
  labels?: Readonly<Record<string, string>>;
  /** `--annotation`: added to the manifest. */
  annotations?: Readonly<Record<string, string>>;
  /** `--secret id=..`: readable in RUN --mount=type=secret, never stored. */
  secrets?: Readonly<Record<string, SecretSource>>;
  /** `--ssh ID[=SOCKET]`: the ssh agent sockets RUN --mount=type=ssh forwards, by id. */
  ssh?: Readonly<Record<string, string>>;
  noCache?: boolean;
  pull: PullPolicy;
  compression?: Exclude<LayerCompression, 'none'>;
  /** Seconds since the epoch for every timestamp (`--timestamp`, SOURCE_DATE_EPOCH). */
  timestamp?: number;
  isolation?: IsolationRequest;
  /** `--build-context`, keyed by `contextKey(name)` (build/sources). */
  contexts?: Readonly<Record<string, NamedContext>>;
  /** The platform to build for (`--platform`); default the host's. */
  platform?: Platform;
  /** `--squash`: the base image's layers plus one layer holding every change the build made. */
  squash?: boolean;
  /** Called when a step starts (before its cache lookup), for progress displays. */
  onStepStart?: (step: StepStart) => void;
  store: LayerStore;
  cache: LocalCache;
  registry: RegistryClient;
  logger: Logger;
  /** Called once per step with whether it hit the cache and why. */
  onStep?: (report: StepReport) => void;
}

export interface StepStart {
  stage: string;
  /** `Dockerfile:12` */
  location: string;
  /** The instruction keyword, e.g. `RUN`. */
  kind: string;
  /** The instruction as written (after ONBUILD unwrapping, before expansion). */
  text: string;
}

export interface StepReport {
  stage: string;
  /** `Dockerfile:12` */
  location: string;
  instruction: string;
  cache: 'hit' | 'miss' | 'none';
  reason?: string;
  /** The step's cache key (filesystem steps only). */
  key?: string;
}

/** What a stage is while and after it builds. */
export interface StageState {
  config: ImageConfig;
  layers: BuiltLayer[];
  /** Cache key of the last filesystem step (or the base's identity). */
  key: string;
}

export interface BuildContext {
  options: BuildOptions;
  ir: DockerfileIR;
  ignore: IgnoreMatcher;
  /** Stage results by index, resolved when the stage finished. */
  stages: Map<number, Promise<StageState>>;
  /** An image named by FROM or COPY --from, in the store (pulled as --pull says), for `platform` (default the target). */
  imageBase: (ref: string, subject: string, platform?: Platform) => Promise<StageState>;
  /** The state a `--build-context` stands for (a directory becomes one layer over scratch). */
  contextImage: (context: NamedContext, subject: string, platform?: Platform) => Promise<StageState>;
  /** Makes the layers' blobs local (fetching lazily imported --cache-from layers) before reading `path`. */
  ensureLayers: (layers: readonly BuiltLayer[]) => Promise<void>;
  createdAt: string;
}

export interface BuildResult {
  config: ImageConfig;
  configDigest: string;
  /** The OCI manifest's exact bytes and digest. */
  manifest: { bytes: Buffer; digest: string };
  layers: BuiltLayer[];
  steps: StepReport[];
}
