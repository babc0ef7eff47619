/**
 * harness/certs: test-time X.509 material made with the `openssl` CLI — a CA plus a server certificate for
 * 127.0.0.1 / ::1 / localhost (registry TLS), and a self-signed token-signing certificate (token auth).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './procs.js';

export interface ServerCerts {
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

export interface SigningCert {
  certPath: string;
  keyPem: string;
  /** The certificate as base64 DER, ready for a JWT `x5c` header. */
  certDerBase64: string;
}

const EC_KEY = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'.split(' ');

/** Writes ca.crt/ca.key and server.crt/server.key (signed by the CA, IP SANs for loopback) into `dir`. */
export async function makeServerCerts(dir: string): Promise<ServerCerts> {
  const p = (name: string) => join(dir, name);
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['req', '-x509', ...EC_KEY, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2',
    '-subj', '/CN=gantry test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['req', '-new', ...EC_KEY, '-keyout', p('server.key'), '-out', p('server.csr'),
    '-subj', '/CN=127.0.0.1']);
  const extensions = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
  ];
  await writeFile(p('server.ext'), `${extensions.join('\n')}\n`);
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext')]);
  return { caCertPath: p('ca.crt'), certPath: p('server.crt'), keyPath: p('server.key') };
}

/** Writes client.cert/client.key (signed by the CA in `dir`, for mutual TLS) into `dir`. */
export async function makeClientCert(dir: string): Promise<{ certPath: string; keyPath: string }> {
  const p = (name: string) => join(dir, name);
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['req', '-new', ...EC_KEY, '-keyout', p('client.key'), '-out', p('client.csr'),
    '-subj', '/CN=gantry test client']);
  await writeFile(p('client.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['x509', '-req', '-in', p('client.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-out', p('client.cert'), '-days', '2', '-extfile', p('client.ext')]);
  return { certPath: p('client.cert'), keyPath: p('client.key') };
}

/** A self-signed EC P-256 certificate for signing registry tokens; the registry trusts it as its root. */
export async function makeSigningCert(dir: string): Promise<SigningCert> {
  const certPath = join(dir, 'token-signing.crt');
  const keyPath = join(dir, 'token-signing.key');
  // biome-ignore format: openssl arguments read best as one command line
  await run('openssl', ['req', '-x509', ...EC_KEY, '-keyout', keyPath, '-out', certPath, '-days', '2',
    '-subj', '/CN=gantry test token issuer']);
  const pem = await readFile(certPath, 'utf8');
  const certDerBase64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { certPath, keyPem: await readFile(keyPath, 'utf8'), certDerBase64 };
}
