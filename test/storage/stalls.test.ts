/**
 * Progress timeouts (issue 21), through a real fault proxy (test/helpers/fault-proxy.ts) in front of the
 * real test HTTP server and a real s3rver: a storage read that receives nothing for the progress timeout,
 * before the headers or in the middle of the body, is aborted, its connection dropped, and retried on a
 * fresh one within the retry budget; bytes are exact; a stall that never ends is `TIMEOUT` naming the
 * URL; connection resets are `STORAGE_IO`, never `TIMEOUT` (issue 22). A short progress timeout keeps
 * the tests quick; nothing here asserts how long anything took.
 */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { openStorage, type StorageOptions } from '@hexz/storage/index.js';
import { S3_MAX_ATTEMPTS, S3_READ_RETRIES } from '@hexz/storage/s3.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

/** Short, so stalls are noticed quickly, and far above what a loopback answer takes. */
const PROGRESS_MS = 300;
const SIZE = 512 * 1024 + 3;
const DATA = randomBytes(SIZE);
const BUCKET = 'stalls';

async function errorOf(p: Promise<unknown>): Promise<HexzError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HexzError) return err;
    throw new Error(`expected a HexzError, got ${err}`);
  }
  throw new Error('expected an error, got success');
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** The faults the proxy applied to the requests it logged, in order. */
const faultsOf = (proxy: FaultProxy) => proxy.requests.map((r) => r.fault);

/**
 * Checks shared by both backends: after a stall the read was retried on another connection, and the
 * stalled connection gets closed (so the pool cannot hand it out again; a test that hangs here fails).
 */
async function expectFreshConnection(proxy: FaultProxy, stall: Fault): Promise<void> {
  const stalled = proxy.requests.filter((r) => r.fault === stall);
  const after = proxy.requests.filter((r) => r.fault === 'pass');
  expect(stalled.length).toBeGreaterThan(0);
  expect(after.length).toBeGreaterThan(0);
  for (const s of stalled) {
    expect(after.at(-1)!.connection).not.toBe(s.connection);
    await proxy.whenClosed(s.connection);
  }
}

