/**
 * sign: cosign-compatible keys, key-based and keyless (Fulcio, Rekor) signing, and verification of images in both of
 * cosign's storage forms.
 */

export { parseAnnotations, parseSignReference } from './args.js';
export { checkBundleWithKey, publicKeyTrust, signingKeyText, signStatementBundle } from './bundle.js';
export {
  type Claims,
  checkKeylessLegacyLayer,
  checkKeylessSignatureBundle,
  type Expectation,
  type RejectReason,
  sameRepository,
  type Verdict,
} from './checks.js';
export * from './constants.js';
export {
  type KeyPairFiles,
  loadKeySigner,
  readPrivateKeyFile,
  readPublicKeyFile,
  writeNewKeyPair,
} from './key-files.js';
export {
  checkBundleKeyless,
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  type KeylessCheck,
  type KeylessIdentity,
  type KeylessPolicy,
  KeylessSigner,
  type KeylessSignerOptions,
  loadTrustedRoot,
  rekorWitness,
  resolveIdentityToken,
} from './keyless.js';
export {
  decodePem,
  decryptPrivateKey,
  encodePem,
  encryptPrivateKey,
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  type KeyPair,
  KeySigner,
  keyHint,
  publicKeyPem,
} from './keys.js';
export { type PasswordOptions, readPassword } from './password.js';
export {
  type ImageClaim,
  type InTotoStatement,
  parseSimpleSigningPayload,
  parseStatement,
  preAuthEncoding,
  type SimpleSigningPayload,
  signStatement,
  simpleSigningPayload,
  statementDigests,
} from './payload.js';
export {
  dockerReference,
  resolveSignedImage,
  type SignatureFormat,
  type SignImageOptions,
  type SignImageResult,
  signImage,
} from './sign.js';
export { legacyTag, RegistrySignatureStore, signatureConfig } from './store.js';
export type * from './types.js';
export {
  assertVerified,
  type RejectedSignature,
  type StoredForm,
  type VerifiedSignature,
  type VerifyImageOptions,
  type VerifyImageResult,
  verifyImage,
} from './verify.js';
