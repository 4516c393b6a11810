/**
 * `hexz serve --workers N` (src/gateway/workers.ts): N worker threads on one port over one shared
 * cache. What a user relies on: every worker answers byte-exact, /metrics on any of them shows the
 * whole server, a worker that dies is replaced (its cache pins given back), close() drains.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers, type GatewayCluster } from '@hexz/src/gateway/workers.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { MiB, get, packArchive } from './fixture.js';

const DATA = randomBytesSeeded(6 * MiB + 333, 91);

/** A GET on a fresh connection (no keep-alive), so that the kernel may hand it to any worker. */
function getFresh(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The sum of every sample of `name` (all label sets) in an exposition text. */
function total(text: string, name: string, labels = ''): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('gateway workers', () => {
  let root: string;
  let cluster: GatewayCluster;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const { dir, cleanup: rm } = await makeTempDir('hexz-gw-workers-');
    cleanup = rm;
    root = path.join(dir, 'store');
    await fs.mkdir(path.join(dir, 'in'));
    await fs.writeFile(path.join(dir, 'in', 'data.bin'), DATA);
    await packArchive(path.join(dir, 'in'), root, 'w');
    cluster = await startGatewayWorkers({ storage: root, port: 0, logLevel: 'silent', cacheBytes: 32 * MiB }, { workers: 2, log: () => {} });
  });
  afterAll(async () => {
    await cluster?.close();
    await cleanup?.();
  });

  it('every connection gets exact bytes, and /metrics counts the requests of all workers', async () => {
    expect(cluster.threads()).toHaveLength(2);
    const url = `${cluster.url}/v1/archives/w/files/data.bin`;
    const before = total((await get(`${cluster.url}/metrics`)).body.toString(), 'hexz_http_requests_total', 'route="files"');
    const n = 24;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const start = (i * 250_007) % (DATA.length - 100_000);
        return getFresh(url, { range: `bytes=${start}-${start + 99_999}` }).then((r) => ({ r, start }));
      }),
    );
    for (const { r, start } of results) {
      expect(r.status).toBe(206);
      expect(r.body.equals(DATA.subarray(start, start + 100_000))).toBe(true);
    }
    const whole = await getFresh(url);
    expect(whole.body.equals(DATA)).toBe(true);
    const text = (await get(`${cluster.url}/metrics`)).body.toString();
    expect(total(text, 'hexz_http_requests_total', 'route="files"') - before).toBe(n + 1);
    // Process metrics come once, from the main thread.
    expect(text.match(/^process_resident_memory_bytes /gm)).toHaveLength(1);
  });

  it('a worker that dies is counted and replaced; the server keeps answering meanwhile', async () => {
    const [victim] = cluster.threads();
    await victim!.terminate();
    // The other worker serves while the replacement starts.
    const r = await getFresh(`${cluster.url}/v1/archives/w/files/data.bin`, { range: 'bytes=0-9' });
    expect(r.status).toBe(206);
    expect(r.body.equals(DATA.subarray(0, 10))).toBe(true);
    await eventually('the worker is replaced', () => cluster.restarts() === 1 && cluster.threads().length === 2);
    await eventually('the restart shows in /metrics', async () => /^hexz_gateway_worker_restarts_total 1$/m.test((await get(`${cluster.url}/metrics`)).body.toString()));
    for (let i = 0; i < 6; i++) {
      const again = await getFresh(`${cluster.url}/v1/archives/w/files/data.bin`, { range: `bytes=${i * MiB}-${i * MiB + 999}` });
      expect(again.body.equals(DATA.subarray(i * MiB, i * MiB + 1000))).toBe(true);
    }
  });

  it('a start-up error of a worker rejects with its code and the option it names', async () => {
    const err = await startGatewayWorkers({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [path.join(root, 'nope')] }, { workers: 2, log: () => {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', context: { option: 'authTokenFiles' } });
  });
});
