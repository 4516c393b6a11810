/**
 * A misbehaving origin never holds a response, or the requests after it (issue 21), end to end: the
 * gateway, the CLI and a FUSE mount read an archive from a real S3-compatible server (s3rver) through
 * a real fault proxy (test/helpers/fault-proxy.ts) that stalls before the headers or mid-body and
 * resets connections; the server itself answers 503 storms, and is killed and restarted.
 *
 * What is asserted: every body sent complete is byte-exact; a stall is retried on a fresh connection
 * and costs one progress timeout; a stall that does not end gives a typed error (504 before the first
 * byte, a cut body after it) within the deadline; a clean request right after a stall succeeds; the
 * gateway recovers when the origin comes back. The time bounds are deadlines with generous slack (a
 * hang fails the test), never performance figures.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import type { ServeConfig } from '@hexz/src/gateway/config.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { randomBytesSeeded, sha256, writeTree } from '../helpers/data.js';
import { CLI, hexz, run } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_REQUIRED, fuseUnavailableReason, forceUnmount, startMount, type RunningMount } from '../fuse/mount-helper.js';
import { MiB } from './fixture.js';

const BUCKET = 'hexz-faults';
/** Short, so stalls are noticed quickly, and far above what a loopback answer takes. */
const PROGRESS_MS = 300;
/** The gateway's request deadline in these tests. */
const REQUEST_MS = 3000;
/** Slack on every deadline: scheduling on a loaded 2-core machine, never a performance bound. */
const SLACK_MS = 4000;
/**
 * Every test reads a file of its own, so no test finds another's bytes in the process's chunk cache
 * (or in its readahead): FILES of SLICE bytes each, and CUT for the cut-body test.
 */
const SLICE = 2 * MiB;
const FILES = 12;
const SLICES = Array.from({ length: FILES }, (_, i) => randomBytesSeeded(SLICE, 2200 + i));
const CUT = randomBytesSeeded(16 * MiB, 2101);
/** What the CLI and the mount read whole. */
const DATA = randomBytesSeeded(8 * MiB, 2102);

let s3: S3TestServer;
let proxy: FaultProxy;
let tmp: { dir: string; cleanup: () => Promise<void> };
let nextSlice = 0;
const gateways: Gateway[] = [];

/** A file no earlier test has read, to be read whole (a range of all its bytes). */
function freshSlice(): { url: (gw: Gateway) => string; bytes: Buffer } {
  const i = nextSlice++;
  if (i >= FILES) throw new Error('out of fresh files: raise FILES');
  return { url: (gw) => `${gw.url}/v1/archives/v1/files/slice-${i}.bin`, bytes: SLICES[i] };
}

/** A gateway over the bucket behind the proxy, with the archive already open (faults then meet only content reads). */
async function gateway(config: Partial<ServeConfig> = {}, progressTimeoutMs = PROGRESS_MS): Promise<Gateway> {
  proxy.reset();
  const gw = await startGateway(
    {
      storage: `s3://${BUCKET}/ds`,
      storageOptions: { s3: { endpoint: proxy.endpoint, forcePathStyle: true, progressTimeoutMs } },
      port: 0,
      logLevel: 'silent',
      archiveTtlMs: 600_000,
      requestTimeoutMs: REQUEST_MS,
      ...config,
    },
    { processMetrics: false },
  );
  gateways.push(gw);
  const info = await fetch(`${gw.url}/v1/archives/v1`);
  expect(info.status).toBe(200);
  proxy.reset();
  proxy.match = (req) => req.method === 'GET';
  return gw;
}

/** GET a range with node:http, collecting what arrives even when the body is cut. */
function getRange(url: string, offset: number, length: number): Promise<{ status: number; body: Buffer; complete: boolean; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { range: `bytes=${offset}-${offset + length - 1}` } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      const done = (complete: boolean) => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), complete, ms: Date.now() - t0 });
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
    });
    req.on('error', reject);
  });
}


beforeAll(async () => {
  s3 = await startS3Server({ buckets: [BUCKET] });
  Object.assign(process.env, s3.env);
  proxy = await startFaultProxy(s3.endpoint);
  tmp = await makeTempDir('hexz-origin-faults-');
  const input = path.join(tmp.dir, 'in');
  await writeTree(input, {
    'data.bin': DATA,
    'cut.bin': CUT,
    'small.txt': 'hello through a faulty origin\n',
    ...Object.fromEntries(SLICES.map((b, i) => [`slice-${i}.bin`, b])),
  });
  // Packed straight to the server (not through the proxy): the faults are for the readers.
  await pack(input, `s3://${BUCKET}/ds/v1.hxz`, { storage: { s3: { endpoint: s3.endpoint, forcePathStyle: true } }, threads: 2 });
}, 120_000);
afterEach(() => proxy.reset());
afterAll(async () => {
  for (const gw of gateways) await gw.close();
  await proxy?.stop();
  await s3?.stop();
  await tmp?.cleanup();
});

