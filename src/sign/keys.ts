/**
 * sign/keys: signing keys in cosign's formats. Generates ECDSA P-256 key pairs, encrypts private keys the way cosign
 * does (PEM `ENCRYPTED SIGSTORE PRIVATE KEY` around go-securesystemslib's JSON envelope: scrypt key derivation +
 * NaCl secretbox over the PKCS#8 DER), decrypts cosign and sigstore keys, imports plain PEM EC keys, and turns a
 * private key into a `Signer`. Bytes in, bytes out: reading files and passwords is the caller's job.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scrypt,
  sign as signData,
} from 'node:crypto';
import nacl from 'tweetnacl';
import { GantryError } from '../errors/index.js';
import type { SignatureResult, Signer } from './types.js';

export const ENCRYPTED_SIGSTORE_KEY = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** What cosign before 2.0 wrote; still read by cosign and by gantry. */
export const ENCRYPTED_COSIGN_KEY = 'ENCRYPTED COSIGN PRIVATE KEY';

/** go-securesystemslib's scrypt strengths; cosign writes "standard" and reads all three. */
const SCRYPT_PARAMS = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
] as const;
const WRITE_PARAMS = SCRYPT_PARAMS[1];
const SALT_BYTES = 32;
const KEY_BYTES = nacl.secretbox.keyLength;
const NONCE_BYTES = nacl.secretbox.nonceLength;

interface EncryptedEnvelope {
  kdf: { name: 'scrypt'; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: 'nacl/secretbox'; nonce: string };
  ciphertext: string;
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateKeyPair(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** PEM as Go's encoding/pem writes it: 64-column base64 and a trailing newline. */
export function encodePem(type: string, der: Buffer): string {
  const body = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${body.join('\n')}\n-----END ${type}-----\n`;
}

/** The first PEM block of a text: its type and DER bytes. */
export function decodePem(text: string, subject?: string): { type: string; der: Buffer } {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!match) throw new GantryError('KEY_INVALID', 'not a PEM file', { subject });
  return { type: match[1] as string, der: Buffer.from((match[2] as string).replace(/\s+/g, ''), 'base64') };
}

/** Encrypts a private key as cosign's `cosign.key` (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`). */
export async function encryptPrivateKey(privateKey: KeyObject, password: Buffer): Promise<string> {
  const plaintext = privateKey.export({ format: 'der', type: 'pkcs8' });
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = await deriveKey(password, salt, WRITE_PARAMS);
  const ciphertext = nacl.secretbox(plaintext, nonce, key);
  // Field order and names as go-securesystemslib marshals its structs; []byte fields are standard base64.
  const envelope: EncryptedEnvelope = {
    kdf: { name: 'scrypt', params: { ...WRITE_PARAMS }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  return encodePem(ENCRYPTED_SIGSTORE_KEY, Buffer.from(JSON.stringify(envelope)));
}

/** Decrypts a cosign/sigstore encrypted private key; a wrong password is an INVALID_ARGUMENT naming the file. */
export async function decryptPrivateKey(der: Buffer, password: Buffer, subject?: string): Promise<KeyObject> {
  const envelope = parseEnvelope(der, subject);
  const params = envelope.kdf.params;
  // Unknown scrypt parameters could make us burn minutes and gigabytes: accept only what cosign writes.
  if (!SCRYPT_PARAMS.some((p) => p.N === params.N && p.r === params.r && p.p === params.p)) {
    throw new GantryError('KEY_INVALID', `unsupported scrypt parameters ${JSON.stringify(params)}`, {
      subject,
    });
  }
  const nonce = Buffer.from(envelope.cipher.nonce, 'base64');
  if (nonce.length !== NONCE_BYTES)
    throw new GantryError('KEY_INVALID', 'encrypted key has a bad nonce', { subject });
  const key = await deriveKey(password, Buffer.from(envelope.kdf.salt, 'base64'), params);
  const plaintext = nacl.secretbox.open(Buffer.from(envelope.ciphertext, 'base64'), nonce, key);
  if (!plaintext) {
    throw new GantryError('KEY_INVALID', 'cannot decrypt the private key: wrong password?', { subject });
  }
  return checkedP256(
    createPrivateKey({ key: Buffer.from(plaintext), format: 'der', type: 'pkcs8' }),
    subject,
  );
}

/**
 * Reads a private key file's text: cosign's encrypted formats (needs the password), or an unencrypted PEM
 * `EC PRIVATE KEY` (SEC 1) or `PRIVATE KEY` (PKCS#8). Only ECDSA P-256 keys are accepted.
 */
export async function importPrivateKey(
  pem: string,
  options: { password?: () => Promise<Buffer>; subject?: string },
): Promise<KeyObject> {
  const { type, der } = decodePem(pem, options.subject);
  switch (type) {
    case ENCRYPTED_SIGSTORE_KEY:
    case ENCRYPTED_COSIGN_KEY: {
      const password = options.password ? await options.password() : Buffer.alloc(0);
      return decryptPrivateKey(der, password, options.subject);
    }
    case 'EC PRIVATE KEY':
      return checkedP256(
        parseKey(() => createPrivateKey({ key: der, format: 'der', type: 'sec1' }), options),
        options.subject,
      );
    case 'PRIVATE KEY':
      return checkedP256(
        parseKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), options),
        options.subject,
      );
    default:
      throw new GantryError('KEY_INVALID', `unsupported private key PEM type "${type}"`, {
        subject: options.subject,
      });
  }
}

/** Reads a PEM public key (`PUBLIC KEY`, as cosign.pub holds), or the public half of a private key PEM. */
export function importPublicKey(pem: string, subject?: string): KeyObject {
  const { type } = decodePem(pem, subject);
  if (type !== 'PUBLIC KEY') {
    throw new GantryError('KEY_INVALID', `expected a PEM "PUBLIC KEY", got "${type}"`, { subject });
  }
  return checkedP256(
    parseKey(() => createPublicKey({ key: pem, format: 'pem' }), { subject }),
    subject,
  );
}

/** `cosign.pub`: the SubjectPublicKeyInfo PEM. */
export function publicKeyPem(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return encodePem('PUBLIC KEY', publicKey.export({ format: 'der', type: 'spki' }));
}

/** cosign's key hint in bundles: base64 of the SHA-256 of the DER public key. */
export function keyHint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest('base64');
}

/** A `Signer` over a P-256 private key: ECDSA with SHA-256, DER signatures (what cosign writes). */
export class KeySigner implements Signer {
  readonly publicKeyPem: string;

