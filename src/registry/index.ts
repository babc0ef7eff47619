/** registry: the OCI distribution client and the shared registry types. */

export type { Challenge } from './challenge.js';
export { parseWwwAuthenticate } from './challenge.js';
export { RegistryClient, type RegistryClientOptions } from './client.js';
export type { RateLimitInfo } from './headers.js';
export { referrersTag } from './referrers.js';
export type { Credential, CredentialResolver, RepoLocation } from './types.js';
