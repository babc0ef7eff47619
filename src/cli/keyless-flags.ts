/**
 * cli/keyless-flags: the Sigstore keyless flags shared by the signing commands (`sign`, `attest`: OIDC token
 * sources, Fulcio and Rekor URLs) and the verifying ones (`verify`, `verify-attestation`: certificate identity,
 * OIDC issuer, trusted root), and what they turn into — a keyless signer with its Rekor witness, or a policy.
 * The Sigstore client (src/sign/keyless.ts) is loaded only when a keyless flag is used, so commands that
 * merely declare these flags (e.g. `build`) start without it.
 */
import type { Witness } from '@sigstore/sign';
import { GantryError } from '../errors/index.js';
import type { KeylessPolicy } from '../sign/keyless.js';
import type { Signer } from '../sign/types.js';

/** Flags of keyless signing, shared by every command that signs. */
export const keylessSignFlags = {
  'identity-token': {
    type: 'string',
    valueName: 'TOKEN|FILE',
    description: 'keyless: OIDC token (or a file holding it) for Fulcio',
  },
  'identity-token-env': {
    type: 'string',
    valueName: 'VAR',
    description:
      'keyless: environment variable holding the OIDC token (GitLab id_tokens; default SIGSTORE_ID_TOKEN)',
  },
  'fulcio-url': {
    type: 'string',
    valueName: 'URL',
    description: 'keyless: Fulcio (default the public instance)',
  },
  'rekor-url': {
    type: 'string',
    valueName: 'URL',
    description: 'keyless: Rekor (default the public instance)',
  },
} as const;

/** A keyless signer and its Rekor witness from the flags above; the token comes from resolveIdentityToken. */
export async function keylessSigning(flags: {
  'identity-token'?: string;
  'identity-token-env'?: string;
  'fulcio-url'?: string;
  'rekor-url'?: string;
}): Promise<{ signer: Signer; witnesses: Witness[] }> {
  const { KeylessSigner, rekorWitness, resolveIdentityToken } = await import('../sign/keyless.js');
  const identityToken = await resolveIdentityToken({
    token: flags['identity-token'],
    tokenEnv: flags['identity-token-env'],
  });
  return {
    signer: new KeylessSigner({ identityToken, fulcioUrl: flags['fulcio-url'] }),
    witnesses: [rekorWitness({ rekorUrl: flags['rekor-url'] })],
  };
}

/** Flags of keyless verification, shared by the verifying commands. */
export const keylessVerifyFlags = {
  'certificate-identity': {
    type: 'string',
    valueName: 'ID',
    description: "keyless: the signer's certificate identity (email or URI), exactly",
  },
  'certificate-oidc-issuer': {
    type: 'string',
    valueName: 'URL',
    description: 'keyless: the OIDC issuer the certificate was issued for, exactly',
  },
  'trusted-root': {
    type: 'string',
    valueName: 'FILE',
    description: 'keyless: sigstore trusted_root.json (Fulcio CA, Rekor and CT log keys)',
  },
} as const;

/** The keyless policy the flags above ask for; undefined when none of them is given. */
export async function keylessPolicyFromFlags(flags: {
  'certificate-identity'?: string;
  'certificate-oidc-issuer'?: string;
  'trusted-root'?: string;
}): Promise<KeylessPolicy | undefined> {
  const identity = flags['certificate-identity'];
  const issuer = flags['certificate-oidc-issuer'];
  const root = flags['trusted-root'];
  if (identity === undefined && issuer === undefined && root === undefined) return undefined;
  if (!identity || !issuer) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      'keyless verification needs both --certificate-identity and --certificate-oidc-issuer',
    );
  }
  if (!root) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      'keyless verification needs --trusted-root FILE (the sigstore trusted_root.json of your Fulcio and Rekor)',
    );
  }
  const { loadTrustedRoot } = await import('../sign/keyless.js');
  return { identity, issuer, trustedRoot: await loadTrustedRoot(root) };
}
