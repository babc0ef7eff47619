/**
 * attest/create: `gantry attest` as a library call — an in-toto statement about one image digest, signed once as
 * a DSSE envelope (any `Signer`: key file or keyless), witnessed by a transparency log when one is given, and
 * stored in both forms: appended to cosign's `sha256-<hex>.att` manifest and pushed as a sigstore bundle referrer.
 */
import { createPublicKey } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import { bundleToJSON } from '@sigstore/bundle';
import {
  DSSEBundleBuilder,
  type Signature as SigstoreSignature,
  type Signer as SigstoreSigner,
  type Witness,
} from '@sigstore/sign';
import { asGantryError, GantryError } from '../errors/index.js';
import type { Descriptor } from '../oci/index.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../sign/constants.js';
import { keyHint } from '../sign/keys.js';
import type { SignatureResult, SignatureStore, SignedImage, Signer } from '../sign/types.js';
import { type Logger, silentLogger } from '../util/log.js';
import { legacyLayerFromBundle } from './legacy.js';
import { buildStatement, type Statement } from './statement.js';

export type AttestationFormat = 'legacy' | 'bundle' | 'both';

export interface AttestOptions {
  store: SignatureStore;
  image: SignedImage;
  /** The statement's subject name: the repository, e.g. `registry.example/app` (as cosign names it). */
  subjectName: string;
  predicateType: string;
  /** The predicate file's bytes and where they came from (for messages). */
  predicate: Buffer;
  predicateSource: string;
  signer: Signer;
  /** Transparency logs or timestamp authorities that countersign (keyless: Rekor); none for key files. */
  witnesses?: Witness[];
  /** Default 'both'. */
  format?: AttestationFormat;
  logger?: Logger;
}

export interface AttestResult {
  digest: string;
  predicateType: string;
  statement: Statement;
  bundle: SerializedBundle;
  /** Digest of the `.att` manifest now under `sha256-<hex>.att`, when written. */
  legacyManifest?: string;
  /** The bundle referrer's descriptor, when written. */
  referrer?: Descriptor;
}

/** Signs a statement as a DSSE bundle: the signer signs the PAE of the payload, witnesses countersign. */
export async function signStatement(options: {
  statement: Statement;
  signer: Signer;
  witnesses?: Witness[];
}): Promise<{ bundle: SerializedBundle; signature: SignatureResult }> {
  let last: SignatureResult | undefined;
  const adapter: SigstoreSigner = {
    async sign(data) {
      last = await options.signer.sign(data);
      return toSigstoreSignature(last);
    },
  };
  const builder = new DSSEBundleBuilder({ signer: adapter, witnesses: options.witnesses ?? [] });
  let bundle: SerializedBundle;
  try {
    const built = await builder.create({
      data: Buffer.from(JSON.stringify(options.statement)),
      type: IN_TOTO_PAYLOAD_TYPE,
    });
    bundle = withoutKeyIds(bundleToJSON(built));
  } catch (err) {
    throw asGantryError(err, 'NETWORK', 'could not sign the attestation');
  }
  if (!last) throw new GantryError('INTERNAL', 'the signer was not called');
  return { bundle, signature: last };
}

export async function attestImage(options: AttestOptions): Promise<AttestResult> {
  const logger = options.logger ?? silentLogger;
  const format = options.format ?? 'both';
  const digest = options.image.descriptor.digest;
  const statement = buildStatement({
    subjectName: options.subjectName,
    digest,
    predicateType: options.predicateType,
    predicate: options.predicate,
    predicateSource: options.predicateSource,
  });
  const { bundle, signature } = await signStatement({
    statement,
    signer: options.signer,
    witnesses: options.witnesses,
  });
  const result: AttestResult = { digest, predicateType: options.predicateType, statement, bundle };
  if (format !== 'bundle') {
    const layer = legacyLayerFromBundle(bundle, {
      predicateType: options.predicateType,
      certificateChainPem:
        signature.keyMaterial.kind === 'x509' ? signature.keyMaterial.certificateChainPem : undefined,
    });
    result.legacyManifest = await options.store.appendLegacy(options.image, 'att', [layer]);
    logger.info(`Wrote attestation to the .att manifest ${result.legacyManifest}`);
  }
  if (format !== 'legacy') {
    result.referrer = await options.store.putBundle(options.image, bundle, {
      content: 'dsse-envelope',
      predicateType: options.predicateType,
    });
    logger.info(`Wrote attestation bundle referrer ${result.referrer.digest}`);
  }
  return result;
}

/** A gantry signature as sigstore-js expects it: the PEM key with its hint, or the leaf certificate. */
function toSigstoreSignature(result: SignatureResult): SigstoreSignature {
  const material = result.keyMaterial;
  if (material.kind === 'publicKey') {
    return {
      signature: result.signature,
      key: {
        $case: 'publicKey',
        publicKey: material.publicKeyPem,
        hint: keyHint(createPublicKey(material.publicKeyPem)),
      },
    };
  }
  const leaf = material.certificateChainPem[0];
  if (!leaf) throw new GantryError('INTERNAL', 'keyless signer returned no certificate');
  return { signature: result.signature, key: { $case: 'x509Certificate', certificate: leaf } };
}

/**
 * sigstore-js copies the key hint into the DSSE signature's keyid; cosign's envelope verifier then skips the
 * signature (it compares keyids with its own notion of the key's id). cosign writes an empty keyid; so do we.
 * The signature covers only the payload type and payload, so this changes nothing it signed.
 */
function withoutKeyIds(bundle: SerializedBundle): SerializedBundle {
  if (!bundle.dsseEnvelope) return bundle;
  const signatures = bundle.dsseEnvelope.signatures.map((s) => ({ ...s, keyid: '' }));
  return { ...bundle, dsseEnvelope: { ...bundle.dsseEnvelope, signatures } };
}
