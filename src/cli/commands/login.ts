/**
 * `gantry login HOST` / `gantry logout HOST`: checks credentials against the registry, then stores them where
 * skopeo, podman and docker look (see src/registry/credentials.ts); logout removes them.
 */
import { GantryError } from '../../errors/index.js';
import { registryEndpointHost } from '../../reference/index.js';
import { removeCredential, saveCredential } from '../../registry/credentials.js';
import { RegistryClient } from '../../registry/index.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { createOutput } from '../output.js';
import { commonFlags } from '../registry-flags.js';

const loginFlags = {
  username: { type: 'string', short: 'u', valueName: 'USER', description: 'user name' },
  password: {
    type: 'string',
    short: 'p',
    valueName: 'PASS',
    description: 'password (prefer --password-stdin)',
  },
  'password-stdin': { type: 'boolean', description: 'read the password from stdin' },
  'tls-verify': { type: 'boolean', description: 'verify TLS certificates (default true)' },
  'cert-dir': { type: 'string', valueName: 'DIR', description: 'CA and client certificates' },
  ...commonFlags,
} as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function registryArg(positionals: string[], verb: string): string {
  if (positionals.length !== 1)
    throw new GantryError('INVALID_ARGUMENT', `${verb} needs exactly one REGISTRY`);
  return (positionals[0] as string).replace(/^docker:\/\//, '').replace(/\/+$/, '');
}

export const login: Command = {
  summary: 'check and store credentials for a registry',
  usage: 'login [flags] REGISTRY',
  flags: loginFlags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, loginFlags);
    const registry = registryArg(positionals, 'login');
    const username = f.username;
    if (!username) throw new GantryError('INVALID_ARGUMENT', 'login needs --username');
    if (f.password !== undefined && f['password-stdin']) {
      throw new GantryError('INVALID_ARGUMENT', '--password and --password-stdin exclude each other');
    }
    const password = f['password-stdin'] ? await readStdin() : f.password;
    if (!password) throw new GantryError('INVALID_ARGUMENT', 'login needs --password or --password-stdin');
    const out = createOutput(f);
    const credential = { kind: 'basic' as const, username, password };
    const client = new RegistryClient({
      credentials: async () => credential,
      tlsVerify: f['tls-verify'] !== false,
      insecureRegistries: f.insecure ?? [],
      ...(f['cert-dir'] ? { certDir: f['cert-dir'] } : {}),
      logger: out.logger,
    });
    await client.ping(registryEndpointHost(registry));
    await saveCredential(registry, { username, password }, { authFile: f.authfile });
    out.logger.info(`Login Succeeded: ${registry}`);
    return 0;
  },
};

const logoutFlags = {
  authfile: commonFlags.authfile,
  quiet: commonFlags.quiet,
  help: commonFlags.help,
} as const;

export const logout: Command = {
  summary: 'remove stored credentials for a registry',
  usage: 'logout [flags] REGISTRY',
  flags: logoutFlags,
  async run(argv) {
    const { flags: f, positionals } = parseArgs(argv, logoutFlags);
    const registry = registryArg(positionals, 'logout');
    const removed = await removeCredential(registry, { authFile: f.authfile });
    if (!removed) throw new GantryError('NOT_FOUND', 'not logged in', { subject: registry });
    createOutput(f).logger.info(`Removed login credentials for ${registry}`);
    return 0;
  },
};
