/**
 * sign/password: where a private key's password comes from, in cosign's order: `--passphrase-file`, then the
 * COSIGN_PASSWORD environment variable (an empty value means "no password"), then a prompt when stdin is a
 * terminal. Without any of them it fails instead of waiting for input that never comes (CI).
 */
import { readFile } from 'node:fs/promises';
import { asGantryError, GantryError } from '../errors/index.js';

export interface PasswordOptions {
  passphraseFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Ask twice on a terminal (when creating a key). */
  confirm?: boolean;
  /** What the prompt says the password is for, e.g. `cosign.key`. */
  purpose: string;
}

export async function readPassword(options: PasswordOptions): Promise<Buffer> {
  if (options.passphraseFile !== undefined) {
    const text = await readFile(options.passphraseFile, 'utf8').catch((err: unknown) => {
      throw asGantryError(err, 'IO', 'cannot read the passphrase file', options.passphraseFile);
    });
    // Files written by `echo` end in a newline that is not part of the password.
    return Buffer.from(text.replace(/\r?\n$/, ''), 'utf8');
  }
  const fromEnv = (options.env ?? process.env).COSIGN_PASSWORD;
  if (fromEnv !== undefined) return Buffer.from(fromEnv, 'utf8');
  if (!process.stdin.isTTY) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `no password for ${options.purpose}: set COSIGN_PASSWORD or pass --passphrase-file`,
    );
  }
  const password = await prompt(`Enter password for ${options.purpose}: `);
  if (options.confirm && (await prompt(`Enter password for ${options.purpose} again: `)) !== password) {
    throw new GantryError('INVALID_ARGUMENT', 'passwords do not match');
  }
  return Buffer.from(password, 'utf8');
}

/** Reads one line from the terminal without echoing it. */
function prompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          done(new GantryError('INVALID_ARGUMENT', 'password prompt interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
