/**
 * attest/statement: in-toto Statement v1 — predicate types by cosign's short names, building a statement about
 * one image digest from a predicate file's bytes, and reading one back. Pure: no I/O.
 */
import { GantryError } from '../errors/index.js';
import { digestAlgorithm, digestHex } from '../oci/index.js';
import { IN_TOTO_STATEMENT_V1 } from '../sign/constants.js';

/** cosign writes v0.1 statements; verifiers accept both. */
const STATEMENT_TYPES = new Set([IN_TOTO_STATEMENT_V1, 'https://in-toto.io/Statement/v0.1']);

/** cosign's wrapper predicate for `--type custom`: the file's text under `Data`. */
const CUSTOM_PREDICATE_TYPE = 'https://cosign.sigstore.dev/attestation/v1';

/** `--type` short names, as cosign maps them (cmd/cosign/cli/options/predicate.go). */
export const PREDICATE_TYPES: Readonly<Record<string, string>> = {
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
  custom: CUSTOM_PREDICATE_TYPE,
};

export interface ResourceDescriptor {
  name?: string;
  digest: Record<string, string>;
}

export interface Statement {
  _type: string;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate?: unknown;
}

/** The predicate type URI for a `--type` value: a short name, or an absolute URI used as it is. */
export function predicateTypeFor(type: string): string {
  const known = PREDICATE_TYPES[type];
  if (known) return known;
  let url: URL | undefined;
  try {
    url = new URL(type);
  } catch {
    url = undefined;
  }
  if (!url || !/^[a-z][a-z0-9+.-]*:$/.test(url.protocol) || type.includes(' ')) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--type must be one of ${Object.keys(PREDICATE_TYPES).join(', ')} or a URI, got ${JSON.stringify(type)}`,
    );
  }
  return type;
}

export interface StatementOptions {
  /** The repository the image lives in, e.g. `registry.example/app` (cosign's subject name). */
  subjectName: string;
  /** The image manifest digest the statement is about. */
  digest: string;
  predicateType: string;
  /** The predicate file's bytes: a JSON object, except for cosign's `custom` type, which wraps any text. */
  predicate: Buffer;
  /** Source of the predicate, for messages. */
  predicateSource: string;
  /** Timestamp of a `custom` predicate; default now. */
  now?: Date;
}

export function buildStatement(options: StatementOptions): Statement {
  const predicate =
    options.predicateType === CUSTOM_PREDICATE_TYPE
      ? {
          Data: options.predicate.toString('utf8'),
          Timestamp: (options.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        }
      : parsePredicate(options.predicate, options.predicateSource);
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [
      {
        name: options.subjectName,
        digest: { [digestAlgorithm(options.digest)]: digestHex(options.digest) },
      },
    ],
    predicateType: options.predicateType,
    predicate,
  };
}

function parsePredicate(bytes: Buffer, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('INVALID_ARGUMENT', 'predicate is not valid JSON', { subject: source, cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GantryError('INVALID_ARGUMENT', 'predicate must be a JSON object', { subject: source });
  }
  return value as Record<string, unknown>;
}

/** Parses a DSSE payload as an in-toto statement; `subject` names the attestation in errors. */
export function parseStatement(payload: Buffer, subject: string): Statement {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', 'attestation payload is not JSON', { subject, cause });
  }
  const s = value as Partial<Statement> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s._type !== 'string' ||
    !STATEMENT_TYPES.has(s._type) ||
    typeof s.predicateType !== 'string' ||
    !Array.isArray(s.subject)
  ) {
    throw new GantryError('MANIFEST_INVALID', 'attestation payload is not an in-toto statement', { subject });
  }
  return s as Statement;
}

/** True when one of the statement's subjects carries `digest` (e.g. `sha256:…`). */
export function statementNamesDigest(statement: Statement, digest: string): boolean {
  const algorithm = digestAlgorithm(digest);
  const hex = digestHex(digest);
  return statement.subject.some(
    (s) => typeof s === 'object' && s !== null && s.digest?.[algorithm]?.toLowerCase() === hex,
  );
}
