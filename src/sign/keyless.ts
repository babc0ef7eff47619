/**
 * sign/keyless: Sigstore keyless signing and its verification. Signing: an OIDC token (given, from an environment
 * variable such as GitLab's ID tokens, or requested from GitHub Actions) buys a short-lived Fulcio certificate for
 * an ephemeral P-256 key; `rekorWitness` records each signature in Rekor. Verifying: a sigstore bundle is checked
 * with @sigstore/verify against a trusted root, and its certificate against the expected identity and issuer.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, sign as signData } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Bundle, bundleFromJSON, type SerializedBundle } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { FulcioSigner, RekorWitness, type Signer as SigstoreSigner, type Witness } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { asGantryError, GantryError, isGantryError } from '../errors/index.js';
import type { SignatureResult, Signer } from './types.js';

/** Where the public Sigstore instance lives; tests and private deployments pass their own. */
export const DEFAULT_FULCIO_URL = 'https://fulcio.sigstore.dev';
export const DEFAULT_REKOR_URL = 'https://rekor.sigstore.dev';
/** The audience Fulcio expects in OIDC tokens. */
const SIGSTORE_AUDIENCE = 'sigstore';
const TOKEN_REQUEST_TIMEOUT_MS = 30_000;
const TOKEN_REQUEST_ATTEMPTS = 3;

export interface IdentityTokenOptions {
  /** `--identity-token`: the token itself, or a file holding it. */
  token?: string;
  /** `--identity-token-env`: an environment variable holding the token (GitLab `id_tokens:`). */
  tokenEnv?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * The OIDC token to sign with: the explicit token (or file), else the named variable, else `SIGSTORE_ID_TOKEN`,
 * else one requested from GitHub Actions (`permissions: id-token: write`).
 */
export async function resolveIdentityToken(options: IdentityTokenOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  if (options.token) {
    const fromFile = await readFile(options.token, 'utf8').catch(() => undefined);
    return checkJwt(fromFile?.trim() ?? options.token, '--identity-token');
  }
  if (options.tokenEnv) {
    const value = env[options.tokenEnv];
    if (!value) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `environment variable ${options.tokenEnv} is empty or unset`,
        {
          subject: '--identity-token-env',
        },
      );
    }
    return checkJwt(value.trim(), options.tokenEnv);
  }
  if (env.SIGSTORE_ID_TOKEN) return checkJwt(env.SIGSTORE_ID_TOKEN.trim(), 'SIGSTORE_ID_TOKEN');
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (url && bearer) return checkJwt(await requestGitHubToken(url, bearer), 'GitHub Actions id-token');
  throw new GantryError(
    'INVALID_ARGUMENT',
    'keyless signing needs an OIDC token: pass --identity-token, name a variable with --identity-token-env ' +
      '(GitLab id_tokens), set SIGSTORE_ID_TOKEN, or run in GitHub Actions with `permissions: id-token: write`',
  );
}

async function requestGitHubToken(requestUrl: string, bearer: string): Promise<string> {
  const url = new URL(requestUrl);
  url.searchParams.set('audience', SIGSTORE_AUDIENCE);
  let lastError: unknown;
  for (let attempt = 1; attempt <= TOKEN_REQUEST_ATTEMPTS; attempt++) {
    try {
      const res = await fetch(url, {
        headers: { accept: 'application/json', authorization: `Bearer ${bearer}` },
        signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
      });
      if (res.status >= 500) {
        lastError = new Error(`HTTP ${res.status}`);
        continue;
      }
      if (!res.ok) {
        throw new GantryError(
          'UNAUTHORIZED',
          `GitHub Actions refused the id-token request (HTTP ${res.status})`,
          {
            subject: 'ACTIONS_ID_TOKEN_REQUEST_URL',
            status: res.status,
          },
        );
      }
      const body = (await res.json()) as { value?: unknown };
      if (typeof body.value !== 'string') {
        throw new GantryError('INVALID_ARGUMENT', 'GitHub Actions answered without a token', {
          subject: 'ACTIONS_ID_TOKEN_REQUEST_URL',
        });
      }
      return body.value;
    } catch (err) {
      if (isGantryError(err)) throw err;
      lastError = err;
    }
  }
  throw asGantryError(
    lastError,
    'NETWORK',
    'could not get an id-token from GitHub Actions',
    'ACTIONS_ID_TOKEN_REQUEST_URL',
  );
}

