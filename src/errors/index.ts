/**
 * errors: the one error type gantry throws. Every failure carries a code from a closed set, the input at
 * fault (a reference, file or registry) and the underlying cause; messages never contain credentials.
 */

export type ErrorCode =
  | 'INVALID_REFERENCE' // a reference, transport string or platform could not be parsed
  | 'INVALID_ARGUMENT' // a flag or option value is wrong
  | 'UNAUTHORIZED' // the registry rejected our credentials (401/403)
  | 'NOT_FOUND' // manifest, blob, tag or file does not exist
  | 'DIGEST_MISMATCH' // content did not hash to the digest it was fetched or written under
  | 'SIZE_MISMATCH' // content length differs from the descriptor's size
  | 'UNSUPPORTED_MEDIA_TYPE' // e.g. Docker schema1 manifests
  | 'MANIFEST_INVALID' // a manifest or index could not be parsed or is inconsistent
  | 'REGISTRY_ERROR' // the registry answered with an error we do not retry
  | 'NETWORK' // connection failures after retries
  | 'TLS' // certificate problems
  | 'RATE_LIMITED' // 429 after retries
  | 'TIMEOUT'
  | 'IO' // local filesystem errors
  | 'NO_MATCHING_PLATFORM'
  | 'CREDENTIAL_HELPER' // a docker-credential-* helper failed
  | 'NATIVE' // the native addon failed to load or run
  | 'SIGNATURE_INVALID' // a signature or attestation does not verify, or its payload names something else
  | 'UNTRUSTED_SIGNER' // it verifies, but not with the expected key, identity or issuer
  | 'NO_SIGNATURES' // the image has no signatures or attestations of the kind asked for
  | 'KEY_INVALID' // a key file cannot be read or decrypted (wrong password, unknown format)
  | 'INTERNAL';

export interface ErrorContext {
  /** The reference, file path or registry host the error is about. */
  subject?: string;
  cause?: unknown;
  /** HTTP status, when the error came from a registry. */
  status?: number;
}

/** The one error type: `code` is stable for programs, `message` is for people. */
export class GantryError extends Error {
  readonly code: ErrorCode;
  readonly subject: string | undefined;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(redactSecrets(context.subject ? `${context.subject}: ${message}` : message), {
      cause: context.cause,
    });
    this.name = 'GantryError';
    this.code = code;
    // Subjects can be URLs a user typed with credentials in them; programs may print them too.
    this.subject = context.subject === undefined ? undefined : redactSecrets(context.subject);
    this.status = context.status;
  }
}

export function isGantryError(err: unknown, code?: ErrorCode): err is GantryError {
  // By name as well as class: the CLI's entry point and each command are separate bundles, each with its own
  // copy of this class, and a library user may hold two copies of gantry.
  const gantry =
    err instanceof GantryError ||
    (err instanceof Error && err.name === 'GantryError' && typeof (err as GantryError).code === 'string');
  return gantry && (code === undefined || (err as GantryError).code === code);
}

/** Wraps any thrown value as a GantryError, keeping GantryErrors as they are. */
export function asGantryError(err: unknown, code: ErrorCode, message: string, subject?: string): GantryError {
  if (isGantryError(err)) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new GantryError(code, `${message}: ${detail}`, { subject, cause: err });
}

const SECRET_PATTERNS: [RegExp, string][] = [
  // user:password@ in URLs
  [/(\w+:\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***:***@'],
  // Authorization headers and bearer tokens
  [/(authorization"?:\s*"?)(basic|bearer)\s+[^\s"]+/gi, '$1$2 ***'],
  [/\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 ***'],
  // token= / password= / access_token= query or form parameters
  [/((?:access_)?token|password|secret)=([^&\s]+)/gi, '$1=***'],
  // the same fields in JSON bodies, e.g. a token endpoint's response quoted in an error
  [/("(?:\w*_)?(?:token|password|secret)")\s*:\s*"[^"]*"/gi, '$1:"***"'],
];

/** Removes credentials that may appear in URLs, headers or form bodies quoted in messages. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
