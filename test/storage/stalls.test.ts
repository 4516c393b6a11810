/**
 * Progress timeouts (issue 21), through a real fault proxy (test/helpers/fault-proxy.ts) in front of the
 * real test HTTP server and a real s3rver: a storage read that receives nothing for the progress timeout,
 * before the headers or in the middle of the body, is aborted, its connection dropped, and retried on a
 * fresh one within the retry budget; bytes are exact; a stall that never ends is `TIMEOUT` naming the
 * URL; connection resets are `STORAGE_IO`, never `TIMEOUT` (issue 22). One suite, run against both
 * backends. A short progress timeout keeps the tests quick; nothing here asserts how long anything took.
 */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage, type StorageOptions } from '@hexz/storage/index.js';
import { S3_MAX_ATTEMPTS, S3_READ_RETRIES } from '@hexz/storage/s3.js';
import { errorOf } from '../helpers/errors.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { startHttpServer } from '../helpers/http-server.js';
import { startS3Server } from '../helpers/s3-server.js';

/** Short, so stalls are noticed quickly, and far above what a loopback answer takes. */
const PROGRESS_MS = 300;
const SIZE = 512 * 1024 + 3;
const DATA = randomBytes(SIZE);
/** HTTP retries in these tests (attempts = RETRIES + 1). */
const HTTP_RETRIES = 2;

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Where a read can stall, and the proxy's fault for it. */
const STALLS = [
  ['before the headers', 'stall-headers'],
  ['in the middle of the body', 'stall-body'],
] as const;

/** The faults the proxy applied to the requests it logged, in order. */
const faultsOf = (proxy: FaultProxy) => proxy.requests.map((r) => r.fault);

interface StallFixture {
  proxy: FaultProxy;
  /** URL of an object holding DATA, behind the proxy. */
  url: string;
  /** Options with PROGRESS_MS as the backend's own progress timeout. */
  options: StorageOptions;
  /** Options with PROGRESS_MS only as the storage-wide progress timeout (StorageOptions.progressTimeoutMs). */
  wideOptions: StorageOptions;
  /** Attempts of one read that stalls every time. */
  stallAttempts: number;
  /** Attempts of one read whose connection is reset every time, by where the reset happens. */
  resetAttempts: Record<'reset' | 'reset-body', number>;
  stop(): Promise<void>;
}

/**
 * The stall and reset contract of a remote backend. Each test opens the object and pins its version
 * first (stat), then faults only GETs, so exactly the ranged reads meet the faults.
 */
