/**
 * Limits and resource bounds of the gateway, each on a real listening server (port 0):
 * - a client that disconnects mid-body releases its archive lease and the storage reads stop;
 * - the archive LRU (`maxOpenArchives`, HEXZ_MAX_OPEN_ARCHIVES): bounded open archives, exact bytes
 *   while alternating, and an archive evicted while leased still finishes its response;
 * - the configured `Cache-Control` on content responses;
 * - `maxRanges`: more ranges (after merging) are answered 200 with the whole body.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServeConfig } from '@hexz/src/cli/serve-config.js';
import type { ArchiveLease } from '@hexz/src/gateway/registry.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded, textBytes } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB, packArchive, parseMultipart } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
/** A single-file archive far larger than the cache, the prefetch allowance and socket buffers together. */
const BIG = randomBytesSeeded(72 * MiB + 5, 43);
/** Three small directory archives `a0`, `a1`, `a2`, each with `blob.bin` (random then text, several chunks). */
const SMALL = [0, 1, 2].map((i) => ({ name: `a${i}`, bytes: Buffer.concat([randomBytesSeeded(400_000 + i * 1000, 60 + i), textBytes(500_000, 70 + i)]) }));

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-limits-');
  root = path.join(tmp.dir, 'archives');
  const src = path.join(tmp.dir, 'big.bin');
  await fs.writeFile(src, BIG);
  await packArchive(src, root, 'big', { compression: 'none' });
  for (const s of SMALL) {
    const dir = path.join(tmp.dir, s.name);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'blob.bin'), s.bytes);
    await packArchive(dir, root, s.name);
  }
});
afterAll(() => tmp?.cleanup());

/**
 * Count the leases the routes hold, per archive name: wraps the registry's `acquire` so that every
 * lease it hands out is counted until the route releases it (the real release still runs).
 */
function trackLeases(gw: Gateway): { active: (name: string) => number; taken: (name: string) => number } {
  const active = new Map<string, number>();
  const taken = new Map<string, number>();
  const acquire = gw.registry.acquire.bind(gw.registry);
  gw.registry.acquire = async (name: string): Promise<ArchiveLease> => {
    const lease = await acquire(name);
    active.set(lease.name, (active.get(lease.name) ?? 0) + 1);
    taken.set(lease.name, (taken.get(lease.name) ?? 0) + 1);
    let released = false;
    return {
      name: lease.name,
      archive: lease.archive,
      id: lease.id,
      release: () => {
        if (!released) {
          released = true;
          active.set(lease.name, active.get(lease.name)! - 1);
        }
        lease.release();
      },
    };
  };
  return { active: (n) => active.get(n) ?? 0, taken: (n) => taken.get(n) ?? 0 };
}

/** Wait until `cond()` holds, polling; fails with `what` after `ms`. No assertion on how fast. */
async function eventually(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

/** Start a GET, wait for its first bytes, then pause: a slow client with a response in flight. */
async function slowRequest(url: string): Promise<{ res: http.IncomingMessage; body: Promise<Buffer>; req: http.ClientRequest; received: () => number }> {
  let req!: http.ClientRequest;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.get(url, { agent: false }, resolve);
    req.on('error', reject);
  });
  const chunks: Buffer[] = [];
  let received = 0;
  const body = new Promise<Buffer>((resolve, reject) => {
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
  });
  body.catch(() => {});
  res.on('data', (c: Buffer) => {
    chunks.push(c);
    received += c.length;
  });
  await new Promise((r) => res.once('data', r));
  res.pause();
  return { res, body, req, received: () => received };
}

