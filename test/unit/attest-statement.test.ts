/** Unit tests for in-toto statements: predicate type names, building from predicate files, parsing, subjects. */
import { describe, expect, it } from 'vitest';
import {
  buildStatement,
  PREDICATE_TYPES,
  parseStatement,
  predicateTypeFor,
  type Statement,
  statementNamesDigest,
} from '../../src/attest/statement.js';
import { thrown } from '../support/thrown.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('predicateTypeFor', () => {
  it.each([
    ['slsaprovenance', 'https://slsa.dev/provenance/v0.2'],
    ['slsaprovenance1', 'https://slsa.dev/provenance/v1'],
    ['spdxjson', 'https://spdx.dev/Document'],
    ['cyclonedx', 'https://cyclonedx.org/bom'],
    ['custom', 'https://cosign.sigstore.dev/attestation/v1'],
    ['https://example.com/predicate/v1', 'https://example.com/predicate/v1'],
  ])('%s -> %s', (type, uri) => {
    expect(predicateTypeFor(type)).toBe(uri);
  });

  it('rejects a name that is neither known nor a URI, listing the known ones', () => {
    const err = thrown(() => predicateTypeFor('slsa'));
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(err.message).toContain(Object.keys(PREDICATE_TYPES).join(', '));
  });
});

describe('buildStatement', () => {
  const base = {
    subjectName: 'registry.example/app',
    digest: DIGEST,
    predicateSource: 'p.json',
  };

  it('makes a v1 statement naming the repository and digest, with the predicate as given', () => {
    const statement = buildStatement({
      ...base,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      predicate: Buffer.from('{"builder":{"id":"b"}}'),
    });
    expect(statement).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'registry.example/app', digest: { sha256: 'ab'.repeat(32) } }],
      predicateType: 'https://slsa.dev/provenance/v0.2',
      predicate: { builder: { id: 'b' } },
    });
  });

  it("wraps any text for cosign's custom type, with a timestamp", () => {
    const statement = buildStatement({
      ...base,
      predicateType: PREDICATE_TYPES.custom as string,
      predicate: Buffer.from('not json'),
      now: new Date('2026-01-02T03:04:05.678Z'),
    });
    expect(statement.predicate).toEqual({ Data: 'not json', Timestamp: '2026-01-02T03:04:05Z' });
  });

  it.each([
    ['invalid JSON', 'not json', 'predicate is not valid JSON'],
    ['an array', '[1]', 'predicate must be a JSON object'],
  ])('rejects %s for typed predicates, naming the file', (_, text, message) => {
    const err = thrown(() =>
      buildStatement({ ...base, predicateType: 'https://spdx.dev/Document', predicate: Buffer.from(text) }),
    );
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', subject: 'p.json' });
    expect(err.message).toContain(message);
  });
});

describe('parseStatement', () => {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value));

  it("accepts v1 and cosign's v0.1 statements", () => {
    for (const type of ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']) {
      const statement = parseStatement(
        encode({ _type: type, subject: [], predicateType: 'https://x.example/p', predicate: {} }),
        'att',
      );
      expect(statement._type).toBe(type);
    }
  });

  it.each([
    ['not JSON', Buffer.from('{'), 'not JSON'],
    [
      'another _type',
      encode({ _type: 'https://other/v1', subject: [], predicateType: 'p' }),
      'not an in-toto',
    ],
    [
      'no subject list',
      encode({ _type: 'https://in-toto.io/Statement/v1', predicateType: 'p' }),
      'not an in-toto',
    ],
  ])('rejects %s', (_, bytes, message) => {
    const err = thrown(() => parseStatement(bytes, 'att[0]'));
    expect(err).toMatchObject({ code: 'MANIFEST_INVALID', subject: 'att[0]' });
    expect(err.message).toContain(message);
  });
});

describe('statementNamesDigest', () => {
  const statement: Statement = {
    _type: 'https://in-toto.io/Statement/v1',
    predicateType: 'p',
    subject: [
      { name: 'a', digest: { sha512: 'ff' } },
      { name: 'b', digest: { sha256: 'AB'.repeat(32) } },
    ],
  };

  it('finds the digest among the subjects, case-insensitively', () => {
    expect(statementNamesDigest(statement, DIGEST)).toBe(true);
  });

  it('is false for another digest', () => {
    expect(statementNamesDigest(statement, `sha256:${'cd'.repeat(32)}`)).toBe(false);
  });
});
