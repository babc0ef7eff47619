/** Unit tests for sign/keys: cosign's encrypted key format, PEM handling, key import and the key signer. */
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodePem,
  decryptPrivateKey,
  ENCRYPTED_COSIGN_KEY,
  encodePem,
  encryptPrivateKey,
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  KeySigner,
  keyHint,
  publicKeyPem,
} from '../../src/sign/keys.js';

const password = Buffer.from('s3cret');

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('encrypted private keys', () => {
  it('round-trips through the sigstore PEM with the password', async () => {
    const { privateKey } = generateKeyPair();
    const pem = await encryptPrivateKey(privateKey, password);
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    const imported = await importPrivateKey(pem, { password: async () => password });
    expect(publicKeyPem(imported)).toBe(publicKeyPem(privateKey));
  });

  it('reads the older ENCRYPTED COSIGN PRIVATE KEY type too', async () => {
    const { privateKey } = generateKeyPair();
    const { der } = decodePem(await encryptPrivateKey(privateKey, password));
    const imported = await importPrivateKey(encodePem(ENCRYPTED_COSIGN_KEY, der), {
      password: async () => password,
    });
    expect(keyHint(imported)).toBe(keyHint(privateKey));
  });

  it('names the file when the password is wrong', async () => {
    const { privateKey } = generateKeyPair();
    const { der } = decodePem(await encryptPrivateKey(privateKey, password));
    const err = await rejection(decryptPrivateKey(der, Buffer.from('nope'), 'cosign.key'));
    expect(err.message).toBe('cosign.key: cannot decrypt the private key: wrong password?');
  });

  it('refuses scrypt parameters cosign never writes (a cheap way to burn CPU and memory)', async () => {
    const { privateKey } = generateKeyPair();
    const { der } = decodePem(await encryptPrivateKey(privateKey, password));
    const envelope = JSON.parse(der.toString('utf8'));
    envelope.kdf.params.N = 1 << 24;
    const err = await rejection(decryptPrivateKey(Buffer.from(JSON.stringify(envelope)), password));
    expect(err.message).toContain('unsupported scrypt parameters');
  });
});

describe('plain keys', () => {
  it('imports SEC 1 and PKCS#8 PEM EC P-256 keys without a password', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const type of ['sec1', 'pkcs8'] as const) {
      const pem = privateKey.export({ format: 'pem', type }) as string;
      expect(keyHint(await importPrivateKey(pem, {}))).toBe(keyHint(privateKey));
    }
  });

  it('rejects other curves and key types, naming what it got', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const pem = p384.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect((await rejection(importPrivateKey(pem, { subject: 'k.pem' }))).message).toBe(
      'k.pem: only ECDSA P-256 keys are supported, got secp384r1',
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(() => importPublicKey(rsa.export({ format: 'pem', type: 'spki' }) as string)).toThrow(
      'only ECDSA P-256 keys are supported, got rsa',
    );
  });

  it('rejects non-PEM input and unknown PEM types', async () => {
    expect((await rejection(importPrivateKey('hello', {}))).message).toBe('not a PEM file');
    const cert = encodePem('CERTIFICATE', Buffer.from('x'));
    expect((await rejection(importPrivateKey(cert, {}))).message).toContain(
      'unsupported private key PEM type',
    );
    expect(() => importPublicKey(cert)).toThrow('expected a PEM "PUBLIC KEY", got "CERTIFICATE"');
  });
});

describe('KeySigner', () => {
  it('signs with ECDSA P-256 SHA-256 (DER) and names its public key', async () => {
    const { privateKey, publicKey } = generateKeyPair();
    const result = await new KeySigner(privateKey).sign(Buffer.from('payload'));
    expect(verify('sha256', Buffer.from('payload'), publicKey, result.signature)).toBe(true);
    expect(result.keyMaterial).toEqual({ kind: 'publicKey', publicKeyPem: publicKeyPem(publicKey) });
    expect(keyHint(createPublicKey(publicKeyPem(publicKey)))).toBe(keyHint(privateKey));
  });
});

describe('PEM encoding', () => {
  it('wraps at 64 columns like Go and decodes back', () => {
    const der = Buffer.alloc(100, 7);
    const pem = encodePem('PUBLIC KEY', der);
    expect(pem.split('\n')[1]).toHaveLength(64);
    expect(pem.endsWith('-----END PUBLIC KEY-----\n')).toBe(true);
    expect(decodePem(pem)).toEqual({ type: 'PUBLIC KEY', der });
  });
});
