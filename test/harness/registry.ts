/**
 * harness/registry: real CNCF distribution registries (`/usr/bin/docker-registry serve`) for integration
 * tests, on free 127.0.0.1 ports with filesystem storage in a temp dir. Variants: no auth, htpasswd Basic
 * auth, token auth (with the in-process token server), each with or without TLS (test-time CA).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeClientCert, makeServerCerts, makeSigningCert } from './certs.js';
import { deathSignalPrefix, freePort, run, trackChild, trackTempDir, waitFor } from './procs.js';
import { startTokenServer, type TokenServer } from './token-server.js';

export interface TestRegistry {
  /** '127.0.0.1:PORT' — what goes into image references. */
  host: string;
  /** 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT'. */
  url: string;
  auth: 'none' | 'htpasswd' | 'token';
  tls: boolean;
  /** Valid credentials when auth != 'none'. */
  username?: string;
  password?: string;
  /** PEM of the generated CA when tls. */
  caCertPath?: string;
  /** containers-style certs.d dir: `${certDir}/${host}/ca.crt`. */
  certDir?: string;
  /** The token endpoint (realm) when auth == 'token'. */
  tokenServerUrl?: string;
  /** Token server counters when auth == 'token'. */
  tokenStats?: TokenServer['stats'];
  /** Holds config.yml, registry.log, storage/ and the generated certs. */
  dataDir: string;
  /** Graceful stop: SIGTERM, wait for exit (SIGKILL after 10 s). Also stops the token server. */
  stop(): Promise<void>;
  /** SIGKILL the registry process, abruptly (the token server keeps running). */
  kill(): Promise<void>;
  /** (Re)start on the same port and data dir (and the token server, if stopped). */
  start(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  tls?: boolean;
  /** Token auth only: whether anonymous clients get pull-only tokens (default true) or 401. */
  anonymousPull?: boolean;
}