describe('http: progress timeout', () => {
  let server: TestHttpServer;
  let proxy: FaultProxy;
  let url: string;
  const RETRIES = 2;

  beforeAll(async () => {
    server = await startHttpServer();
    await server.put('a.bin', DATA);
    proxy = await startFaultProxy(server.url);
    url = `${proxy.url}a.bin`;
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  const open = () => openStorage(url, { http: { progressTimeoutMs: PROGRESS_MS, retries: RETRIES } });

  it.each([
    ['before the headers', 'stall-headers'],
    ['in the middle of the body', 'stall-body'],
  ] as const)('a stall %s is retried on a fresh connection: exact bytes', async (_when, fault) => {
    const s = await open();
    proxy.next(fault);
    expect(same(await s.read(1000, 300_000), DATA.subarray(1000, 301_000))).toBe(true);
    expect(faultsOf(proxy)).toEqual([fault, 'pass']);
    await expectFreshConnection(proxy, fault);
    // The pool goes on working.
    expect(same(await s.read(0, 10), DATA.subarray(0, 10))).toBe(true);
  });

  it('opening (a suffix read) recovers from a stall too', async () => {
    const s = await open();
    proxy.next('stall-body');
    const tail = await s.readTail(64 * 1024);
    expect(tail.stat.size).toBe(SIZE);
    expect(same(tail.bytes, DATA.subarray(SIZE - 64 * 1024))).toBe(true);
  });

  it.each([
    ['before the headers', 'stall-headers'],
    ['in the middle of the body', 'stall-body'],
  ] as const)('a stall %s that never ends is TIMEOUT naming the URL, after every attempt', async (_when, fault) => {
    const s = await open();
    proxy.always(fault);
    const err = await errorOf(s.read(0, 200_000));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toContain(url);
    expect(err.context).toMatchObject({ url, backend: 'http', attempts: RETRIES + 1 });
    expect(proxy.requests).toHaveLength(RETRIES + 1);
    await Promise.all(proxy.requests.map((r) => proxy.whenClosed(r.connection))); // none is left to the pool
  });

  it.each([
    ['before the headers', 'reset'],
    ['in the middle of the body', 'reset-body'],
  ] as const)('connection resets %s are retried, and in the end STORAGE_IO, not TIMEOUT', async (_when, fault) => {
    const s = await open();
    proxy.next(fault);
    expect(same(await s.read(5, 100_000), DATA.subarray(5, 100_005))).toBe(true);
    proxy.always(fault);
    const err = await errorOf(s.read(0, 100_000));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
  });

  it('takes the storage-wide progress timeout (StorageOptions.progressTimeoutMs) when HttpOptions has none', async () => {
    const s = await openStorage(url, { progressTimeoutMs: PROGRESS_MS, http: { retries: 0 } });
    proxy.always('stall-headers');
    expect((await errorOf(s.read(0, 10))).code).toBe('TIMEOUT');
    expect(proxy.requests).toHaveLength(1);
  });
});

describe('s3: progress timeout', () => {
  let s3: S3TestServer;
  let proxy: FaultProxy;
  let sdkClient: S3Client;
  let opts: StorageOptions;
  const key = 'stalls/object.bin';
  const url = `s3://${BUCKET}/${key}`;

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: [BUCKET] });
    Object.assign(process.env, s3.env);
    proxy = await startFaultProxy(s3.endpoint);
    opts = { s3: { endpoint: proxy.endpoint, progressTimeoutMs: PROGRESS_MS } };
    // Straight to s3rver, not through the proxy.
    sdkClient = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: DATA }));
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    sdkClient?.destroy();
    await proxy?.stop();
    await s3?.stop();
  });

  /** A storage of the object with its version pinned, and faults only for what `method` asks. */
  async function pinned(method: 'GET' | 'HEAD' = 'GET') {
    const s = await openStorage(url, opts);
    await s.stat();
    proxy.reset();
    proxy.match = (req) => req.method === method;
    return s;
  }

  it.each([
    ['before the headers', 'stall-headers'],
    ['in the middle of the body', 'stall-body'],
  ] as const)('a GetObject stalled %s is retried on a fresh connection: exact bytes', async (_when, fault) => {
    const s = await pinned();
    proxy.next(fault);
    expect(same(await s.read(2000, 400_000), DATA.subarray(2000, 402_000))).toBe(true);
    expect(faultsOf(proxy)).toEqual([fault, 'pass']);
    await expectFreshConnection(proxy, fault);
    expect(same(await s.read(0, 10), DATA.subarray(0, 10))).toBe(true);
  });

  it('opening (a suffix GetObject) and a stalled HeadObject recover too', async () => {
    const a = await openStorage(url, opts);
    proxy.match = (req) => req.method === 'GET';
    proxy.next('stall-body');
    const tail = await a.readTail(64 * 1024);
    expect(tail.stat.size).toBe(SIZE);
    expect(same(tail.bytes, DATA.subarray(SIZE - 64 * 1024))).toBe(true);
    const b = await openStorage(url, opts);
    proxy.reset();
    proxy.match = (req) => req.method === 'HEAD';
    proxy.next('stall-headers');
    expect((await b.stat()).size).toBe(SIZE);
    expect(faultsOf(proxy)).toEqual(['stall-headers', 'pass']);
  });

  it.each([
    ['before the headers', 'stall-headers'],
    ['in the middle of the body', 'stall-body'],
  ] as const)('a GetObject stalled %s for good is TIMEOUT naming the URL after S3_READ_RETRIES more attempts', async (_when, fault) => {
    const s = await pinned();
    proxy.always(fault);
    const err = await errorOf(s.read(0, 300_000));
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toContain(url);
    expect(err.context).toMatchObject({ url, backend: 's3', attempts: S3_READ_RETRIES + 1 });
    expect(proxy.requests).toHaveLength(S3_READ_RETRIES + 1);
    await Promise.all(proxy.requests.map((r) => proxy.whenClosed(r.connection))); // none is left to the pool
    proxy.reset();
    expect(same(await s.read(0, 300_000), DATA.subarray(0, 300_000))).toBe(true);
  });

  it.each([
    ['before the headers', 'reset', S3_MAX_ATTEMPTS], // the SDK retries a reset request itself
    ['in the middle of the body', 'reset-body', S3_READ_RETRIES + 1], // a broken body is retried here
  ] as const)('connection resets %s are STORAGE_IO, not TIMEOUT', async (_when, fault, attempts) => {
    const s = await pinned();
    proxy.next(fault);
    expect(same(await s.read(7, 200_000), DATA.subarray(7, 200_007))).toBe(true);
    proxy.reset();
    proxy.match = (req) => req.method === 'GET';
    proxy.always(fault);
    const err = await errorOf(s.read(0, 200_000));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
    expect(proxy.requests).toHaveLength(attempts);
  });
});
