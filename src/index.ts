/**
 * gantry's library API: everything the CLI does, importable. The CLI (src/cli) is a thin shell over these.
 */

export { type CopyOptions, type CopyProgress, type CopyResult, copyImage } from './copy/index.js';
export { type ErrorCode, GantryError, isGantryError } from './errors/index.js';
export { describeImage, type InspectOutput, readConfig, resolveImage } from './inspect/index.js';
export { buildIndex, createIndex } from './manifest/index.js';
export * from './oci/index.js';
export {
  formatImageReference,
  type ImageReference,
  parseImageReference,
} from './reference/index.js';
export {
  type CredentialOptions,
  createCredentialResolver,
  removeCredential,
  saveCredential,
} from './registry/credentials.js';
export { RegistryClient, type RegistryClientOptions } from './registry/index.js';
export type { Credential, CredentialResolver, RepoLocation } from './registry/types.js';
export { type SyncOptions, type SyncReport, sync } from './sync/index.js';
export { parseSyncYaml } from './sync/yaml.js';
export {
  openDestination,
  openSource,
  parseTransportReference,
  type TransportReference,
} from './transports/index.js';
export type { Attachment, BlobOpener, ImageDestination, ImageSource } from './transports/types.js';
export type { Logger } from './util/log.js';
