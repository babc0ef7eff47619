/**
 * build/ssh-agent: `gantry build --ssh ID[=SOCKET]` and the socket a `RUN --mount=type=ssh` sees. Each such
 * mount gets a fresh socket, in a short-lived private directory, that forwards every connection to the agent:
 * the agent's own path never enters the container, the step's key or the image, and the socket's mode is the
 * mount's (0600 unless `mode=` says otherwise), as with BuildKit's forwarded agent.
 */
import { chmod, chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GantryError } from '../errors/index.js';

/** `--ssh default` (the agent at $SSH_AUTH_SOCK) or `--ssh ID=SOCKET`, as docker buildx spells it. Pure. */
export function parseSsh(text: string, env: NodeJS.ProcessEnv): [string, string] {
  const eq = text.indexOf('=');
  const id = eq < 0 ? text : text.slice(0, eq);
  const path = eq < 0 ? env.SSH_AUTH_SOCK : text.slice(eq + 1);
  if (id === '') throw new GantryError('INVALID_ARGUMENT', '--ssh needs an id', { subject: '--ssh' });
  if (!path) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--ssh ${id}: no agent socket given and SSH_AUTH_SOCK is not set`,
      {
        subject: '--ssh',
      },
    );
  }
  if (path.includes(',')) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--ssh ${id}: give one agent socket (key files are not supported)`,
      {
        subject: '--ssh',
      },
    );
  }
  return [id, path];
}

export interface AgentForward {
  /** The forwarding socket on the host, to bind into the container. */
  socket: string;
  close(): Promise<void>;
}

/** Starts forwarding a new socket to the agent at `agent`; the caller closes it after the RUN. */
export async function forwardAgent(o: {
  id: string;
  agent: string;
  mode: number;
  /** Set the socket's owner (possible as root only). */
  owner?: { uid: number; gid: number };
  subject: string;
}): Promise<AgentForward> {
  const s = await stat(o.agent).catch(() => undefined);
  if (!s?.isSocket()) {
    // The path is not named: it is the user's, not the build's, and stays out of logs shared with others.
    throw new GantryError('INVALID_ARGUMENT', `--ssh ${o.id}: the agent socket is missing or not a socket`, {
      subject: o.subject,
    });
  }
  // Unix socket paths are short (108 bytes): the store's scratch space may be too deep.
  const dir = await mkdtemp(join(tmpdir(), 'gantry-ssh-'));
  const socket = join(dir, 'agent.sock');
  const open = new Set<Socket>();
  const server: Server = createServer((conn) => {
    const upstream = createConnection(o.agent);
    open.add(conn).add(upstream);
    const end = () => {
      conn.destroy();
      upstream.destroy();
      open.delete(conn);
      open.delete(upstream);
    };
    conn.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    conn.pipe(upstream).pipe(conn);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    await chmod(socket, o.mode);
    if (o.owner) await chown(socket, o.owner.uid, o.owner.gid);
  } catch (cause) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw new GantryError('IO', `cannot create the ssh agent socket: ${(cause as Error).message}`, {
      subject: o.subject,
      cause,
    });
  }
  return {
    socket,
    close: async () => {
      // A process the RUN left behind may still hold a connection; the step is over, so it ends here.
      for (const c of open) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
