/**
 * Lifecycle: graceful shutdown with a request in flight (programmatic and `hexz serve` under SIGTERM
 * and SIGINT, exit code 0), the bound on draining, and a client that disconnects stopping the reads
 * it caused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '@hexz/src/gateway/server.js';
import { spawnServe, type ServeProcess } from '../helpers/serve.js';
import { CLI } from '../helpers/cli.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
const BIG = randomBytesSeeded(96 * MiB + 3, 41);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-shutdown-');
  root = path.join(tmp.dir, 'archives');
  const src = path.join(tmp.dir, 'big.bin');
  await fs.writeFile(src, BIG);
  await packArchive(src, root, 'big', { compression: 'none' });
});
afterAll(() => tmp.cleanup());

/** Start a GET, read its first bytes, then pause: a slow client with a response in flight. */
async function slowRequest(url: string): Promise<{ res: http.IncomingMessage; body: Promise<Buffer>; req: http.ClientRequest }> {
  let req!: http.ClientRequest;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.get(url, { agent: false }, resolve);
    req.on('error', reject);
  });
  const chunks: Buffer[] = [];
  const body = new Promise<Buffer>((resolve, reject) => {
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
  });
  body.catch(() => {});
  res.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => res.once('data', r));
  res.pause();
  return { res, body, req };
}

function refused(url: string): Promise<boolean> {
  return get(url).then(
    () => false,
    () => true,
  );
}

describe('graceful shutdown', () => {
  it('stops accepting, lets the in-flight response finish, then resolves', async () => {
    const gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
    const slow = await slowRequest(`${gw.url}/v1/archives/big/disk`);
    let closed = false;
    const closing = gw.close().then(() => (closed = true));
    await sleep(50);
    expect(await refused(`${gw.url}/healthz`)).toBe(true);
    expect(closed).toBe(false);
    slow.res.resume();
    const body = await slow.body;
    expect(body.length).toBe(BIG.length);
    expect(body.equals(BIG)).toBe(true);
    await closing;
    expect(closed).toBe(true);
  });

  it('draining is bounded: a client that never reads is cut after the shutdown timeout', async () => {
    const gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', shutdownTimeoutMs: 200 }, { processMetrics: false });
    const slow = await slowRequest(`${gw.url}/v1/archives/big/disk`);
    await gw.close();
    slow.res.resume();
    await expect(slow.body).rejects.toThrow();
  });
});

describe('a client that disconnects', () => {
  it('stops the reads it caused', async () => {
    const gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
    try {
      await get(`${gw.url}/v1/archives/big`); // open the archive first
      const slow = await slowRequest(`${gw.url}/v1/archives/big/disk`);
      slow.req.destroy();
      // Wait until storage reads settle (prefetches already started may complete), then compare.
      let last = -1;
      for (let stable = 0; stable < 5; ) {
        await sleep(40);
        const now = gw.storageCounters.bytes;
        stable = now === last ? stable + 1 : 0;
        last = now;
      }
      expect(last).toBeLessThan((BIG.length * 2) / 3);
      const metrics = (await get(`${gw.url}/metrics`)).body.toString();
      expect(Number(/hexz_http_response_body_bytes_total\{route="disk"\} (\d+)/.exec(metrics)![1])).toBeLessThan(BIG.length);
    } finally {
      await gw.close();
    }
  });
});

describe('hexz serve', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  async function serve(extraEnv: Record<string, string> = {}): Promise<ServeProcess> {
    const s = await spawnServe(['--storage', root, '--port', '0'], { env: extraEnv });
    child = s.child;
    return s;
  }

  it('SIGTERM with a request in flight: the response completes, exit code 0', async () => {
    const s = await serve();
    const r = await get(`${s.url}/v1/archives/big/disk`, { range: 'bytes=0-99' });
    expect(r.body.equals(BIG.subarray(0, 100))).toBe(true);
    const slow = await slowRequest(`${s.url}/v1/archives/big/disk`);
    s.child.kill('SIGTERM');
    await sleep(50);
    slow.res.resume();
    const body = await slow.body;
    expect(body.equals(BIG)).toBe(true);
    expect(await s.exit).toBe(0);
    expect(s.output()).toContain('stopped');
  });

  it('Ctrl-C (SIGINT) when idle: exit code 0', async () => {
    const s = await serve();
    expect((await get(`${s.url}/healthz`)).status).toBe(200);
    s.child.kill('SIGINT');
    expect(await s.exit).toBe(0);
  });

  it('a bad configuration exits with the usage code and a clear message', async () => {
    const c = spawn(process.execPath, [CLI, 'serve', '--storage', root, '--port', '99999'], { env: { ...process.env, HEXZ_PROGRESS: '0' } });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => c.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/--port/);
  });
});
