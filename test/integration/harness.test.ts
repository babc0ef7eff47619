// Proves the test harness itself: each registry variant really serves and enforces auth/TLS, fixtures are
// valid and deterministic images, and the fault proxy injects what it is told.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../harness/fault-proxy.js';
import {
  type FixtureImage,
  makeImageLayout,
  makeIndexLayout,
  pushFixture,
  skopeo,
} from '../harness/fixtures.js';
import { run } from '../harness/procs.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

let work: string;
let image: FixtureImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gantry-harness-test-'));
  image = await makeImageLayout({
    dir: join(work, 'layout'),
    tag: 'v1',
    layers: 2,
    layerSize: 10_000,
    seed: 7,
  });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The manifest digest the registry serves for a reference, via skopeo (independent of gantry). */
async function remoteDigest(ref: string, flags: string[]): Promise<string> {
  const { stdout } = await skopeo(['inspect', '--raw', ...flags, `docker://${ref}`]);
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

async function fetchStatus(url: string): Promise<number> {
  const res = await fetch(url);
  await res.body?.cancel();
  return res.status;
}

describe('startRegistry', () => {
  describe('plain HTTP, no auth', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry();
    });
    afterAll(() => reg.stop());

    it('accepts a pushed fixture and serves it under the same digest', async () => {
      const ref = await pushFixture(image, reg, 'plain/app:v1');
      expect(ref).toBe(`${reg.host}/plain/app:v1`);
      expect(await remoteDigest(ref, ['--tls-verify=false'])).toBe(image.digest);
      expect(await fetchStatus(`${reg.url}/v2/`)).toBe(200);
    });

    it('keeps its data across stop/start and kill/start on the same port', async () => {
      await pushFixture(image, reg, 'plain/persist:v1');
      await reg.stop();
      await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
      await reg.start();
      expect(await remoteDigest(`${reg.host}/plain/persist:v1`, ['--tls-verify=false'])).toBe(image.digest);
      await reg.kill();
      await reg.start();
      expect(await remoteDigest(`${reg.host}/plain/persist:v1`, ['--tls-verify=false'])).toBe(image.digest);
    });

    it('writes its log to the data dir', async () => {
      expect(await readFile(join(reg.dataDir, 'registry.log'), 'utf8')).toContain('listening on');
    });
  });

  describe('htpasswd Basic auth over plain HTTP', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ auth: 'htpasswd' });
    });
    afterAll(() => reg.stop());

    it('challenges anonymous requests', async () => {
      expect(await fetchStatus(`${reg.url}/v2/`)).toBe(401);
    });

    it('accepts the right password and rejects a wrong one', async () => {
      const ref = await pushFixture(image, reg, 'basic/app:v1');
      expect(
        await remoteDigest(ref, ['--tls-verify=false', '--creds', `${reg.username}:${reg.password}`]),
      ).toBe(image.digest);
      await expect(pushFixture(image, { ...reg, password: 'wrong' }, 'basic/app:v2')).rejects.toThrow(
        /unauthorized|authentication required/i,
      );
    });
  });

  describe('token auth', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ auth: 'token' });
    });
    afterAll(() => reg.stop());

    it('sends clients to the token server', async () => {
      const res = await fetch(`${reg.url}/v2/`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain(`realm="${reg.tokenServerUrl}"`);
    });

    it('lets the user push, lets anonymous pull, and rejects a wrong password and anonymous push', async () => {
      const ref = await pushFixture(image, reg, 'token/app:v1');
      expect(reg.tokenStats!.issued).toBeGreaterThan(0);
      expect(await remoteDigest(ref, ['--tls-verify=false', '--no-creds'])).toBe(image.digest);
      await expect(pushFixture(image, { ...reg, password: 'wrong' }, 'token/app:v2')).rejects.toThrow();
      expect(reg.tokenStats!.rejected).toBeGreaterThan(0);
      const anonymous = { ...reg, username: undefined, password: undefined };
      await expect(pushFixture(image, anonymous, 'token/app:v3')).rejects.toThrow(/denied|unauthorized/i);
    });

    it('issues tokens through the OAuth2 password and refresh_token grants', async () => {
      const post = (form: Record<string, string>) =>
        fetch(reg.tokenServerUrl!, { method: 'POST', body: new URLSearchParams(form) });
      const scope = 'repository:token/app:pull';
      const first = await post({
        grant_type: 'password',
        username: reg.username!,
        password: reg.password!,
        service: 'gantry-test-registry',
        scope,
        access_type: 'offline',
      });
      expect(first.status).toBe(200);
      const { refresh_token, access_token } = (await first.json()) as Record<string, string>;
      const manifest = await fetch(`${reg.url}/v2/token/app/manifests/v1`, {
        headers: { authorization: `Bearer ${access_token}`, accept: image.mediaType },
      });
      expect(manifest.status).toBe(200);
      await manifest.body?.cancel();
      const refreshed = await post({ grant_type: 'refresh_token', refresh_token: refresh_token!, scope });
      expect(refreshed.status).toBe(200);
      expect(
        await post({ grant_type: 'password', username: reg.username!, password: 'x', scope }),
      ).toHaveProperty('status', 401);
    });
  });

  describe('token auth without anonymous access', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ auth: 'token', anonymousPull: false });
    });
    afterAll(() => reg.stop());

    it('refuses anonymous pulls but serves the user', async () => {
      const ref = await pushFixture(image, reg, 'private/app:v1');
      await expect(remoteDigest(ref, ['--tls-verify=false', '--no-creds'])).rejects.toThrow(
        /unauthorized|denied/i,
      );
      const creds = `${reg.username}:${reg.password}`;
      expect(await remoteDigest(ref, ['--tls-verify=false', '--creds', creds])).toBe(image.digest);
    });
  });

  describe('TLS', () => {
    let reg: TestRegistry;
    let basic: TestRegistry;
    beforeAll(async () => {
      [reg, basic] = await Promise.all([
        startRegistry({ tls: true }),
        startRegistry({ tls: true, auth: 'htpasswd' }),
      ]);
    });
    afterAll(() => Promise.all([reg.stop(), basic.stop()]));

    it('serves https with a certs.d-style CA and rejects clients that do not trust it', async () => {
      expect(reg.url).toBe(`https://${reg.host}`);
      expect(await readFile(join(reg.certDir!, reg.host, 'ca.crt'), 'utf8')).toBe(
        await readFile(reg.caCertPath!, 'utf8'),
      );
      const ref = await pushFixture(image, reg, 'tls/app:v1');
      expect(await remoteDigest(ref, ['--cert-dir', join(reg.certDir!, reg.host)])).toBe(image.digest);
      await expect(remoteDigest(ref, ['--tls-verify=true'])).rejects.toThrow(/certificate/i);
    });

    it('combines TLS with htpasswd', async () => {
      const ref = await pushFixture(image, basic, 'tls/basic:v1');
      const flags = [
        '--cert-dir',
        join(basic.certDir!, basic.host),
        '--creds',
        `${basic.username}:${basic.password}`,
      ];
      expect(await remoteDigest(ref, flags)).toBe(image.digest);
    });

    it('combines TLS with token auth (token server on https too)', async () => {
      const tokenReg = await startRegistry({ tls: true, auth: 'token' });
      try {
        expect(tokenReg.tokenServerUrl).toMatch(/^https:/);
        const ref = await pushFixture(image, tokenReg, 'tls/token:v1');
        expect(
          await remoteDigest(ref, ['--cert-dir', join(tokenReg.certDir!, tokenReg.host), '--no-creds']),
        ).toBe(image.digest);
      } finally {
        await tokenReg.stop();
      }
    });
  });
});

