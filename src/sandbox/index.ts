/**
 * sandbox: runs a command in a container rootlessly — probe what the environment allows, choose the
 * isolation level, and drive the gantry-sandbox helper. See docs/run.md and native/README.md.
 */

export { runSandbox, type SandboxResult, sandboxHelperPath } from './helper.js';
export { buildIdMaps, type CallerIds, type IdRange, parseSubordinateIds, readIdRanges } from './idmap.js';
export { chooseIsolation, ISOLATION_REQUESTS, type IsolationChoice } from './isolation.js';
export { type EnvironmentReport, type LevelProbe, parseSeccomp, probeEnvironment } from './probe.js';
export type * from './spec.js';
