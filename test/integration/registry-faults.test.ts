/**
 * RegistryClient resilience against a real docker-registry: dropped blob downloads resume, 429 Retry-After is
 * honoured, uploads survive a 500 and the registry being killed and restarted mid-upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GantryError } from '../../src/errors/index.js';
import { type Descriptor, MediaType, sha256Digest } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import type { Logger } from '../../src/util/log.js';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

let registry: TestRegistry;

beforeAll(async () => {
  registry = await startRegistry();
});

afterAll(async () => {
  await registry?.stop();
});

function blob(size: number): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(bytes), size } };
}

function opener(bytes: Buffer, opens: number[] = [], pause?: (position: number) => Promise<void>) {
  return async (offset: number) => {
    opens.push(offset);
    return Readable.from(
      (async function* () {
        for (let i = offset; i < bytes.length; i += 65536) {
          await pause?.(i);
          yield bytes.subarray(i, Math.min(i + 65536, bytes.length));
        }
      })(),
    );
  };
}

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, debug() {}, warn: (m) => warnings.push(m) };
}

async function withProxy<T>(
  rules: Parameters<typeof startFaultProxy>[1],
  fn: (proxy: FaultProxy) => Promise<T>,
) {
  const proxy = await startFaultProxy(registry, rules);
  try {
    return await fn(proxy);
  } finally {
    await proxy.stop();
  }
}

describe('RegistryClient resilience', () => {
  it('resumes a blob download when the connection drops mid-body', async () => {
    const direct = new RegistryClient();
    const { bytes, descriptor } = blob(2 * 1024 * 1024);
    await direct.uploadBlob({ registry: registry.host, repository: 'faults/get' }, descriptor, opener(bytes));
    await direct.close();
    await withProxy(
      [
        {
          name: 'drop',
          match: (r) => r.method === 'GET' && r.path.includes('/blobs/sha256:'),
          action: 'drop-after-bytes',
          n: 700_000,
          times: 2,
        },
      ],
      async (proxy) => {
        const client = new RegistryClient({ retryBaseDelayMs: 20 });
        const stream = await client.getBlob({ registry: proxy.host, repository: 'faults/get' }, descriptor);
        expect(await sha256(stream)).toBe(descriptor.digest);
        expect(proxy.hits('drop')).toBe(2);
        await client.close();
      },
    );
  });

  it('gives up on a registry that stops answering, with TIMEOUT, after its retries', async () => {
    // A loopback "registry" that reads requests and never answers, or answers a blob and then stalls.
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('data', (data) => {
        if (data.toString('latin1').startsWith('GET /v2/stall/blobs/')) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(100));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new RegistryClient({ requestTimeoutMs: 200, maxRetries: 1, retryBaseDelayMs: 10 });
    try {
      const started = Date.now();
      const headError = await client.headManifest({ registry: host, repository: 'stall' }, 'v1').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((headError as GantryError).code).toBe('TIMEOUT');
      expect((headError as GantryError).message).toContain(host);
      expect(Date.now() - started).toBeLessThan(10_000);

      const digest = `sha256:${'0'.repeat(64)}`;
      const stream = await client.getBlob(
        { registry: host, repository: 'stall' },
        {
          mediaType: MediaType.ociLayerGzip,
          digest,
          size: 1000,
        },
      );
      const readError = await (async () => {
        for await (const _chunk of stream) {
          // read until the stall
        }
      })().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((readError as GantryError).code).toBe('TIMEOUT');
    } finally {
      await client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('honours Retry-After on 429 and logs it', async () => {
    await withProxy(
      [
        {
          name: '429',
          match: (r) => r.path.includes('/tags/list'),
          action: 'status',
          status: 429,
          headers: { 'retry-after': '2' },
          times: 1,
        },
      ],
      async (proxy) => {
        const logger = recordingLogger();
        const client = new RegistryClient({ retryBaseDelayMs: 1, logger });
        const repo = { registry: proxy.host, repository: 'faults/ratelimit' };
        const started = Date.now();
        await expect(client.listTags(repo)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const elapsed = Date.now() - started;
        expect(proxy.hits('429')).toBe(1);
        expect(elapsed).toBeGreaterThanOrEqual(1950);
        expect(logger.warnings.join('\n')).toMatch(/429.*2\.0 s/);
        await client.close();
      },
    );
  });

  it('fails with RATE_LIMITED when 429 persists', async () => {
    await withProxy(
      [{ name: '429', match: (r) => r.path.includes('/tags/list'), action: 'status', status: 429 }],
      async (proxy) => {
        const client = new RegistryClient({ retryBaseDelayMs: 1, maxRetries: 2 });
        await expect(client.listTags({ registry: proxy.host, repository: 'x/y' })).rejects.toMatchObject({
          code: 'RATE_LIMITED',
        });
        expect(proxy.hits('429')).toBe(3);
        await client.close();
      },
    );
  });

  it('resumes an upload after a 500 on the streamed PUT', async () => {
    await withProxy(
      [
        {
          name: '500',
          match: (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'),
          action: 'status',
          status: 500,
          times: 1,
        },
      ],
      async (proxy) => {
        const client = new RegistryClient({ retryBaseDelayMs: 10 });
        const repo = { registry: proxy.host, repository: 'faults/put500' };
        const { bytes, descriptor } = blob(1_500_000);
        const opens: number[] = [];
        await client.uploadBlob(repo, descriptor, opener(bytes, opens));
        expect(proxy.hits('500')).toBe(1);
        expect(opens.length).toBe(2);
        expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
        await client.close();
      },
    );
  });

  it('resumes a monolithic upload when the connection is cut while the PUT body streams', async () => {
    await withProxy(
      [
        {
          name: 'cut',
          match: (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'),
          action: 'drop-after-bytes',
          direction: 'request',
          n: 200_000,
          times: 1,
        },
      ],
      async (proxy) => {
        const client = new RegistryClient({ retryBaseDelayMs: 10 });
        const repo = { registry: proxy.host, repository: 'faults/putcut' };
        const { bytes, descriptor } = blob(4_000_000);
        // A dead connection is the registry's failure, not the source's: the upload resumes or restarts.
        await client.uploadBlob(repo, descriptor, opener(bytes));
        expect(proxy.hits('cut')).toBe(1);
        expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
        await client.close();
      },
    );
  });

  it('resumes a chunked upload when a PATCH is cut off', async () => {
    await withProxy(
      [
        {
          name: 'cut',
          match: (r) => r.method === 'PATCH',
          action: 'drop-after-bytes',
          direction: 'request',
          n: 100_000,
          times: 1,
        },
      ],
      async (proxy) => {
        const client = new RegistryClient({ retryBaseDelayMs: 10 });
        const repo = { registry: proxy.host, repository: 'faults/patch' };
        const { bytes, descriptor } = blob(3_000_000);
        await client.uploadBlob(repo, descriptor, opener(bytes), { chunkSize: 1024 * 1024 });
        expect(proxy.hits('cut')).toBe(1);
        expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
        await client.close();
      },
    );
  });

  it('completes an upload when the registry is killed and restarted mid-upload', async () => {
    const client = new RegistryClient({ retryBaseDelayMs: 300, maxRetries: 6 });
    const repo = { registry: registry.host, repository: 'faults/killed' };
    const { bytes, descriptor } = blob(4 * 1024 * 1024);
    const opens: number[] = [];
    let restart: Promise<void> | undefined;
    const pause = async (position: number) => {
      if (opens.length === 1 && position >= 1024 * 1024 && !restart) {
        restart = (async () => {
          await registry.kill();
          await sleep(200);
          await registry.start();
        })();
      }
      // Slow the first attempt down so the kill lands while its body is still streaming.
      if (opens.length === 1) await sleep(5);
    };
    await client.uploadBlob(repo, descriptor, opener(bytes, opens, pause));
    await restart;
    expect(opens.length).toBeGreaterThanOrEqual(2);
    expect(await client.hasBlob(repo, descriptor.digest)).toBe(true);
    expect(await sha256(await client.getBlob(repo, descriptor))).toBe(descriptor.digest);
    await client.close();
  });
});