describe('fixtures', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(() => reg.stop());

  it('is deterministic for a seed and differs across seeds', async () => {
    const again = await makeImageLayout({
      dir: join(work, 'again'),
      tag: 'v1',
      layers: 2,
      layerSize: 10_000,
      seed: 7,
    });
    const other = await makeImageLayout({
      dir: join(work, 'other'),
      tag: 'v1',
      layers: 2,
      layerSize: 10_000,
      seed: 8,
    });
    expect(again.digest).toBe(image.digest);
    expect(other.digest).not.toBe(image.digest);
  });

  it('writes a layout umoci can unpack, with a runnable busybox layer and correct diff_ids', async () => {
    const dir = join(work, 'busybox');
    const bb = await makeImageLayout({ dir, tag: 'bb', busybox: true, layers: 1 });
    expect(bb.layers).toHaveLength(2);
    const bundle = join(work, 'bundle');
    // umoci checks every layer against the config's diff_ids while unpacking.
    await run('umoci', ['unpack', '--rootless', '--image', `${dir}:bb`, bundle]);
    expect(await readlink(join(bundle, 'rootfs', 'bin', 'sh'))).toBe('busybox');
    expect((await lstat(join(bundle, 'rootfs', 'bin', 'busybox'))).mode & 0o111).toBeTruthy();
    const { stdout } = await run(join(bundle, 'rootfs', 'bin', 'busybox'), ['echo', 'hello']);
    expect(stdout.trim()).toBe('hello');
  });

  it('makes Docker v2s2 images that keep their digest when pushed', async () => {
    const v2 = await makeImageLayout({ dir: join(work, 'v2s2'), format: 'v2s2', seed: 3 });
    expect(v2.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const ref = await pushFixture(v2, reg, 'fixtures/v2s2:latest');
    expect(await remoteDigest(ref, ['--tls-verify=false'])).toBe(v2.digest);
  });

  it('makes a two-platform index whose platforms have different layers', async () => {
    const idx = await makeIndexLayout({
      dir: join(work, 'index'),
      platforms: ['linux/amd64', 'linux/arm64'],
    });
    expect(idx.manifests?.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    expect(new Set(idx.layers.map((l) => l.digest)).size).toBe(idx.layers.length);
    const ref = await pushFixture(idx, reg, 'fixtures/multi:latest');
    expect(await remoteDigest(ref, ['--tls-verify=false'])).toBe(idx.digest);
    expect(
      await remoteDigest(`${reg.host}/fixtures/multi@${idx.manifests![1]!.digest}`, ['--tls-verify=false']),
    ).toBe(idx.manifests![1]!.digest);
  });

  it('streams a 200 MiB layer to disk without holding it in memory', async () => {
    let peak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed);
    }, 20);
    try {
      const big = await makeImageLayout({ dir: join(work, 'big'), layers: 1, layerSize: 200 * 1024 * 1024 });
      expect(big.layers[0]!.size).toBeGreaterThan(200 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeLessThan(150 * 1024 * 1024);
  });
});