/** The claims of a JWT, unverified (Fulcio verifies it); throws without quoting the token. */
function jwtClaims(token: string, source: string): Record<string, unknown> {
  const part = token.split('.')[1];
  try {
    const claims: unknown = JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
    if (typeof claims === 'object' && claims !== null) return claims as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new GantryError('INVALID_ARGUMENT', 'the OIDC token is not a JWT', { subject: source });
}

function checkJwt(token: string, source: string): string {
  const claims = jwtClaims(token, source);
  if (
    typeof claims.iss !== 'string' ||
    (typeof claims.sub !== 'string' && typeof claims.email !== 'string')
  ) {
    throw new GantryError('INVALID_ARGUMENT', 'the OIDC token has no issuer or subject claim', {
      subject: source,
    });
  }
  return token;
}

export interface KeylessSignerOptions {
  identityToken: string;
  /** Default: the public Fulcio. */
  fulcioUrl?: string;
  timeoutMs?: number;
}

/** Fulcio certificates live ten minutes; one is reused for signatures made within this window of its issue. */
const CERTIFICATE_REUSE_MS = 5 * 60_000;

/**
 * A `Signer` with an ephemeral P-256 key certified by Fulcio for the token's identity. The certificate is
 * requested on the first signature and reused for the signer's later ones while it is fresh.
 */
export class KeylessSigner implements Signer {
  private readonly key: KeyObject;
  private certificate: { pem: Promise<string>; requestedAt: number } | undefined;

  constructor(private readonly options: KeylessSignerOptions) {
    this.key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  }

  async sign(data: Buffer): Promise<SignatureResult> {
    if (!this.certificate || Date.now() - this.certificate.requestedAt > CERTIFICATE_REUSE_MS) {
      this.certificate = { pem: this.requestCertificate(), requestedAt: Date.now() };
    }
    const pending = this.certificate;
    // A failed request is not kept: the next signature asks Fulcio again.
    const certificate = await pending.pem.catch((err: unknown) => {
      if (this.certificate === pending) this.certificate = undefined;
      throw err;
    });
    return {
      signature: signData('sha256', data, { key: this.key, dsaEncoding: 'der' }),
      keyMaterial: { kind: 'x509', certificateChainPem: [certificate] },
    };
  }

  private async requestCertificate(): Promise<string> {
    const publicKeyPem = createPublicKey(this.key).export({ format: 'pem', type: 'spki' }) as string;
    const keyHolder: SigstoreSigner = {
      sign: async (data) => ({
        signature: signData('sha256', data, { key: this.key, dsaEncoding: 'der' }),
        key: { $case: 'publicKey', publicKey: publicKeyPem },
      }),
    };
    const fulcioUrl = this.options.fulcioUrl ?? DEFAULT_FULCIO_URL;
    const fulcio = new FulcioSigner({
      fulcioBaseURL: fulcioUrl,
      identityProvider: { getToken: async () => this.options.identityToken },
      keyHolder,
      timeout: this.options.timeoutMs ?? 30_000,
      retry: 2,
    });
    try {
      // FulcioSigner signs a proof of possession, gets the certificate, then signs what it is given.
      const { key } = await fulcio.sign(Buffer.alloc(0));
      if (key.$case !== 'x509Certificate') throw new Error('Fulcio returned no certificate');
      return key.certificate;
    } catch (err) {
      throw sigstoreError(
        err,
        'Fulcio did not issue a signing certificate',
        fulcioUrl,
        this.options.identityToken,
      );
    }
  }
}

/**
 * A Rekor (v1 API) witness: records each signature in the transparency log (`hashedrekord` for message
 * signatures, `intoto` for DSSE envelopes) and returns the entry for the bundle.
 */
export function rekorWitness(options: { rekorUrl?: string; timeoutMs?: number } = {}): Witness {
  const rekorUrl = options.rekorUrl ?? DEFAULT_REKOR_URL;
  const witness = new RekorWitness({
    rekorBaseURL: rekorUrl,
    // DSSE envelopes go in as `intoto` entries, as cosign records attestations: the entry carries the envelope's
    // signature and payload hash itself, where a `dsse` entry relies on Rekor to canonicalise them.
    entryType: 'intoto',
    timeout: options.timeoutMs ?? 30_000,
    retry: 2,
  });
  return {
    async testify(content, publicKey) {
      try {
        return await witness.testify(content, publicKey);
      } catch (err) {
        throw sigstoreError(err, 'Rekor did not record the signature', rekorUrl);
      }
    },
  };
}

/** Wraps a sigstore-js failure without ever quoting the identity token (FulcioSigner puts it in messages). */
function sigstoreError(err: unknown, message: string, subject: string, secret?: string): GantryError {
  const detail = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  let text = `${message}: ${detail}${cause ? `: ${cause.message}` : ''}`;
  if (secret) text = text.split(secret).join('***');
  // sigstore-js's HTTPError carries the status; 400/401/403 mean the token or request was refused, not the network.
  const status = (cause as { statusCode?: unknown } | undefined)?.statusCode;
  const refused = status === 400 || status === 401 || status === 403;
  return new GantryError(refused ? 'UNAUTHORIZED' : 'NETWORK', text, {
    subject,
    status: typeof status === 'number' ? status : undefined,
  });
}

/** What a keyless signature must show: a certificate from the trusted root's CA for this identity and issuer. */
export interface KeylessPolicy {
  trustedRoot: TrustedRoot;
  /** `--certificate-identity`: the certificate's SAN (email or URI), matched exactly. */
  identity: string;
  /** `--certificate-oidc-issuer`: the Fulcio issuer extension, matched exactly. */
  issuer: string;
}

/** The signer a certificate names. */
export interface KeylessIdentity {
  identity: string | undefined;
  issuer: string | undefined;
}

export type KeylessRejectReason =
  /** Not a bundle sigstore-js can read. */
  | 'invalid-payload'
  /** Signed with a key, not a Fulcio certificate. */
  | 'wrong-key'
  /** The signature does not match the content, or the transparency log entry does not match the signature. */
  | 'bad-signature'
  /** The certificate does not chain to the trusted root's CA, or lacks an SCT or a trusted timestamp. */
  | 'untrusted-certificate'
  /** The certificate was issued to another identity or by another OIDC issuer. */
  | 'wrong-signer';

export type KeylessCheck =
  | { ok: true; signer: KeylessIdentity }
  | { ok: false; reason: KeylessRejectReason; message: string };

/** Reads a sigstore `trusted_root.json` (Fulcio CAs, Rekor and CT log keys), as cosign's `--trusted-root`. */
export async function loadTrustedRoot(path: string): Promise<TrustedRoot> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw asGantryError(err, 'IO', 'cannot read the trusted root', path);
  });
  try {
    return TrustedRoot.fromJSON(JSON.parse(text));
  } catch (cause) {
    throw new GantryError('INVALID_ARGUMENT', 'not a sigstore trusted_root.json', { subject: path, cause });
  }
}

