import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from '../../src/registry/challenge.js';
import {
  backoffDelay,
  parseLinkNext,
  parseRateLimit,
  parseRegistryErrors,
  parseRetryAfter,
  parseUploadRange,
} from '../../src/registry/headers.js';
import { referrersTag, withReferrer } from '../../src/registry/referrers.js';

describe('parseWwwAuthenticate', () => {
  it('parses a Bearer challenge with quoted params containing commas', () => {
    const [c] = parseWwwAuthenticate(
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
    );
    expect(c).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example.com/token',
        service: 'registry.example.com',
        scope: 'repository:a/b:pull,push',
      },
    });
  });

  it('parses several challenges in one header, case-insensitively, with escapes and unquoted values', () => {
    const challenges = parseWwwAuthenticate(
      'BASIC realm="a \\"quoted\\" realm", Bearer REALM=https://t/x,error=insufficient_scope',
    );
    expect(challenges).toEqual([
      { scheme: 'basic', params: { realm: 'a "quoted" realm' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', error: 'insufficient_scope' } },
    ]);
  });

  it('accepts several header values and ignores garbage', () => {
    expect(
      parseWwwAuthenticate(['Basic realm="r"', '"junk", Bearer realm="t"']).map((c) => c.scheme),
    ).toEqual(['basic', 'bearer']);
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('')).toEqual([]);
  });
});

describe('parseLinkNext', () => {
  const base = 'http://127.0.0.1:5000/v2/app/tags/list?n=2';
  it('resolves the next link against the request URL', () => {
    expect(parseLinkNext('</v2/app/tags/list?last=b&n=2>; rel="next"', base)).toBe(
      'http://127.0.0.1:5000/v2/app/tags/list?last=b&n=2',
    );
  });
  it('picks rel=next among several links and unquoted rel', () => {
    expect(parseLinkNext('<https://x/prev>; rel="prev", <https://x/a,b?n=1>; rel=next', base)).toBe(
      'https://x/a,b?n=1',
    );
  });
  it('returns undefined without a next link', () => {
    expect(parseLinkNext(undefined, base)).toBeUndefined();
    expect(parseLinkNext('<https://x/prev>; rel="prev"', base)).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  it('reads delta seconds', () => {
    expect(parseRetryAfter('3')).toBe(3000);
  });
  it('reads an HTTP date relative to now, never negative', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });
  it('ignores garbage', () => {
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  const policy = { baseDelayMs: 250, maxDelayMs: 30_000 };
  it('grows exponentially with full jitter', () => {
    expect(backoffDelay(0, policy, () => 0.999999)).toBe(249);
    expect(backoffDelay(3, policy, () => 0.999999)).toBe(1999);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });
  it('is capped, even for huge attempt numbers', () => {
    expect(backoffDelay(100, policy, () => 0.999999)).toBeLessThan(30_000);
    for (let attempt = 0; attempt < 50; attempt++) {
      const d = backoffDelay(attempt, policy);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });
});

describe('other header parsers', () => {
  it('parseUploadRange treats 0-0 as ambiguous', () => {
    expect(parseUploadRange('0-999')).toBe(1000);
    expect(parseUploadRange('bytes=0-1')).toBe(2);
    expect(parseUploadRange('0-0')).toBeUndefined();
    expect(parseUploadRange(undefined)).toBeUndefined();
  });

  it('parseRateLimit reads both header families', () => {
    const h = (m: Record<string, string>) => (n: string) => m[n];
    expect(
      parseRateLimit(h({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '7;w=21600' })),
    ).toEqual({
      limit: 100,
      remaining: 7,
    });
    expect(parseRateLimit(h({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1700000000' }))).toEqual({
      remaining: 3,
      reset: 1700000000,
    });
    expect(parseRateLimit(h({}))).toBeUndefined();
  });

  it('parseRegistryErrors reads the errors array only', () => {
    expect(parseRegistryErrors('{"errors":[{"code":"DIGEST_INVALID","message":"bad","detail":{}}]}')).toEqual(
      [{ code: 'DIGEST_INVALID', message: 'bad' }],
    );
    expect(parseRegistryErrors('404 page not found')).toEqual([]);
  });
});

describe('referrers fallback index', () => {
  const d = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 10,
  };
  it('names the tag after the subject digest', () => {
    expect(referrersTag(`sha256:${'b'.repeat(64)}`)).toBe(`sha256-${'b'.repeat(64)}`);
  });
  it('adds, dedupes and reports no change', () => {
    const first = withReferrer(undefined, d);
    expect(first?.manifests).toEqual([d]);
    expect(withReferrer(first, d)).toBeUndefined();
    const updated = withReferrer(first, { ...d, artifactType: 'x' });
    expect(updated?.manifests).toEqual([{ ...d, artifactType: 'x' }]);
  });
});
