/**
 * registry/tls: what an HTTPS connection to a registry trusts and presents: CAs and client certificates from a
 * containers-style cert dir and the extra CA file, turned into one secure context per set. Its own module,
 * with node:https, because plain-HTTP registries (CI and test registries) never need TLS: loaded on the first
 * HTTPS request, it keeps ~5 ms of TLS start-up off their commands.
 */
import { readdir, readFile } from 'node:fs/promises';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { GantryError } from '../errors/index.js';

export { HttpsAgent, httpsRequest };

export interface TlsMaterial {
  /** CAs trusted in addition to Node's built-in roots. */
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/**
 * TLS material for a host: `${certDir}/${host}/` if it exists (containers certs.d layout), else the files
 * directly in certDir (skopeo --cert-dir). `*.crt` are CAs added to the system roots, as is the extra CA
 * bundle; `*.cert` + `*.key` are a client certificate pair.
 */
export async function loadTlsMaterial(options: {
  certDir: string | undefined;
  extraCaFile: string | undefined;
  host: string;
  verify: boolean;
}): Promise<TlsMaterial> {
  const { certDir, extraCaFile, host } = options;
  const material: TlsMaterial = { rejectUnauthorized: options.verify };
  const extra: string[] = [];
  if (extraCaFile) {
    try {
      extra.push(...certificatesBeyondRoots(await readFile(extraCaFile, 'utf8')));
    } catch (err) {
      throw new GantryError('INVALID_ARGUMENT', 'cannot read the extra CA certificates file', {
        subject: extraCaFile,
        cause: err,
      });
    }
  }
  let dir = certDir ? join(certDir, host) : undefined;
  let names = dir ? await listDir(dir) : [];
  if (names === undefined && certDir) {
    dir = certDir;
    names = (await listDir(dir)) ?? [];
  }
  names = (names ?? []).sort();
  const cas = names.filter((n) => n.endsWith('.crt'));
  for (const pem of await Promise.all(cas.map((n) => readFile(join(dir as string, n), 'utf8')))) {
    extra.push(pem);
  }
  if (extra.length > 0) material.ca = extra;
  const cert = names.find((n) => n.endsWith('.cert'));
  if (cert) {
    const keyName = `${cert.slice(0, -'.cert'.length)}.key`;
    if (names.includes(keyName)) {
      material.cert = await readFile(join(dir as string, cert), 'utf8');
      material.key = await readFile(join(dir as string, keyName), 'utf8');
    }
  }
  return material;
}

/**
 * One secure context per agent: given `ca` as connect options, Node would parse every certificate again for
 * each socket. Extra CAs are added to a context that starts from Node's root store, whose certificates Node
 * parsed once per process; passing roots and extras as `ca` instead re-parses all ~140 roots (~50 ms), so
 * that is only the fallback for a Node without SecureContext#addCACert.
 */
export function secureContextFor(material: TlsMaterial): SecureContext {
  const { ca = [], cert, key } = material;
  const context = createSecureContext({ cert, key });
  const handle = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
  if (typeof handle?.addCACert !== 'function') {
    return createSecureContext({ ca: [...rootCertificates, ...ca], cert, key });
  }
  for (const pem of ca) handle.addCACert(pem);
  return context;
}

/**
 * The certificates of a PEM bundle that Node's built-in roots lack. NODE_EXTRA_CA_CERTS often names the whole
 * system bundle, which repeats the roots; adding only the rest keeps the default (cheap) trust store whenever
 * nothing is new.
 */
export function certificatesBeyondRoots(bundle: string): string[] {
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const roots = new Set(rootCertificates.map(body));
  const pems = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return pems.filter((pem) => !roots.has(body(pem)));
}

async function listDir(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ENOENT' ||
      (err as NodeJS.ErrnoException).code === 'ENOTDIR'
    ) {
      return undefined;
    }
    throw err;
  }
}