/** The value of one sample of the Prometheus exposition (labels given in exposition order), or undefined. */
async function metric(gw: Gateway, sample: string): Promise<number | undefined> {
  const text = (await get(`${gw.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe('a client that disconnects mid-body', () => {
  it('releases its lease and stops the storage reads it caused', async () => {
    // The smallest cache (8 MiB): almost every byte served is a storage read.
    const gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', cacheBytes: 8 * MiB }, { processMetrics: false });
    try {
      const leases = trackLeases(gw);
      expect((await get(`${gw.url}/v1/archives/big`)).status).toBe(200); // open the archive first
      await eventually('the info request released its lease', () => leases.active('big') === 0);
      const before = gw.storageCounters.bytes;

      const slow = await slowRequest(`${gw.url}/v1/archives/big/disk`);
      expect(slow.res.statusCode).toBe(200);
      expect(Number(slow.res.headers['content-length'])).toBe(BIG.length);
      // The response in flight holds the archive.
      expect(leases.active('big')).toBe(1);
      expect(slow.received()).toBeLessThan(BIG.length);

      slow.req.destroy();

      // The lease is given back once the server sees the connection go.
      await eventually('the lease of the cut response is released', () => leases.active('big') === 0);
      // Loads already started may still land: wait until the counter has not moved for a while...
      let last = -1;
      let stable = 0;
      await eventually('storage reads settle', async () => {
        const now = gw.storageCounters.bytes;
        stable = now === last ? stable + 1 : 0;
        last = now;
        if (stable < 5) await sleep(20);
        return stable >= 5;
      });
      // ...then it must stay put: nothing keeps reading for a client that is gone.
      const settled = gw.storageCounters.bytes;
      await sleep(500);
      expect(gw.storageCounters.bytes).toBe(settled);
      // And it stopped early: far less than the file was read (cache 8 MiB, socket buffers).
      expect(settled - before).toBeLessThan(BIG.length / 3);
      expect(gw.cache.prefetchBytes).toBe(0);

      // Counted as a cut response, with fewer body bytes than the file.
      await eventually('the cut response is counted', async () => (await metric(gw, 'hexz_http_requests_total{route="disk",method="GET",status="499"}')) === 1);
      expect(await metric(gw, 'hexz_http_response_body_bytes_total{route="disk"}')).toBeLessThan(BIG.length);

      // The archive is still served correctly afterwards (lease accounting intact).
      const at = 50 * MiB + 7;
      const r = await get(`${gw.url}/v1/archives/big/disk`, { range: `bytes=${at}-${at + 99_999}` });
      expect(r.status).toBe(206);
      expect(r.body.equals(BIG.subarray(at, at + 100_000))).toBe(true);
      await eventually('the range request released its lease', () => leases.active('big') === 0);
    } finally {
      await gw.close();
    }
  });
});

describe('archive LRU with maxOpenArchives=1 (HEXZ_MAX_OPEN_ARCHIVES)', () => {
  let gw: Gateway;
  let leases: ReturnType<typeof trackLeases>;
  const openArchives = () => metric(gw, 'hexz_open_archives');
  const opened = async () => (await metric(gw, 'hexz_archive_opens_total{outcome="opened"}')) ?? 0;

  beforeAll(async () => {
    const cfg = await loadServeConfig({ storage: root, port: '0', logLevel: 'silent' }, { HEXZ_MAX_OPEN_ARCHIVES: '1' });
    expect(cfg.maxOpenArchives).toBe(1);
    gw = await startGateway({ ...cfg, cacheBytes: 8 * MiB }, { processMetrics: false });
    leases = trackLeases(gw);
  });
  afterAll(() => gw?.close());

  it('requests alternating over 3 archives all get exact bytes; at most one stays open; each switch reopens', async () => {
    const opensBefore = await opened();
    const rounds = 9;
    for (let k = 0; k < rounds; k++) {
      const s = SMALL[k % 3];
      const url = `${gw.url}/v1/archives/${s.name}/files/blob.bin`;
      if (k % 2 === 0) {
        const r = await get(url);
        expect(r.status).toBe(200);
        expect(r.body.equals(s.bytes), `${s.name} whole`).toBe(true);
      } else {
        const start = (k * 123_457) % (s.bytes.length - 300_000);
        const r = await get(url, { range: `bytes=${start}-${start + 299_999}` });
        expect(r.status).toBe(206);
        expect(r.body.equals(s.bytes.subarray(start, start + 300_000)), `${s.name} ${start}`).toBe(true);
      }
      await eventually(`${s.name}: lease released`, () => leases.active(s.name) === 0);
      await eventually('at most one archive open', async () => (await openArchives())! <= 1);
      expect(gw.registry.openCount).toBeLessThanOrEqual(1);
    }
    // Every request switched archive, so every one had to open it again (the others were evicted).
    expect((await opened()) - opensBefore).toBe(rounds);
    // The same archive twice in a row is served from the open one.
    const last = SMALL[(rounds - 1) % 3];
    const again = await get(`${gw.url}/v1/archives/${last.name}/files/blob.bin`);
    expect(again.body.equals(last.bytes)).toBe(true);
    expect((await opened()) - opensBefore).toBe(rounds);
  });

  it('an archive evicted while a slow response holds it finishes that response byte-exact, then closes', async () => {
    const opensBefore = await opened();
    const slow = await slowRequest(`${gw.url}/v1/archives/big/disk`);
    expect(slow.res.statusCode).toBe(200);
    expect(leases.active('big')).toBe(1);

    // Two other archives take the single slot: `big` is evicted from the LRU while still leased.
    for (const s of [SMALL[0], SMALL[1]]) {
      const r = await get(`${gw.url}/v1/archives/${s.name}/files/blob.bin`);
      expect(r.body.equals(s.bytes)).toBe(true);
      await eventually(`${s.name}: lease released`, () => leases.active(s.name) === 0);
    }
    expect(await opened()).toBe(opensBefore + 3);
    expect(leases.active('big')).toBe(1);
    // Open now: the evicted-but-leased `big` and the current `a1`.
    await eventually('the leased, evicted archive still counts as open', async () => (await openArchives()) === 2);

    slow.res.resume();
    const body = await slow.body;
    expect(body.length).toBe(BIG.length);
    expect(body.equals(BIG)).toBe(true);

    // Its last lease ended: the evicted archive is closed, only the LRU's one stays open.
    await eventually('the lease of the finished response is released', () => leases.active('big') === 0);
    await eventually('the evicted archive is closed once unleased', async () => (await openArchives()) === 1);

    // And it opens afresh for the next request.
    const at = 70 * MiB;
    const r = await get(`${gw.url}/v1/archives/big/disk`, { range: `bytes=${at}-` });
    expect(r.status).toBe(206);
    expect(r.body.equals(BIG.subarray(at))).toBe(true);
    expect(await opened()).toBe(opensBefore + 4);
  });
});

describe('configured Cache-Control and maxRanges', () => {
  let gw: Gateway;
  const CC = 'public, max-age=60';
  const s = SMALL[2];
  let url: string;

  beforeAll(async () => {
    // Both from the environment, as `hexz serve` reads them.
    const cfg = await loadServeConfig({ storage: root, port: '0', logLevel: 'silent' }, { HEXZ_CACHE_CONTROL: CC, HEXZ_MAX_RANGES: '2' });
    expect(cfg.cacheControl).toBe(CC);
    expect(cfg.maxRanges).toBe(2);
    gw = await startGateway(cfg, { processMetrics: false });
    url = `${gw.url}/v1/archives/${s.name}/files/blob.bin`;
  });
  afterAll(() => gw?.close());

  it('flags take precedence over the environment', async () => {
    const cfg = await loadServeConfig({ storage: root, cacheControl: 'private, max-age=5', maxRanges: '3' }, { HEXZ_CACHE_CONTROL: CC, HEXZ_MAX_RANGES: '2' });
    expect(cfg.cacheControl).toBe('private, max-age=5');
    expect(cfg.maxRanges).toBe(3);
  });

  it('content responses carry the configured Cache-Control (200, 206, HEAD, 304, /disk)', async () => {
    const full = await get(url);
    expect(full.status).toBe(200);
    expect(full.headers.get('cache-control')).toBe(CC);
    expect(full.body.equals(s.bytes)).toBe(true);

    const part = await get(url, { range: 'bytes=10-20' });
    expect(part.status).toBe(206);
    expect(part.headers.get('cache-control')).toBe(CC);
    expect(part.body.equals(s.bytes.subarray(10, 21))).toBe(true);

    const head = await get(url, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('cache-control')).toBe(CC);

    const etag = full.headers.get('etag')!;
    const notModified = await get(url, { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('cache-control')).toBe(CC);

    const disk = await get(`${gw.url}/v1/archives/big/disk`, { range: 'bytes=0-9' });
    expect(disk.status).toBe(206);
    expect(disk.headers.get('cache-control')).toBe(CC);
    expect(disk.body.equals(BIG.subarray(0, 10))).toBe(true);
  });

  it('2 ranges (the limit): 206 multipart/byteranges with exact parts', async () => {
    const r = await get(url, { range: 'bytes=5-104,600000-650000' });
    expect(r.status).toBe(206);
    const type = r.headers.get('content-type')!;
    expect(type).toMatch(/^multipart\/byteranges; boundary=/);
    expect(Number(r.headers.get('content-length'))).toBe(r.body.length);
    expect(r.headers.get('cache-control')).toBe(CC);
    const parts = parseMultipart(r.body, type);
    expect(parts).toHaveLength(2);
    expect(parts[0].headers['content-range']).toBe(`bytes 5-104/${s.bytes.length}`);
    expect(parts[0].bytes.equals(s.bytes.subarray(5, 105))).toBe(true);
    expect(parts[1].headers['content-range']).toBe(`bytes 600000-650000/${s.bytes.length}`);
    expect(parts[1].bytes.equals(s.bytes.subarray(600_000, 650_001))).toBe(true);
  });

  it('3 ranges (over the limit): 200 with the whole body', async () => {
    const r = await get(url, { range: 'bytes=0-9,1000-1999,500000-500099' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-range')).toBeNull();
    expect(r.headers.get('content-type')).not.toMatch(/multipart/);
    expect(Number(r.headers.get('content-length'))).toBe(s.bytes.length);
    expect(r.body.equals(s.bytes)).toBe(true);
  });

  it('the limit counts ranges after merging: 3 ranges that merge into 2 are still 206', async () => {
    // 0-9 and 10-19 are adjacent: merged into 0-19.
    const r = await get(url, { range: 'bytes=0-9,10-19,700000-700009' });
    expect(r.status).toBe(206);
    const parts = parseMultipart(r.body, r.headers.get('content-type')!);
    expect(parts.map((p) => p.headers['content-range'])).toEqual([`bytes 0-19/${s.bytes.length}`, `bytes 700000-700009/${s.bytes.length}`]);
    expect(parts[0].bytes.equals(s.bytes.subarray(0, 20))).toBe(true);
    expect(parts[1].bytes.equals(s.bytes.subarray(700_000, 700_010))).toBe(true);
  });
});
