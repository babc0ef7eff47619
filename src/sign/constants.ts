/**
 * sign/constants: the media types, annotation keys and type URIs cosign and sigstore use, in one place so
 * signing, verifying and attestations agree with cosign byte for byte.
 */

/** Layer type of a simple-signing payload in a `.sig` manifest. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** Layer type of a DSSE envelope in a `.att` manifest. */
export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
/** Sigstore bundle v0.3: the referrer's artifactType and its one layer's media type. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

/** `critical.type` of a cosign simple-signing payload. */
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
/** The predicate type cosign gives an image signature stored as a bundle (`cosign sign --new-bundle-format`). */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';

/** Layer annotations of cosign's tag-schema manifests. */
export const Annotation = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
  predicateType: 'predicateType',
} as const;

/** Manifest annotations of bundle referrers (cosign specs/BUNDLE_SPEC.md). */
export const BundleAnnotation = {
  content: 'dev.sigstore.bundle.content',
  predicateType: 'dev.sigstore.bundle.predicateType',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
} as const;