describe('the gateway over a faulty origin', () => {
  it.each(['stall-headers', 'stall-body', 'reset', 'reset-body'] as const)('a content read that meets %s once is retried on a fresh connection: exact bytes', async (fault) => {
    const gw = await gateway();
    const { url, bytes } = freshSlice();
    proxy.next(fault);
    const r = await getRange(url(gw), 0, SLICE);
    expect(r.status).toBe(206);
    expect(r.complete).toBe(true);
    expect(sha256(r.body)).toBe(sha256(bytes));
    const [faulted, ...later] = proxy.requests;
    expect(faulted.fault).toBe(fault);
    expect(later.some((q) => q.connection !== faulted.connection)).toBe(true);
  });

  it('a clean request right after a stall gets its bytes: the stalled read is retried, not inherited', async () => {
    const gw = await gateway();
    const { url, bytes } = freshSlice();
    proxy.next('stall-body');
    const first = getRange(url(gw), 0, SLICE);
    await new Promise((r) => setTimeout(r, PROGRESS_MS / 3));
    // The same bytes, asked while the first read is stalled: it joins the shared read, which the
    // progress timeout restarts on a fresh connection.
    const second = await getRange(url(gw), 0, SLICE);
    expect(second.status).toBe(206);
    expect(sha256(second.body)).toBe(sha256(bytes));
    expect(second.ms).toBeLessThan(REQUEST_MS + SLACK_MS);
    const r = await first;
    expect(sha256(r.body)).toBe(sha256(bytes));
  });

  it('a stall that does not end: 504 TIMEOUT before the first byte, within the deadline; the next clean request succeeds', async () => {
    const gw = await gateway();
    const { url, bytes } = freshSlice();
    proxy.always('stall-body');
    const r = await getRange(url(gw), 0, SLICE);
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body.toString()).error.code).toBe('TIMEOUT');
    expect(r.ms).toBeLessThan(REQUEST_MS + SLACK_MS);
    proxy.always('pass');
    const again = await getRange(url(gw), 0, SLICE);
    expect(again.status).toBe(206);
    expect(sha256(again.body)).toBe(sha256(bytes));
  });

  it('a started response whose storage stalls for good is cut within the deadline (never a silent hang), and counted', async () => {
    // A progress timeout longer than the request deadline: only the gateway's own body deadline can end it.
    const gw = await gateway({}, 60_000);
    // The first read (the start of the range) passes; everything after it stalls mid-body.
    proxy.next('pass');
    proxy.always('stall-body');
    const r = await getRange(`${gw.url}/v1/archives/v1/files/cut.bin`, 0, CUT.length);
    expect(r.status).toBe(206);
    expect(r.complete).toBe(false);
    expect(r.body.length).toBeLessThan(CUT.length);
    // What arrived is the start of the file, byte for byte.
    expect(r.body.equals(CUT.subarray(0, r.body.length))).toBe(true);
    expect(r.ms).toBeLessThan(2 * REQUEST_MS + SLACK_MS);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^hexz_http_body_stalls_total [1-9]/m);
  });

  it('a 503 storm: short ones are ridden out with exact bytes; one that lasts is 502 STORAGE_IO, and the gateway recovers', async () => {
    // The default deadline: the SDK backs off between its attempts at a throttled origin (seconds in
    // all), and that wait is not a stall.
    const gw = await gateway({ requestTimeoutMs: 30_000 });
    const short = freshSlice();
    await s3.setFaults({ failGets: 2 });
    const ok = await getRange(short.url(gw), 0, SLICE);
    expect(ok.status).toBe(206);
    expect(sha256(ok.body)).toBe(sha256(short.bytes));

    const long = freshSlice();
    await s3.setFaults({ failGets: 1000 });
    const refused = await getRange(long.url(gw), 0, SLICE).finally(() => s3.setFaults({ failGets: 0 }));
    expect(refused.status, `${refused.body} after ${refused.ms} ms`).toBe(502);
    expect(JSON.parse(refused.body.toString()).error.code).toBe('STORAGE_IO');
    expect(refused.ms).toBeLessThan(30_000);
    const back = await getRange(long.url(gw), 0, SLICE);
    expect(back.status).toBe(206);
    expect(sha256(back.body)).toBe(sha256(long.bytes));
  });

  it('the origin killed: 502 within the deadline, /readyz says so; restarted on the same data: exact bytes again', async () => {
    const gw = await gateway();
    const { url, bytes } = freshSlice();
    await s3.kill();
    try {
      const down = await getRange(url(gw), 0, SLICE);
      expect([502, 504]).toContain(down.status);
      expect(down.ms).toBeLessThan(REQUEST_MS + SLACK_MS);
    } finally {
      s3 = await startS3Server({ dir: s3.dir, port: s3.port, buckets: [BUCKET] });
    }
    // The restarted server's own first answer (a cold process) is not what is under test.
    await s3.requests();
    const up = await getRange(url(gw), 0, SLICE);
    expect(up.status).toBe(206);
    expect(sha256(up.body)).toBe(sha256(bytes));
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
  });
});

