/**
 * sign/payload: what gets signed, built and parsed without I/O. The simple-signing payload of cosign's legacy
 * `.sig` form, the in-toto statement cosign signs for the bundle form (predicate type
 * `https://sigstore.dev/cosign/sign/v1`), and DSSE's pre-authentication encoding.
 */
import { GantryError } from '../errors/index.js';
import { digestAlgorithm, digestHex, isDigest } from '../oci/index.js';
import { COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_STATEMENT_V1, SIMPLE_SIGNING_TYPE } from './constants.js';

/** cosign's simple-signing payload (containers/image "atomic container signature" layout). */
export interface SimpleSigningPayload {
  critical: {
    identity: { 'docker-reference': string };
    image: { 'docker-manifest-digest': string };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

export interface ImageClaim {
  /** `host/repo` as cosign writes it (no tag, no digest). */
  dockerReference: string;
  manifestDigest: string;
  annotations?: Record<string, string>;
}

/**
 * The payload bytes for the legacy form, with cosign's field order; `optional` is null without annotations,
 * as cosign marshals a nil map.
 */
export function simpleSigningPayload(claim: ImageClaim): Buffer {
  const payload: SimpleSigningPayload = {
    critical: {
      identity: { 'docker-reference': claim.dockerReference },
      image: { 'docker-manifest-digest': claim.manifestDigest },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional: hasEntries(claim.annotations) ? { ...claim.annotations } : null,
  };
  return Buffer.from(JSON.stringify(payload));
}

export function parseSimpleSigningPayload(bytes: Buffer): SimpleSigningPayload {
  const value = parseJson(bytes, 'simple-signing payload') as Partial<SimpleSigningPayload>;
  const critical = value.critical;
  if (
    typeof critical?.identity?.['docker-reference'] !== 'string' ||
    typeof critical.image?.['docker-manifest-digest'] !== 'string' ||
    typeof critical.type !== 'string'
  ) {
    throw new GantryError('MANIFEST_INVALID', 'simple-signing payload lacks critical.identity/image/type');
  }
  const optional = value.optional;
  return {
    critical,
    optional: typeof optional === 'object' && optional !== null ? optional : null,
  } as SimpleSigningPayload;
}

/** An in-toto v1 statement about one image manifest. */
export interface InTotoStatement {
  _type: string;
  subject: { name?: string; digest: Record<string, string>; annotations?: Record<string, unknown> }[];
  predicateType: string;
  predicate?: unknown;
}

/**
 * The statement signed for the bundle form. cosign writes only the subject digest; gantry also names the image
 * (`name`: the docker reference) and its `--annotations`, so the bundle form binds the same claims as the
 * legacy payload. cosign reads only the digest and predicate type, so its verifiers accept both.
 */
export function signStatement(claim: ImageClaim): Buffer {
  const subject: InTotoStatement['subject'][number] = {
    name: claim.dockerReference,
    digest: { [digestAlgorithm(claim.manifestDigest)]: digestHex(claim.manifestDigest) },
  };
  if (hasEntries(claim.annotations)) subject.annotations = { ...claim.annotations };
  const statement: InTotoStatement = {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [subject],
    predicateType: COSIGN_SIGN_PREDICATE_TYPE,
  };
  return Buffer.from(JSON.stringify(statement));
}

export function parseStatement(bytes: Buffer): InTotoStatement {
  const value = parseJson(bytes, 'in-toto statement') as Partial<InTotoStatement>;
  if (
    typeof value._type !== 'string' ||
    typeof value.predicateType !== 'string' ||
    !Array.isArray(value.subject) ||
    !value.subject.every((s) => typeof s === 'object' && s !== null && typeof s.digest === 'object')
  ) {
    throw new GantryError('MANIFEST_INVALID', 'in-toto statement lacks _type, subject or predicateType');
  }
  return value as InTotoStatement;
}

/** The `algorithm:hex` digests a statement's subjects name. */
export function statementDigests(statement: InTotoStatement): string[] {
  return statement.subject.flatMap((s) =>
    Object.entries(s.digest)
      .map(([algorithm, hex]) => `${algorithm}:${hex}`)
      .filter(isDigest),
  );
}

/** DSSE v1 pre-authentication encoding: what a DSSE signature covers. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

function hasEntries(record: Record<string, string> | undefined): record is Record<string, string> {
  return record !== undefined && Object.keys(record).length > 0;
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new GantryError('MANIFEST_INVALID', `${what} is not valid JSON`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GantryError('MANIFEST_INVALID', `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
