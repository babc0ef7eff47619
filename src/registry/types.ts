/** registry/types: the shapes shared by the registry client, its credential sources and its callers. */

/** Credentials for one registry, as found in auth files, helpers or `--creds`. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token server. */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent as is (`--registry-token`). */
  | { kind: 'registryToken'; token: string };

/** Finds the credential for a registry host (`host[:port]`), or undefined for anonymous access. */
export type CredentialResolver = (registry: string) => Promise<Credential | undefined>;

/** A repository on a registry. */
export interface RepoLocation {
  registry: string;
  repository: string;
}
