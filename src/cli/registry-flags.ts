/**
 * cli/registry-flags: the registry flags every command shares (credentials, auth file, TLS, retries), with the
 * skopeo names and `src-`/`dest-` variants for copy and sync. Only declarations and value parsing: nothing heavy
 * is imported, so commands that rarely talk to a registry can declare the flags and load the client lazily
 * (cli/registry-client.ts).
 */
import { GantryError } from '../errors/index.js';
import type { FlagSpec, FlagSpecs } from './args.js';

export type Side = '' | 'src-' | 'dest-';

type StringFlag = FlagSpec & { type: 'string'; multiple?: false };
type BooleanFlag = FlagSpec & { type: 'boolean' };
type RegistryFlagSpecs<S extends Side> = Record<
  `${S}${'creds' | 'registry-token' | 'authfile' | 'cert-dir'}`,
  StringFlag
> &
  Record<`${S}tls-verify`, BooleanFlag>;

export function registryFlags<S extends Side>(side: S): RegistryFlagSpecs<S> {
  return {
    [`${side}creds`]: { type: 'string', valueName: 'USER:PASS', description: 'credentials for the registry' },
    [`${side}registry-token`]: {
      type: 'string',
      valueName: 'TOKEN',
      description: 'bearer token for the registry',
    },
    [`${side}authfile`]: {
      type: 'string',
      valueName: 'FILE',
      description: 'auth file (default: containers auth.json, then ~/.docker/config.json)',
    },
    [`${side}tls-verify`]: {
      type: 'boolean',
      description: 'verify TLS certificates (default true; =false to skip)',
    },
    [`${side}cert-dir`]: {
      type: 'string',
      valueName: 'DIR',
      description: 'CA and client certificates (ca.crt, client.cert, client.key)',
    },
  } as RegistryFlagSpecs<S>;
}

export const commonFlags = {
  authfile: { type: 'string', valueName: 'FILE', description: 'auth file for both sides' },
  insecure: {
    type: 'string',
    multiple: true,
    valueName: 'HOST',
    description: 'allow plain HTTP to this registry (repeatable)',
  },
  'retry-times': {
    type: 'string',
    valueName: 'N',
    description: 'retries per request on network errors, 5xx and 429 (default 4)',
  },
  quiet: { type: 'boolean', short: 'q', description: 'print nothing but errors' },
  json: { type: 'boolean', description: 'print results as JSON' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
} as const satisfies FlagSpecs;

export type Flags = Record<string, string | boolean | string[] | undefined>;

export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function parseCount(flags: Flags, name: string, fallback: number, max = 1000): number {
  const text = str(flags, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
