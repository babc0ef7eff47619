// Tests for GantryError and secret redaction: whatever a message quotes, credentials never reach the user.
import { describe, expect, it } from 'vitest';
import { asGantryError, GantryError, isGantryError, redactSecrets } from '../../src/errors/index.js';

describe('redactSecrets', () => {
  const cases: [string, string][] = [
    ['GET https://user:hunter2@r.io/v2/', 'GET https://***:***@r.io/v2/'],
    ['proxy http://a:b@127.0.0.1:3128 refused', 'proxy http://***:***@127.0.0.1:3128 refused'],
    ['Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic ***'],
    ['authorization:bearer abc.def.ghi', 'authorization:bearer ***'],
    ['sent Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig', 'sent Bearer ***'],
    ['https://auth/token?scope=x&token=s3cr3t&x=1', 'https://auth/token?scope=x&token=***&x=1'],
    ['grant_type=password&password=hunter2', 'grant_type=password&password=***'],
    ['access_token=abc refresh_token=def', 'access_token=*** refresh_token=***'],
    ['client_secret=xyz', 'client_secret=***'],
    ['{"token":"eyJabc","access_token":"eyJdef"}', '{"token":"***","access_token":"***"}'],
    ['{"password": "hunter2", "username": "u"}', '{"password":"***", "username": "u"}'],
    ['{"Authorization":"Basic dXNlcjpwYXNz"}', '{"Authorization":"Basic ***"}'],
  ];
  it.each(cases)('%s', (input, want) => {
    expect(redactSecrets(input)).toBe(want);
  });

  it.each([
    'docker://r.io/app:v1',
    'https://r.io/v2/a/b/manifests/sha256:abc',
    'basic authentication required',
    'a bearer token is needed',
    'token expired',
    '127.0.0.1:5000/a/b:c',
  ])('leaves %s alone', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });
});

describe('GantryError', () => {
  it('keeps code, subject, status and cause, and prefixes the message with the subject', () => {
    const cause = new Error('ECONNRESET');
    const err = new GantryError('NETWORK', 'connection lost', { subject: 'r.io', cause, status: 502 });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('GantryError');
    expect(err.code).toBe('NETWORK');
    expect(err.subject).toBe('r.io');
    expect(err.status).toBe(502);
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('r.io: connection lost');
  });

  it('has no subject prefix without a subject', () => {
    const err = new GantryError('INTERNAL', 'boom');
    expect(err.message).toBe('boom');
    expect(err.subject).toBeUndefined();
    expect(err.status).toBeUndefined();
  });

  it('redacts secrets in the message and in the subject', () => {
    const err = new GantryError('UNAUTHORIZED', 'rejected Authorization: Basic dXNlcjpwYXNz', {
      subject: 'https://me:hunter2@r.io',
    });
    expect(err.message).not.toContain('hunter2');
    expect(err.message).not.toContain('dXNlcjpwYXNz');
    expect(err.subject).toBe('https://***:***@r.io');
  });

  it('isGantryError checks the type and optionally the code', () => {
    const err = new GantryError('NOT_FOUND', 'gone');
    expect(isGantryError(err)).toBe(true);
    expect(isGantryError(err, 'NOT_FOUND')).toBe(true);
    expect(isGantryError(err, 'IO')).toBe(false);
    expect(isGantryError(new Error('x'))).toBe(false);
    expect(isGantryError('NOT_FOUND')).toBe(false);
  });
});

describe('asGantryError', () => {
  it('returns GantryErrors unchanged', () => {
    const err = new GantryError('TLS', 'bad cert');
    expect(asGantryError(err, 'IO', 'reading')).toBe(err);
  });

  it('wraps other errors, keeping the cause and redacting its message', () => {
    const cause = new Error('fetch https://u:pw@r.io failed');
    const err = asGantryError(cause, 'NETWORK', 'pinging', 'r.io');
    expect(err.code).toBe('NETWORK');
    expect(err.cause).toBe(cause);
    expect(err.subject).toBe('r.io');
    expect(err.message).toBe('r.io: pinging: fetch https://***:***@r.io failed');
  });

  it('wraps thrown non-errors', () => {
    const err = asGantryError('just a string', 'INTERNAL', 'oops');
    expect(err.message).toBe('oops: just a string');
    expect(err.cause).toBe('just a string');
  });
});