  constructor(private readonly privateKey: KeyObject) {
    this.publicKeyPem = publicKeyPem(privateKey);
  }

  async sign(data: Buffer): Promise<SignatureResult> {
    return {
      signature: signData('sha256', data, { key: this.privateKey, dsaEncoding: 'der' }),
      keyMaterial: { kind: 'publicKey', publicKeyPem: this.publicKeyPem },
    };
  }
}

function parseEnvelope(der: Buffer, subject?: string): EncryptedEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(der.toString('utf8'));
  } catch (cause) {
    throw new GantryError('KEY_INVALID', 'encrypted key is not valid JSON', { subject, cause });
  }
  const e = value as Partial<EncryptedEnvelope> | null;
  if (
    e?.kdf?.name !== 'scrypt' ||
    typeof e.kdf.salt !== 'string' ||
    typeof e.kdf.params !== 'object' ||
    e.cipher?.name !== 'nacl/secretbox' ||
    typeof e.cipher.nonce !== 'string' ||
    typeof e.ciphertext !== 'string'
  ) {
    throw new GantryError('KEY_INVALID', 'encrypted key must use scrypt and nacl/secretbox', {
      subject,
    });
  }
  return e as EncryptedEnvelope;
}

function deriveKey(
  password: Buffer,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is below cosign's standard parameters.
    const maxmem = 256 * params.N * params.r;
    scrypt(password, salt, KEY_BYTES, { ...params, maxmem }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

function parseKey(parse: () => KeyObject, options: { subject?: string }): KeyObject {
  try {
    return parse();
  } catch (cause) {
    throw new GantryError('KEY_INVALID', 'cannot parse the key', { subject: options.subject, cause });
  }
}

function checkedP256(key: KeyObject, subject?: string): KeyObject {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const kind =
      key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : key.asymmetricKeyType;
    throw new GantryError('KEY_INVALID', `only ECDSA P-256 keys are supported, got ${kind}`, {
      subject,
    });
  }
  return key;
}
