/**
 * sign/key-files: cosign key files on disk — writing `cosign.key` (mode 0600) and `cosign.pub` next to each other,
 * and reading a private key (asking for its password only when it is encrypted) or a public key from a path.
 */
import type { KeyObject } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { asGantryError, GantryError, isGantryError } from '../errors/index.js';
import {
  encryptPrivateKey,
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  KeySigner,
  publicKeyPem,
} from './keys.js';
import { type PasswordOptions, readPassword } from './password.js';

export interface KeyPairFiles {
  privateKeyPath: string;
  publicKeyPath: string;
}

/** Generates a key pair and writes `<prefix>.key` and `<prefix>.pub`; never overwrites existing files. */
export async function writeNewKeyPair(options: {
  prefix: string;
  password: Omit<PasswordOptions, 'purpose' | 'confirm'>;
}): Promise<KeyPairFiles> {
  const files = { privateKeyPath: `${options.prefix}.key`, publicKeyPath: `${options.prefix}.pub` };
  // Checked before asking for a password, and so no half-written pair is left behind.
  for (const path of [files.privateKeyPath, files.publicKeyPath]) await assertAbsent(path);
  const password = await readPassword({ ...options.password, purpose: files.privateKeyPath, confirm: true });
  const { privateKey, publicKey } = generateKeyPair();
  await writeNew(files.privateKeyPath, await encryptPrivateKey(privateKey, password), 0o600);
  await writeNew(files.publicKeyPath, publicKeyPem(publicKey), 0o644);
  return files;
}

/** Reads a private key file (cosign encrypted, or plain PEM EC / PKCS#8). */
export async function readPrivateKeyFile(
  path: string,
  password: Omit<PasswordOptions, 'purpose' | 'confirm'>,
): Promise<KeyObject> {
  const pem = await readText(path, 'private key');
  return importPrivateKey(pem, {
    subject: path,
    password: () => readPassword({ ...password, purpose: path }),
  });
}

/** A Signer over a private key file (`--key`, `--sign-by`). */
export async function loadKeySigner(
  path: string,
  password: Omit<PasswordOptions, 'purpose' | 'confirm'>,
): Promise<KeySigner> {
  return new KeySigner(await readPrivateKeyFile(path, password));
}

export async function readPublicKeyFile(path: string): Promise<KeyObject> {
  return importPublicKey(await readText(path, 'public key'), path);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GantryError('NOT_FOUND', `${what} file does not exist`, { subject: path });
    }
    throw asGantryError(err, 'IO', `cannot read the ${what}`, path);
  }
}

async function assertAbsent(path: string): Promise<void> {
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new GantryError('INVALID_ARGUMENT', 'file already exists; remove it or use --output-key-prefix', {
      subject: path,
    });
  }
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(path, text, { mode, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new GantryError('INVALID_ARGUMENT', 'file already exists; remove it or use --output-key-prefix', {
        subject: path,
      });
    }
    throw isGantryError(err) ? err : asGantryError(err, 'IO', 'cannot write the key file', path);
  }
}
