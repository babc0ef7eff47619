/**
 * gantry's library API: everything the CLI does, importable. The CLI (src/cli) is a thin shell over these.
 */

export * as attest from './attest/index.js';
export * as build from './build/index.js';
export { type CopyOptions, type CopyProgress, type CopyResult, copyImage } from './copy/index.js';
// Larger areas are exported as namespaces, each mirroring its folder's index.
export * as dockerfile from './dockerfile/index.js';
export { type ErrorCode, GantryError, isGantryError } from './errors/index.js';
export { describeImage, type InspectOutput, readConfig, resolveImage } from './inspect/index.js';
export * as layer from './layer/index.js';
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
export * as run from './run/index.js';
export * as sandbox from './sandbox/index.js';
export * as sign from './sign/index.js';
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