describe('the CLI over a faulty origin', () => {
  const env = () => ({ ...s3.env, HEXZ_S3_ENDPOINT: proxy.endpoint, HEXZ_STORAGE_TIMEOUT: String(PROGRESS_MS / 1000) });

  it('cat through a stall and a reset gives exact bytes; a stall that does not end is exit 12 TIMEOUT naming the object', async () => {
    proxy.reset();
    proxy.match = (req) => req.method === 'GET' && (req.headers.range ?? '').length > 0;
    // Faults apart, so that no single read meets one on each of its attempts.
    proxy.next('pass', 'stall-body', 'pass', 'pass', 'reset-body');
    const out = path.join(tmp.dir, 'cat.bin');
    const r = await run('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} cat s3://${BUCKET}/ds/v1.hxz data.bin > ${JSON.stringify(out)}`], { env: env() });
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(sha256(await fs.readFile(out))).toBe(sha256(DATA));
    expect(proxy.requests.map((q) => q.fault)).toEqual(expect.arrayContaining(['stall-body', 'reset-body']));

    proxy.reset();
    proxy.always('stall-body');
    const t0 = Date.now();
    const stuck = await hexz(['cat', `s3://${BUCKET}/ds/v1.hxz`, 'small.txt'], { env: env() });
    expect(stuck.code).toBe(12);
    expect(stuck.stderr).toMatch(/v1\.hxz/);
    expect(Date.now() - t0).toBeLessThan(REQUEST_MS + SLACK_MS);
  });
});

describe('a mount over a faulty origin', () => {
  let skip: string | undefined;
  let mount: RunningMount | undefined;
  let mp: string;
  beforeAll(async () => {
    skip = await fuseUnavailableReason();
    if (skip && FUSE_REQUIRED) throw new Error(skip);
  });
  afterAll(async () => {
    await mount?.stop();
    if (mp) await forceUnmount(mp);
  });

  it('reads exact bytes through stalls and resets; a stall that does not end fails the read (no hang), and the mount recovers', async (t) => {
    if (skip) return t.skip();
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(mp, { recursive: true });
    proxy.reset();
    mount = await startMount(`s3://${BUCKET}/ds/v1.hxz`, mp, {
      env: { ...s3.env, HEXZ_S3_ENDPOINT: proxy.endpoint, HEXZ_STORAGE_TIMEOUT: String(PROGRESS_MS / 1000) },
    });
    // First a stall that does not end, on bytes the fresh mount has never read.
    proxy.reset();
    proxy.match = (req) => req.method === 'GET';
    proxy.always('stall-body');
    const t0 = Date.now();
    const stuck = await run('python3', ['-c', `import sys\ntry:\n  open(sys.argv[1],'rb').read()\n  print('read')\nexcept OSError as e:\n  print('error', e.errno)`, path.join(mp, 'small.txt')]);
    expect(stuck.stdout.toString().trim()).toMatch(/^error \d+$/);
    expect(Date.now() - t0).toBeLessThan(REQUEST_MS + SLACK_MS);
    // The origin behaves again: the same file reads (nothing failed was cached), then everything
    // through one stall and one reset of each kind.
    proxy.reset();
    proxy.match = (req) => req.method === 'GET';
    expect(await fs.readFile(path.join(mp, 'small.txt'), 'utf8')).toBe('hello through a faulty origin\n');
    proxy.next('stall-body', 'pass', 'pass', 'reset-body');
    const sum = await run('sha256sum', [path.join(mp, 'data.bin')]);
    expect(sum.stdout.toString().split(' ')[0]).toBe(sha256(DATA));
  });
});
