/**
 * registry/headers: pure parsers for the HTTP headers and bodies the registry protocol relies on — `Link`
 * pagination, `Retry-After`, rate-limit headers, upload `Range` and the JSON error body — plus the retry
 * backoff schedule. Nothing here does I/O.
 */

/** The target of the `rel="next"` link in one or more `Link` header values, resolved against `base`. */
export function parseLinkNext(
  headerValues: string | readonly string[] | undefined,
  base: string,
): string | undefined {
  if (headerValues === undefined) return undefined;
  const values = typeof headerValues === 'string' ? [headerValues] : headerValues;
  for (const value of values) {
    // Each link is `<uri>; param=value; ...`; URIs may contain commas, so scan link by link.
    const linkRe = /<([^>]*)>((?:\s*;\s*[^;,]+(?:=(?:"[^"]*"|[^;,]*))?)*)/g;
    for (const m of value.matchAll(linkRe)) {
      const params = m[2] ?? '';
      const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(params);
      const relValue = rel?.[1] ?? rel?.[2];
      if (relValue?.split(/\s+/).some((r) => r.toLowerCase() === 'next')) {
        try {
          return new URL(m[1] ?? '', base).toString();
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

/**
 * `Retry-After` as milliseconds to wait: delta-seconds or an HTTP date (relative to `now`). Undefined when
 * absent or unparseable; never negative.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export interface RateLimitInfo {
  limit?: number;
  remaining?: number;
  /** As the registry reported it: seconds until reset (`RateLimit-Reset`) or an epoch (`X-RateLimit-Reset`). */
  reset?: number;
}

type HeaderLookup = (name: string) => string | undefined;

/** Rate-limit headers in either the IETF draft form (`RateLimit-*`, e.g. `100;w=21600`) or `X-RateLimit-*`. */
export function parseRateLimit(header: HeaderLookup): RateLimitInfo | undefined {
  const num = (...names: string[]): number | undefined => {
    for (const name of names) {
      const m = /^\s*(\d+)/.exec(header(name) ?? '');
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  const info: RateLimitInfo = {};
  const limit = num('ratelimit-limit', 'x-ratelimit-limit');
  const remaining = num('ratelimit-remaining', 'x-ratelimit-remaining');
  const reset = num('ratelimit-reset', 'x-ratelimit-reset');
  if (limit !== undefined) info.limit = limit;
  if (remaining !== undefined) info.remaining = remaining;
  if (reset !== undefined) info.reset = reset;
  return Object.keys(info).length > 0 ? info : undefined;
}

/**
 * Bytes an upload session holds, from its `Range: 0-<last>` header; undefined when absent or ambiguous.
 * `0-0` is ambiguous (distribution sends it for both 0 and 1 bytes received), so callers start a fresh session.
 */
export function parseUploadRange(value: string | undefined): number | undefined {
  const m = /^\s*(?:bytes=)?0-(\d+)\s*$/.exec(value ?? '');
  if (!m) return undefined;
  const end = Number(m[1]);
  return end === 0 ? undefined : end + 1;
}

export interface RegistryErrorEntry {
  code: string;
  message: string;
}

/** The `errors` array of a registry's JSON error body; [] for anything else. */
export function parseRegistryErrors(body: string): RegistryErrorEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return [];
  }
  const errors = (value as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e: unknown) => {
    if (typeof e !== 'object' || e === null) return [];
    const { code, message } = e as { code?: unknown; message?: unknown };
    return [
      {
        code: typeof code === 'string' ? code : 'UNKNOWN',
        message: typeof message === 'string' ? message : '',
      },
    ];
  });
}

/** `CODE: message; CODE: message` for error messages, bounded in length. */
export function formatRegistryErrors(errors: readonly RegistryErrorEntry[]): string {
  const text = errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): exponential with full jitter, i.e. uniform in
 * [0, min(max, base * 2^attempt)], which spreads out clients that failed together.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