describe('startFaultProxy', () => {
  let reg: TestRegistry;
  let blob: FixtureImage['layers'][number];
  const blobPath = () => `/v2/faults/app/blobs/${blob.digest}`;
  beforeAll(async () => {
    reg = await startRegistry();
    await pushFixture(image, reg, 'faults/app:v1');
    blob = image.layers[0]!;
  });
  afterAll(() => reg.stop());

  /** GET through the proxy with node:http, counting body bytes until the end or a cut connection. */
  function rawGet(url: string): Promise<{ status: number; body: Buffer; complete: boolean }> {
    return new Promise((resolve, reject) => {
      httpGet(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: Buffer.concat(chunks), complete: res.complete }),
        );
        res.on('error', () =>
          resolve({ status: res.statusCode!, body: Buffer.concat(chunks), complete: false }),
        );
      }).on('error', reject);
    });
  }

  it('forwards pushes and pulls unchanged, rewriting upload Locations to itself', async () => {
    const proxy = await startFaultProxy(reg, []);
    try {
      const viaProxy = { ...reg, host: proxy.host, url: proxy.url };
      const other = await makeImageLayout({ dir: join(work, 'proxied'), seed: 11 });
      const ref = await pushFixture(other, viaProxy, 'faults/proxied:v1');
      expect(await remoteDigest(ref, ['--tls-verify=false'])).toBe(other.digest);
      const upload = await fetch(`${proxy.url}/v2/faults/app/blobs/uploads/`, { method: 'POST' });
      expect(upload.status).toBe(202);
      expect(upload.headers.get('location')).toMatch(
        new RegExp(`^(${proxy.url})?/v2/faults/app/blobs/uploads/`),
      );
      expect(upload.headers.get('location')).not.toContain(reg.host);
    } finally {
      await proxy.stop();
    }
  });

  it('answers 429 with Retry-After the first N times a request matches', async () => {
    const proxy = await startFaultProxy(reg, [
      {
        name: 'throttle',
        match: (r) => r.method === 'GET' && r.path.includes('/manifests/'),
        action: 'status',
        status: 429,
        headers: { 'retry-after': '1' },
        times: 2,
      },
    ]);
    try {
      const url = `${proxy.url}/v2/faults/app/manifests/v1`;
      const init = { headers: { accept: image.mediaType } };
      for (let i = 0; i < 2; i++) {
        const res = await fetch(url, init);
        expect(res.status).toBe(429);
        expect(res.headers.get('retry-after')).toBe('1');
        await res.body?.cancel();
      }
      const ok = await fetch(url, init);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('docker-content-digest')).toBe(image.digest);
      await ok.body?.cancel();
      expect(proxy.hits('throttle')).toBe(2);
    } finally {
      await proxy.stop();
    }
  });

  it('corrupts matching blob bodies without changing their length', async () => {
    const proxy = await startFaultProxy(reg, [
      { name: 'flip', match: (r) => r.path.includes('/blobs/sha256:'), action: 'corrupt-body', times: 1 },
    ]);
    try {
      const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
      const bad = await rawGet(proxy.url + blobPath());
      expect(bad.body.length).toBe(blob.size);
      expect(sha(bad.body)).not.toBe(blob.digest);
      const good = await rawGet(proxy.url + blobPath());
      expect(sha(good.body)).toBe(blob.digest);
      expect(proxy.hits('flip')).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it('cuts the connection after n response bytes', async () => {
    const proxy = await startFaultProxy(reg, [
      { name: 'cut', match: (r) => r.path.includes('/blobs/sha256:'), action: 'drop-after-bytes', n: 1000 },
    ]);
    try {
      const res = await rawGet(proxy.url + blobPath());
      expect(res.status).toBe(200);
      expect(res.complete).toBe(false);
      expect(res.body.length).toBe(1000);
      expect(proxy.hits('cut')).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it('cuts the connection after n request bytes of an upload', async () => {
    const proxy = await startFaultProxy(reg, [
      {
        name: 'cut-upload',
        match: (r) => r.method === 'PATCH',
        action: 'drop-after-bytes',
        n: 100,
        direction: 'request',
      },
    ]);
    try {
      const start = await fetch(`${proxy.url}/v2/faults/app/blobs/uploads/`, { method: 'POST' });
      await start.body?.cancel();
      const location = new URL(start.headers.get('location')!, proxy.url);
      await expect(
        fetch(location, {
          method: 'PATCH',
          body: Buffer.alloc(64 * 1024, 1),
          headers: { 'content-type': 'application/octet-stream' },
        }),
      ).rejects.toThrow();
      expect(proxy.hits('cut-upload')).toBe(1);
    } finally {
      await proxy.stop();
    }
  });
});