const REGISTRY_BIN = '/usr/bin/docker-registry';
const USERNAME = 'gantry';
const STARTUP_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const TOKEN_SERVICE = 'gantry-test-registry';
const TOKEN_ISSUER = 'gantry-test-token-server';

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const tls = opts.tls ?? false;
  const dataDir = await mkdtemp(join(tmpdir(), 'gantry-registry-'));
  trackTempDir(dataDir);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const password = `pw-${Math.random().toString(36).slice(2)}`;

  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text' },
    storage: {
      filesystem: { rootdirectory: join(dataDir, 'storage') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: host, secret: `secret-${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
    health: { storagedriver: { enabled: false } },
  };

  const reg: Partial<TestRegistry> & Pick<TestRegistry, 'host' | 'url' | 'auth' | 'tls' | 'dataDir'> = {
    host,
    url: `${tls ? 'https' : 'http'}://${host}`,
    auth,
    tls,
    dataDir,
  };

  let serverCerts: Awaited<ReturnType<typeof makeServerCerts>> | undefined;
  if (tls) {
    serverCerts = await makeServerCerts(dataDir);
    (config.http as Record<string, unknown>).tls = {
      certificate: serverCerts.certPath,
      key: serverCerts.keyPath,
      ...(opts.clientCerts ? { clientcas: [serverCerts.caCertPath] } : {}),
    };
    const certDir = join(dataDir, 'certs.d');
    await mkdir(join(certDir, host), { recursive: true });
    await writeFile(join(certDir, host, 'ca.crt'), await readFile(serverCerts.caCertPath));
    if (opts.clientCerts) {
      const client = await makeClientCert(dataDir);
      await writeFile(join(certDir, host, 'client.cert'), await readFile(client.certPath));
      await writeFile(join(certDir, host, 'client.key'), await readFile(client.keyPath));
    }
    reg.caCertPath = serverCerts.caCertPath;
    reg.certDir = certDir;
  }

  let tokenServer: TokenServer | undefined;
  if (auth === 'htpasswd') {
    const htpasswdPath = join(dataDir, 'htpasswd');
    const { stdout } = await run('htpasswd', ['-Bbn', USERNAME, password]);
    await writeFile(htpasswdPath, stdout.trim() + '\n');
    config.auth = { htpasswd: { realm: 'gantry-test', path: htpasswdPath } };
  } else if (auth === 'token') {
    const signing = await makeSigningCert(dataDir);
    tokenServer = await startTokenServer({
      issuer: TOKEN_ISSUER,
      service: TOKEN_SERVICE,
      signing,
      users: { [USERNAME]: password },
      anonymousPull: opts.anonymousPull ?? true,
      tls: serverCerts && {
        certPem: await readFile(serverCerts.certPath, 'utf8'),
        keyPem: await readFile(serverCerts.keyPath, 'utf8'),
      },
    });
    config.auth = {
      token: {
        realm: tokenServer.url,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        rootcertbundle: signing.certPath,
      },
    };
    reg.tokenServerUrl = tokenServer.url;
    reg.tokenStats = tokenServer.stats;
  }
  if (auth !== 'none') {
    reg.username = USERNAME;
    reg.password = password;
  }

  const configPath = join(dataDir, 'config.yml');
  await writeFile(configPath, stringify(config));
  const logPath = join(dataDir, 'registry.log');
  const probeTls: ProbeTls | undefined = serverCerts && {
    ca: await readFile(serverCerts.caCertPath),
    ...(opts.clientCerts && reg.certDir
      ? {
          cert: await readFile(join(reg.certDir, host, 'client.cert')),
          key: await readFile(join(reg.certDir, host, 'client.key')),
        }
      : {}),
  };

  let child: ChildProcess | undefined;

  const waitExit = (proc: ChildProcess, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        resolve(true);
        return;
      }
      const timer = setTimeout(() => resolve(false), timeoutMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  const signalAndWait = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc) return;
    proc.kill(signal);
    if (!(await waitExit(proc, STOP_TIMEOUT_MS))) {
      proc.kill('SIGKILL');
      await waitExit(proc, STOP_TIMEOUT_MS);
    }
  };

  const start = async () => {
    await tokenServer?.start();
    if (child && child.exitCode === null && child.signalCode === null) return;
    const log = createWriteStream(logPath, { flags: 'a' });
    const [cmd, ...prefixArgs] = [...deathSignalPrefix(), REGISTRY_BIN];
    // REGISTRY_* variables would override config.yml; the test registry's config must be exactly ours.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const proc = spawn(cmd!, [...prefixArgs, 'serve', configPath], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    trackChild(proc);
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    // 'close' comes after stdout/stderr are drained, so no log line is written after end().
    proc.once('close', () => log.end());
    const ready = await waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return true;
        return (await probe(reg.url, probeTls)) !== undefined;
      },
      { timeoutMs: STARTUP_TIMEOUT_MS },
    );
    if (!ready || proc.exitCode !== null || proc.signalCode !== null) {
      await signalAndWait('SIGKILL');
      const logText = await readFile(logPath, 'utf8').catch(() => '');
      const why = ready ? `exited with ${proc.exitCode ?? proc.signalCode}` : 'did not answer GET /v2/';
      process.stderr.write(`[harness] registry on ${host} ${why}; log ${logPath}:\n${logText}\n`);
      throw new Error(`test registry on ${host} ${why} within ${STARTUP_TIMEOUT_MS} ms; log:\n${logText}`);
    }
  };

  reg.start = start;
  reg.kill = () => signalAndWait('SIGKILL');
  reg.stop = async () => {
    await signalAndWait('SIGTERM');
    await tokenServer?.stop();
  };

  try {
    await start();
  } catch (err) {
    await tokenServer?.stop();
    throw err;
  }
  return reg as TestRegistry;
}

/** GET /v2/ → status code (200, or 401 when auth is on), or undefined when nothing answers yet. */
interface ProbeTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function probe(baseUrl: string, tls: ProbeTls | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const url = new URL('/v2/', baseUrl);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', timeout: 1000, ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
