/**
 * cli/verify-flags: what `verify` and `verify-attestation` share — the `--format`/`--output` flags and their
 * parsing, and the choice between `--key` and the keyless `--certificate-*` flags.
 */
import type { KeyObject } from 'node:crypto';
import { GantryError } from '../errors/index.js';
import { readPublicKeyFile } from '../sign/key-files.js';
import type { KeylessPolicy } from '../sign/keyless.js';
import { keylessPolicyFromFlags, keylessVerifyFlags } from './keyless-flags.js';

export const verifyFlags = {
  key: { type: 'string', valueName: 'FILE', description: 'public key (cosign.pub)' },
  ...keylessVerifyFlags,
} as const;

export const verifyOutputFlags = {
  format: {
    type: 'string',
    valueName: 'legacy|bundle|both',
    description: 'which stored forms to check (default both)',
  },
  output: { type: 'string', short: 'o', valueName: 'text|json', description: 'output format (default text)' },
} as const;

const FORMS: Record<string, ('legacy' | 'bundle')[]> = {
  legacy: ['legacy'],
  bundle: ['bundle'],
  both: ['legacy', 'bundle'],
};

/** The stored forms to check and the output format, from `--format`, `--output` and `--json`. */
export function parseVerifyOutput(f: { format?: string; output?: string; json?: boolean }): {
  forms: ('legacy' | 'bundle')[];
  output: 'text' | 'json';
} {
  const forms = FORMS[f.format ?? 'both'];
  if (!forms) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--format must be legacy, bundle or both, got ${JSON.stringify(f.format)}`,
    );
  }
  const output = f.output ?? (f.json ? 'json' : 'text');
  if (output !== 'text' && output !== 'json') {
    throw new GantryError('INVALID_ARGUMENT', `--output must be text or json, got ${JSON.stringify(output)}`);
  }
  return { forms, output };
}

/** The public key of `--key`, or the keyless policy; exactly one must be given (`command` names the error). */
export async function verifyTrustFromFlags(
  f: {
    key?: string;
    'certificate-identity'?: string;
    'certificate-oidc-issuer'?: string;
    'trusted-root'?: string;
  },
  command: string,
): Promise<{ publicKey: KeyObject } | { keyless: KeylessPolicy }> {
  const keyless = await keylessPolicyFromFlags(f);
  if (f.key && keyless) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      'give either --key or the keyless --certificate-* flags, not both',
    );
  }
  if (f.key) return { publicKey: await readPublicKeyFile(f.key) };
  if (keyless) return { keyless };
  throw new GantryError(
    'INVALID_ARGUMENT',
    `${command} needs --key FILE, or --certificate-identity, --certificate-oidc-issuer and --trusted-root`,
  );
}
