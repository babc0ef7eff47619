/**
 * gantry's library API: everything the CLI does, importable. The CLI (src/cli) is a thin shell over these.
 */
export { GantryError, type ErrorCode, isGantryError } from './errors/index.js';
export * from './oci/index.js';
export {
  type ImageReference,
  parseImageReference,
  formatImageReference,
} from './reference/index.js';
export { RegistryClient, type RegistryClientOptions } from './registry/index.js';
export type { Credential, CredentialResolver, RepoLocation } from './registry/types.js';
export {
  createCredentialResolver,
  saveCredential,
  removeCredential,
  type CredentialOptions,
} from './registry/credentials.js';
export {
  parseTransportReference,
  openSource,
  openDestination,
  type TransportReference,
} from './transports/index.js';
export type { ImageSource, ImageDestination, Attachment, BlobOpener } from './transports/types.js';
export { copyImage, type CopyOptions, type CopyResult, type CopyProgress } from './copy/index.js';
export { sync, parseSyncYaml, type SyncOptions, type SyncReport } from './sync/index.js';
export { createIndex, buildIndex } from './manifest/index.js';
export { resolveImage, readConfig, describeImage, type InspectOutput } from './inspect/index.js';
export type { Logger } from './util/log.js';
