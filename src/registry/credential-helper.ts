/**
 * registry/credential-helper: runs `docker-credential-<name>` programs (the docker credential helper protocol:
 * `get`, `store`, `erase`, one request on stdin, one answer on stdout). Every run is time- and size-bounded and
 * its failures are GantryError 'CREDENTIAL_HELPER' naming the helper and registry, never the secret.
 */
import { GantryError } from '../errors/index.js';

export interface HelperOptions {
  /** Environment of the helper; its PATH is where the helper is looked up. */
  env: NodeJS.ProcessEnv;
  /** Kill the helper after this long (default 10 s). */
  timeoutMs?: number;
}

/** What a helper's `get` answered: a username and secret, or `<token>` plus an identity token. */
export interface HelperCredential {
  username: string;
  secret: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Helpers answer with a small JSON object; anything larger is a misbehaving program. */
const MAX_OUTPUT_BYTES = 64 * 1024;
const MAX_DETAIL_CHARS = 200;

interface RunResult {
  code: number | null;
  stdout: string;
  /** stdout and stderr together: helpers report errors on either. */
  output: string;
}

/** `get`: the helper's credential for `serverUrl`, or undefined when it has none. */
export async function helperGet(
  helper: string,
  serverUrl: string,
  options: HelperOptions,
): Promise<HelperCredential | undefined> {
  const result = await runHelper({ helper, action: 'get', input: serverUrl, serverUrl, options });
  if (result.code !== 0) {
    if (isNotFound(result.output)) return undefined;
    throw helperFailure({ helper, action: 'get', serverUrl, result });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    // The output is not quoted: a half-written answer may still hold the secret.
    throw new GantryError(
      'CREDENTIAL_HELPER',
      `docker-credential-${helper} get answered with malformed JSON`,
      {
        subject: serverUrl,
      },
    );
  }
  const { Username: username, Secret: secret } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof username !== 'string' || typeof secret !== 'string') {
    throw new GantryError(
      'CREDENTIAL_HELPER',
      `docker-credential-${helper} get answered without Username/Secret`,
      {
        subject: serverUrl,
      },
    );
  }
  if (username === '' && secret === '') return undefined;
  return { username, secret };
}

/** `store`: hands the credential to the helper. */
export async function helperStore(
  helper: string,
  serverUrl: string,
  credential: HelperCredential,
  options: HelperOptions,
): Promise<void> {
  const input = JSON.stringify({
    ServerURL: serverUrl,
    Username: credential.username,
    Secret: credential.secret,
  });
  const result = await runHelper({ helper, action: 'store', input, serverUrl, options });
  if (result.code !== 0) {
    throw helperFailure({ helper, action: 'store', serverUrl, result, secret: credential.secret });
  }
}

/** `erase`: true if the helper removed a credential, false if it had none. */
export async function helperErase(
  helper: string,
  serverUrl: string,
  options: HelperOptions,
): Promise<boolean> {
  const result = await runHelper({ helper, action: 'erase', input: serverUrl, serverUrl, options });
  if (result.code === 0) return true;
  if (isNotFound(result.output)) return false;
  throw helperFailure({ helper, action: 'erase', serverUrl, result });
}

/** docker-credential-helpers' `credentials.NewErrCredentialsNotFound` text; ecr-login and others reuse it. */
function isNotFound(output: string): boolean {
  return /credentials not found/i.test(output);
}

function helperFailure(args: {
  helper: string;
  action: string;
  serverUrl: string;
  result: RunResult;
  secret?: string;
}): GantryError {
  let detail = args.result.output.trim();
  if (args.secret) detail = detail.split(args.secret).join('***');
  if (detail.length > MAX_DETAIL_CHARS) detail = `${detail.slice(0, MAX_DETAIL_CHARS)}…`;
  const status = args.result.code === null ? 'was killed' : `exited with status ${args.result.code}`;
  return new GantryError(
    'CREDENTIAL_HELPER',
    `docker-credential-${args.helper} ${args.action} ${status}${detail ? `: ${detail}` : ''}`,
    { subject: args.serverUrl },
  );
}

/** Runs one helper action with its input on stdin, bounded in time and output size. */
async function runHelper(args: {
  helper: string;
  action: 'get' | 'store' | 'erase';
  input: string;
  serverUrl: string;
  options: HelperOptions;
}): Promise<RunResult> {
  const program = `docker-credential-${args.helper}`;
  const fail = (message: string, cause?: unknown) =>
    new GantryError('CREDENTIAL_HELPER', `${program} ${args.action}: ${message}`, {
      subject: args.serverUrl,
      cause,
    });
  if (!/^[A-Za-z0-9._-]+$/.test(args.helper)) {
    throw fail('helper name may only contain letters, digits, ".", "_" and "-"');
  }
  const timeoutMs = args.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // Loaded here, not at the top: most commands never run a helper, and node:child_process costs start-up time.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(program, [args.action], { env: args.options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const stop = (error: GantryError) => {
      // Settle now: a grandchild the helper started may hold the pipes open long after the helper dies.
      settle(() => reject(error));
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => stop(fail(`timed out after ${timeoutMs} ms`)), timeoutMs);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) stop(fail(`answered with more than ${MAX_OUTPUT_BYTES} bytes`));
      else into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    child.on('error', (err: NodeJS.ErrnoException) => {
      settle(() => reject(err.code === 'ENOENT' ? fail('not found on PATH', err) : fail(err.message, err)));
    });
    child.on('close', (code) => {
      const out = Buffer.concat(stdout).toString('utf8');
      const output = `${out}\n${Buffer.concat(stderr).toString('utf8')}`;
      settle(() => resolve({ code, stdout: out, output }));
    });
    // A helper that exits without reading its input closes the pipe; its exit status tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(args.input);
  });
}