/**
 * Verifies a keyless sigstore bundle with @sigstore/verify: the certificate chains to the trusted Fulcio CA and
 * carries an SCT, the Rekor entry is included and matches, the signature covers `artifact` (message signatures;
 * the digest in the bundle otherwise) or the DSSE envelope; then the certificate's identity and issuer must be
 * exactly the policy's. A verdict, not a throw, so callers can report every signature they looked at.
 */
export function checkBundleKeyless(
  serialized: SerializedBundle,
  policy: KeylessPolicy,
  artifact?: Buffer,
): KeylessCheck {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(serialized);
  } catch (err) {
    return { ok: false, reason: 'invalid-payload', message: `not a valid sigstore bundle: ${describe(err)}` };
  }
  if (bundle.verificationMaterial.content.$case === 'publicKey') {
    return {
      ok: false,
      reason: 'wrong-key',
      message: 'signed with a key, not a Fulcio certificate; verify it with --key',
    };
  }
  let signer: ReturnType<Verifier['verify']>;
  try {
    const verifier = new Verifier(toTrustMaterial(policy.trustedRoot), {
      tlogThreshold: 1,
      ctlogThreshold: 1,
      timestampThreshold: 1,
    });
    signer = verifier.verify(toSignedEntity(bundle, artifact));
  } catch (err) {
    return rejectVerification(err);
  }
  const found: KeylessIdentity = {
    identity: signer.identity?.subjectAlternativeName,
    issuer: signer.identity?.extensions?.issuer,
  };
  if (found.identity !== policy.identity) {
    return {
      ok: false,
      reason: 'wrong-signer',
      message: `certificate identity is ${JSON.stringify(found.identity ?? '')}, not the expected ${JSON.stringify(policy.identity)}`,
    };
  }
  if (found.issuer !== policy.issuer) {
    return {
      ok: false,
      reason: 'wrong-signer',
      message: `certificate OIDC issuer is ${JSON.stringify(found.issuer ?? '')}, not the expected ${JSON.stringify(policy.issuer)}`,
    };
  }
  return { ok: true, signer: found };
}

/** One clear sentence per @sigstore/verify error code. */
function rejectVerification(err: unknown): KeylessCheck {
  const code = (err as { code?: unknown }).code;
  const detail = describe(err);
  switch (code) {
    case 'SIGNATURE_ERROR':
      return {
        ok: false,
        reason: 'bad-signature',
        message: 'signature does not match the signed content (altered?)',
      };
    case 'TLOG_ERROR':
    case 'TLOG_BODY_ERROR':
    case 'TLOG_INCLUSION_PROOF_ERROR':
    case 'TLOG_INCLUSION_PROMISE_ERROR':
    case 'TLOG_MISSING_INCLUSION_ERROR':
      return {
        ok: false,
        reason: 'bad-signature',
        message: `transparency log entry does not verify: ${detail}`,
      };
    case 'CERTIFICATE_ERROR':
    case 'TIMESTAMP_ERROR':
    case 'PUBLIC_KEY_ERROR':
      return { ok: false, reason: 'untrusted-certificate', message: `certificate is not trusted: ${detail}` };
    default:
      return { ok: false, reason: 'invalid-payload', message: `bundle does not verify: ${detail}` };
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
