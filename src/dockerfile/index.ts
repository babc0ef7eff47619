/**
 * dockerfile: the Dockerfile front end — parsing to a typed IR, stage resolution and graph, BuildKit's
 * variable expansion, and .dockerignore rules. Everything here is pure except `loadDockerignore`.
 */
export { automaticArgs, isProxyArg, type PlatformPair, PROXY_ARGS } from './args.js';
export { type BuildArgSources, resolveBuildArgs } from './build-args.js';
export { applyChmod, type ChmodSpec, parseChmod } from './chmod.js';
export { createIgnoreMatcher, type IgnoreMatcher, parseDockerignore } from './dockerignore.js';
export {
  type ExpandOptions,
  ExpansionError,
  expandWord,
  expandWords,
  lexWord,
  type Variables,
} from './expand.js';
export {
  inheritedTriggers,
  type PlannedStage,
  resolveSource,
  type StageDependencies,
  type StagePlan,
  type StageSource,
  stageDependencies,
  stagesNeeded,
} from './graph.js';
export type * from './instructions.js';
export { type LoadedIgnoreFile, loadDockerignore } from './load-dockerignore.js';
export { type CacheSharing, type MountType, parseMount, type RunMount } from './mount.js';
export { type DockerfileIR, type ParseOptions, parseDockerfile, parseImageTriggers } from './parse.js';
export { parseGoDuration } from './parse-instruction.js';
export {
  type ExpandedStep,
  expandInstruction,
  initialVariables,
  type RunEnvironment,
  runEnvironment,
  type StageVariables,
} from './scope.js';
export type { Directives, Heredoc, SourcePosition } from './source.js';
