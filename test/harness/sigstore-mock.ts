/**
 * harness/sigstore-mock: a private Sigstore for keyless tests. @sigstore/mock's Fulcio and Rekor served on one
 * 127.0.0.1 port (no public Sigstore is reachable), the trusted root that trusts them (as a file for gantry's and
 * cosign's --trusted-root, and as cosign 2's SIGSTORE_* key files for the tag-schema forms), and OIDC tokens the
 * mock Fulcio accepts (it decodes the claims; it does not check the signature).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler } from '@sigstore/mock';
import { HashAlgorithm, PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';

/** The GitHub Actions identity the tests sign as by default. */
export const ISSUER = 'https://token.actions.githubusercontent.com';
export const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
/** An identity no test signs as. */
export const OTHER_IDENTITY = 'https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main';

/** Variables a developer's or CI's shell may hold that would change which token the CLI picks. */
export const NO_AMBIENT_TOKENS = {
  SIGSTORE_ID_TOKEN: '',
  ACTIONS_ID_TOKEN_REQUEST_URL: '',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: '',
};

/** An unsigned OIDC token (JWT) with these claims, audience `sigstore`, valid ten minutes. */
export function mintToken(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ aud: 'sigstore', iat: now, exp: now + 600, ...claims })}.c2ln`;
}

export interface MockSigstore {
  /** Base URL of both Fulcio and Rekor: pass it as --fulcio-url and --rekor-url. */
  url: string;
  trustedRoot: TrustedRoot;
  /** Writes trusted_root.json into `dir`; returns its path. */
  writeTrustedRoot(dir: string): Promise<string>;
  /**
   * Writes the Fulcio root, Rekor key and CT log key into `dir` and returns the variables that make cosign 2
   * trust them for `.sig`/`.att` forms (its --trusted-root covers bundles only).
   */
  writeCosignEnv(dir: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** One loopback HTTP server answering Fulcio's signingCert and Rekor's log entries with @sigstore/mock. */
export async function startMockSigstore(): Promise<MockSigstore> {
  const keyPair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await initializeCTLog(keyPair);
  const ca = await initializeCA(keyPair, ctlog);
  const handlers = new Map<string, Awaited<ReturnType<typeof fulcioHandler>>['fn']>();
  const fulcio = fulcioHandler(ca);
  handlers.set(fulcio.path, fulcio.fn);
  const server: Server = createServer((req, res) => {
    const handler = req.method === 'POST' ? handlers.get(req.url ?? '') : undefined;
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    readBody(req)
      .then((body) => handler(body))
      .then(({ statusCode, response, contentType }) => {
        res.writeHead(statusCode, { 'content-type': contentType ?? 'text/plain' });
        res.end(typeof response === 'string' ? response : Buffer.from(response.buffer));
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tlog = await initializeTLog(url, keyPair);
  const rekor = rekorHandler(tlog);
  handlers.set(rekor.path, rekor.fn);
  const since = new Date(Date.now() - 3_600_000);
  const key = (rawBytes: Buffer) => ({
    rawBytes,
    keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
    validFor: { start: since, end: undefined },
  });
  const rootCertificate = Buffer.from(ca.rootCertificate.buffer);
  const trustedRoot: TrustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: url,
        certChain: { certificates: [{ rawBytes: rootCertificate }] },
        validFor: { start: since, end: undefined },
        operator: 'sigstore.mock',
      },
    ],
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: HashAlgorithm.SHA2_256,
        publicKey: key(tlog.publicKey),
        logId: { keyId: createHash('sha256').update(tlog.publicKey).digest() },
        checkpointKeyId: undefined,
        operator: 'sigstore.mock',
      },
    ],
    ctlogs: [
      {
        baseUrl: url,
        hashAlgorithm: HashAlgorithm.SHA2_256,
        publicKey: key(ctlog.publicKey),
        logId: { keyId: Buffer.from(ctlog.logID.buffer) },
        checkpointKeyId: undefined,
        operator: 'sigstore.mock',
      },
    ],
    timestampAuthorities: [],
  };
  return {
    url,
    trustedRoot,
    async writeTrustedRoot(dir) {
      const path = join(dir, 'trusted_root.json');
      await writeFile(path, JSON.stringify(TrustedRoot.toJSON(trustedRoot)));
      return path;
    },
    async writeCosignEnv(dir) {
      const files: Record<string, [string, string]> = {
        SIGSTORE_ROOT_FILE: [join(dir, 'fulcio.pem'), pem('CERTIFICATE', rootCertificate)],
        SIGSTORE_REKOR_PUBLIC_KEY: [join(dir, 'rekor.pub'), pem('PUBLIC KEY', tlog.publicKey)],
        SIGSTORE_CT_LOG_PUBLIC_KEY_FILE: [join(dir, 'ctlog.pub'), pem('PUBLIC KEY', ctlog.publicKey)],
      };
      for (const [path, text] of Object.values(files)) await writeFile(path, text);
      return Object.fromEntries(Object.entries(files).map(([name, [path]]) => [name, path]));
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function pem(type: string, der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${type}-----\n${body}\n-----END ${type}-----\n`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
