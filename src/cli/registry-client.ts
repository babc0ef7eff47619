/** cli/registry-client: the one place registry flags (cli/registry-flags.ts) become a RegistryClient. */
import { createCredentialResolver } from '../registry/credentials.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.js';
import type { Logger } from '../util/log.js';
import { type Flags, parseCount, type Side, str } from './registry-flags.js';

/** Builds the registry client for one side from its flags, falling back to the unprefixed ones. */
export function registryClientFromFlags(flags: Flags, side: Side, logger: Logger): RegistryClient {
  const pick = (name: string): string | undefined => str(flags, `${side}${name}`) ?? str(flags, name);
  const tls = flags[`${side}tls-verify`] ?? flags['tls-verify'];
  const credentialOptions = {
    creds: pick('creds'),
    registryToken: pick('registry-token'),
    authFile: pick('authfile'),
  };
  const options: RegistryClientOptions = {
    credentials: createCredentialResolver(credentialOptions),
    tlsVerify: tls !== false,
    insecureRegistries: (flags.insecure as string[] | undefined) ?? [],
    maxRetries: parseCount(flags, 'retry-times', 4, 50),
    logger,
  };
  const certDir = pick('cert-dir');
  if (certDir) options.certDir = certDir;
  return new RegistryClient(options);
}