function stallSuite(backend: string, setup: () => Promise<StallFixture>): void {
  describe(`${backend}: progress timeout`, () => {
    let fx: StallFixture;
    beforeAll(async () => {
      fx = await setup();
    });
    afterEach(() => fx.proxy.reset());
    afterAll(async () => {
      await fx?.stop();
    });

    const open = (opts = fx.options) => openStorage(fx.url, opts);

    async function pinned(opts = fx.options): Promise<Storage> {
      const s = await open(opts);
      await s.stat();
      fx.proxy.reset();
      fx.proxy.match = (req) => req.method === 'GET';
      return s;
    }

    it.each(STALLS)('a read stalled %s is retried on a fresh connection: exact bytes', async (_when, fault) => {
      const s = await pinned();
      fx.proxy.next(fault);
      expect(same(await s.read(2000, 400_000), DATA.subarray(2000, 402_000))).toBe(true);
      expect(faultsOf(fx.proxy)).toEqual([fault, 'pass']);
      const [stalled, retry] = fx.proxy.requests;
      expect(retry.connection).not.toBe(stalled.connection);
      await fx.proxy.whenClosed(stalled.connection); // so the pool cannot hand it out again (a hang fails the test)
      expect(same(await s.read(0, 10), DATA.subarray(0, 10))).toBe(true);
    });

    it('opening (a suffix read) and a stat (HEAD) recover from a stall too', async () => {
      const s = await open();
      fx.proxy.match = (req) => req.method === 'GET';
      fx.proxy.next('stall-body');
      const tail = await s.readTail(64 * 1024);
      expect(tail.stat.size).toBe(SIZE);
      expect(same(tail.bytes, DATA.subarray(SIZE - 64 * 1024))).toBe(true);
      const t = await open();
      fx.proxy.reset();
      fx.proxy.match = (req) => req.method === 'HEAD';
      fx.proxy.next('stall-headers');
      expect((await t.stat()).size).toBe(SIZE);
      expect(faultsOf(fx.proxy)).toEqual(['stall-headers', 'pass']);
    });

    it('takes the storage-wide progress timeout when the backend has none of its own', async () => {
      const s = await pinned(fx.wideOptions);
      fx.proxy.always('stall-headers');
      expect((await errorOf(s.read(0, 10))).code).toBe('TIMEOUT');
      expect(fx.proxy.requests).toHaveLength(fx.stallAttempts);
    });

    it.each(STALLS)('a read stalled %s for good is TIMEOUT naming the URL, after every attempt; the storage recovers', async (_when, fault) => {
      const s = await pinned();
      fx.proxy.always(fault);
      const err = await errorOf(s.read(0, 300_000));
      expect(err.code).toBe('TIMEOUT');
      expect(err.message).toContain(fx.url);
      expect(err.context).toMatchObject({ url: fx.url, backend, attempts: fx.stallAttempts });
      expect(fx.proxy.requests).toHaveLength(fx.stallAttempts);
      await Promise.all(fx.proxy.requests.map((r) => fx.proxy.whenClosed(r.connection))); // none is left to the pool
      fx.proxy.reset();
      expect(same(await s.read(0, 300_000), DATA.subarray(0, 300_000))).toBe(true);
    });

    it.each([
      ['before the headers', 'reset'],
      ['in the middle of the body', 'reset-body'],
    ] as const)('connection resets %s are retried, and in the end STORAGE_IO, not TIMEOUT', async (_when, fault: Fault & keyof StallFixture['resetAttempts']) => {
      const s = await pinned();
      fx.proxy.next(fault);
      expect(same(await s.read(7, 200_000), DATA.subarray(7, 200_007))).toBe(true);
      fx.proxy.reset();
      fx.proxy.match = (req) => req.method === 'GET';
      fx.proxy.always(fault);
      const err = await errorOf(s.read(0, 200_000));
      expect(err.code).toBe('STORAGE_IO');
      expect(err.message).toContain(fx.url);
      expect(fx.proxy.requests).toHaveLength(fx.resetAttempts[fault]);
    });
  });
}

stallSuite('http', async () => {
  const server = await startHttpServer();
  await server.put('a.bin', DATA);
  const proxy = await startFaultProxy(server.url);
  const url = `${proxy.url}a.bin`;
  return {
    proxy,
    url,
    options: { http: { progressTimeoutMs: PROGRESS_MS, retries: HTTP_RETRIES } },
    wideOptions: { progressTimeoutMs: PROGRESS_MS, http: { retries: HTTP_RETRIES } },
    stallAttempts: HTTP_RETRIES + 1,
    resetAttempts: { reset: HTTP_RETRIES + 1, 'reset-body': HTTP_RETRIES + 1 },
    async stop() {
      await proxy.stop();
      await server.stop();
    },
  };
});

stallSuite('s3', async () => {
  const bucket = 'stalls';
  const key = 'stalls/object.bin';
  const s3 = await startS3Server({ buckets: [bucket] });
  Object.assign(process.env, s3.env);
  const proxy = await startFaultProxy(s3.endpoint);
  // Straight to s3rver, not through the proxy.
  const sdkClient = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  await sdkClient.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: DATA }));
  sdkClient.destroy();
  return {
    proxy,
    url: `s3://${bucket}/${key}`,
    options: { s3: { endpoint: proxy.endpoint, progressTimeoutMs: PROGRESS_MS } },
    wideOptions: { progressTimeoutMs: PROGRESS_MS, s3: { endpoint: proxy.endpoint } },
    stallAttempts: S3_READ_RETRIES + 1,
    // The SDK retries a request that fails outright; a body that breaks after the headers is retried by the backend.
    resetAttempts: { reset: S3_MAX_ATTEMPTS, 'reset-body': S3_READ_RETRIES + 1 },
    async stop() {
      await proxy.stop();
      await s3.stop();
    },
  };
});
