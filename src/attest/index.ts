/**
 * attest: in-toto attestations of images — statements, DSSE envelopes signed with a key or keyless, stored as
 * cosign's `.att` tag-schema manifests and as sigstore-bundle referrers — and their verification.
 */
export {
  type AttestationFormat,
  type AttestOptions,
  type AttestResult,
  attestImage,
  signStatement,
} from './create.js';
export {
  buildStatement,
  PREDICATE_TYPES,
  parseStatement,
  predicateTypeFor,
  type Statement,
  type StatementOptions,
} from './statement.js';
export {
  type AttestationTrust,
  assertAttestationsVerified,
  type VerifyAttestationsOptions,
  type VerifyAttestationsResult,
  verifyAttestations,
} from './verify.js';
