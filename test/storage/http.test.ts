/**
 * HTTP backend behaviour beyond the conformance suite, against a real HTTP server with injected faults:
 * retries, resets mid-body, version pinning, redirects, servers with partial Range support, timeouts,
 * aborts and credentials.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { openStorage, type HttpOptions, type Storage } from '@hexz/storage/index.js';
import { errorOf } from '../helpers/errors.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';

let server: TestHttpServer;
let other: TestHttpServer;
const SIZE = 256 * 1024 + 17;
const A = randomBytes(SIZE);
let url: string;

beforeAll(async () => {
  [server, other] = await Promise.all([startHttpServer(), startHttpServer()]);
  url = await server.put('a.bin', A);
});
afterAll(async () => {
  await Promise.all([server?.stop(), other?.stop()]);
});
afterEach(() => {
  server.reset();
  other.reset();
});

function open(u = url, http: HttpOptions = {}): Promise<Storage> {
  return openStorage(u, { http: { retries: 3, ...http } });
}

/** Wait until the server has logged `n` requests (polling, no timing assumptions). */
async function untilRequests(s: TestHttpServer, n: number): Promise<void> {
  while (s.requests.length < n) await new Promise((r) => setTimeout(r, 5));
}

describe('http: transient failures', () => {
  it('retries 503s and then succeeds', async () => {
    const s = await open();
    server.faults.fail503 = 2;
    const got = await s.read(1000, 5000);
    expect(Buffer.from(got).equals(A.subarray(1000, 6000))).toBe(true);
    expect(server.requests.length).toBe(3);
  });

  it('gives up on 503 forever with a clear STORAGE_IO error naming the URL and the status', async () => {
    const s = await open(url, { retries: 2 });
    server.faults.fail503 = 1000;
    const err = await errorOf(s.read(0, 10));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
    expect(err.message).toContain('503');
    expect(err.message).toContain('3 attempts');
    expect(err.context).toMatchObject({ url, status: 503, backend: 'http' });
    expect(server.requests.length).toBe(3);
  });

  it('retries a connection reset in the middle of the body', async () => {
    const s = await open();
    server.faults.resetMidBody = 2;
    const got = await s.read(0, 100_000);
    expect(Buffer.from(got).equals(A.subarray(0, 100_000))).toBe(true);
    expect(server.requests.length).toBe(3);
  });

  it('fails cleanly when every attempt is cut short', async () => {
    const s = await open(url, { retries: 1 });
    server.faults.resetMidBody = 10;
    const err = await errorOf(s.read(0, 100_000));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
  });

  it('retries a connection refused and reports it', async () => {
    const dead = await startHttpServer();
    const deadUrl = `${dead.url}a.bin`;
    await dead.stop();
    const s = await open(deadUrl, { retries: 1 });
    const err = await errorOf(s.read(0, 10));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('times out a silent server with TIMEOUT, and a retry rescues a single hang', async () => {
    const s = await open(url, { timeoutMs: 300, retries: 0 });
    server.faults.hang = 1;
    expect((await errorOf(s.read(0, 10))).code).toBe('TIMEOUT');
    // Generous here: the answered attempt must not be mistaken for a hang on a busy machine.
    const t = await open(url, { timeoutMs: 2000, retries: 1 });
    server.faults.hang = 1;
    expect(Buffer.from(await t.read(0, 10)).equals(A.subarray(0, 10))).toBe(true);
  });

  it('aborts a request in flight with ABORTED', async () => {
    const s = await open();
    server.faults.hang = 1;
    const ac = new AbortController();
    const pending = s.read(0, 10, { signal: ac.signal });
    await untilRequests(server, 1);
    ac.abort();
    expect((await errorOf(pending)).code).toBe('ABORTED');
  });

  it('reuses connections (keep-alive)', async () => {
    const s = await open();
    const before = server.connections;
    for (let i = 0; i < 20; i++) await s.read(i * 100, 100);
    expect(server.connections - before).toBeLessThanOrEqual(2);
  });
});

describe('http: status mapping', () => {
  it('404 → ARCHIVE_NOT_FOUND, 401 → STORAGE_DENIED; headers are sent on every request', async () => {
    expect((await errorOf((await open(`${server.url}nope.bin`)).readTail(10))).code).toBe('ARCHIVE_NOT_FOUND');
    server.faults.requireAuth = 'Bearer sesame';
    expect((await errorOf((await open()).readTail(10))).code).toBe('STORAGE_DENIED');
    const s = await open(url, { headers: { Authorization: 'Bearer sesame' } });
    await s.readTail(10);
    await s.read(0, 10);
    await s.stat();
    expect(server.requests.slice(-2).every((r) => r.authorization === 'Bearer sesame')).toBe(true);
  });

  it('turns URL credentials into Basic auth and keeps them out of messages', async () => {
    const u = new URL(url);
    u.username = 'user';
    u.password = 'secret';
    server.faults.requireAuth = `Basic ${Buffer.from('user:secret').toString('base64')}`;
    const s = await open(u.href);
    expect(s.url).toBe(url);
    expect(Buffer.from((await s.readTail(10)).bytes).equals(A.subarray(SIZE - 10))).toBe(true);
    server.faults.requireAuth = 'something else';
    const err = await errorOf(s.read(0, 10));
    expect(err.code).toBe('STORAGE_DENIED');
    expect(err.message).not.toContain('secret');
  });
});

describe('http: version pinning', () => {
  it('sends If-Match with the pinned ETag and turns 412 into ARCHIVE_CHANGED', async () => {
    const u = await server.put('pin1.bin', A);
    const s = await open(u);
    await s.readTail(100);
    await s.read(0, 100);
    const etag = (await s.stat()).etag;
    expect(server.requests.at(-1)?.ifMatch).toBe(etag);
    await server.put('pin1.bin', randomBytes(SIZE));
    const err = await errorOf(s.read(0, 100));
    expect(err.code).toBe('ARCHIVE_CHANGED');
  });

  it('compares ETags itself when the server ignores If-Match', async () => {
    server.faults.ignoreIfMatch = true;
    const u = await server.put('pin2.bin', A);
    const s = await open(u);
    await s.readTail(100);
    await server.put('pin2.bin', randomBytes(SIZE));
    expect((await errorOf(s.read(0, 100))).code).toBe('ARCHIVE_CHANGED');
  });

  it('notices a changed size when the server sends no ETag', async () => {
    server.faults.noEtag = true;
    const u = await server.put('pin3.bin', A);
    const s = await open(u);
    await s.readTail(100);
    await server.put('pin3.bin', randomBytes(SIZE + 1));
    expect((await errorOf(s.read(0, 100))).code).toBe('ARCHIVE_CHANGED');
  });

  it('never returns bytes of the new version while reads are in flight', async () => {
    server.faults.ignoreIfMatch = true; // the harder case: only the client's own comparison protects it
    const u = await server.put('pin4.bin', A);
    const B = Buffer.from(A.map((b) => b ^ 0xff));
    const s = await open(u);
    await s.readTail(16);
    const results: Array<Promise<Uint8Array | HexzError>> = [];
    for (let i = 0; i < 40; i++) {
      if (i === 20) await server.put('pin4.bin', B);
      const off = (i * 4099) % (SIZE - 4096);
      results.push(s.read(off, 4096).catch((e: HexzError) => e));
    }
    let changed = 0;
    for (let i = 0; i < results.length; i++) {
      const r = await results[i];
      const off = (i * 4099) % (SIZE - 4096);
      if (r instanceof HexzError) {
        expect(r.code).toBe('ARCHIVE_CHANGED');
        changed++;
      } else {
        expect(Buffer.from(r).equals(A.subarray(off, off + 4096))).toBe(true);
      }
    }
    expect(changed).toBeGreaterThan(0);
  });
});

describe('http: redirects', () => {
  it('follows a redirect chain', async () => {
    server.redirect('/r1.bin', '/r2.bin', 302);
    server.redirect('/r2.bin', `${server.url}a.bin`, 307);
    const s = await open(`${server.url}r1.bin`);
    const tail = await s.readTail(100);
    expect(Buffer.from(tail.bytes).equals(A.subarray(SIZE - 100))).toBe(true);
    expect(tail.stat.size).toBe(SIZE);
  });

  it('remembers permanent redirects but re-asks temporary ones', async () => {
    server.redirect('/perm.bin', '/a.bin', 301);
    server.redirect('/temp.bin', '/a.bin', 302);
    const p = await open(`${server.url}perm.bin`);
    await p.read(0, 10);
    await p.read(10, 10);
    expect(server.requests.map((r) => r.path)).toEqual(['/perm.bin', '/a.bin', '/a.bin']);
    server.requests.length = 0;
    const t = await open(`${server.url}temp.bin`);
    await t.read(0, 10);
    await t.read(10, 10);
    expect(server.requests.map((r) => r.path)).toEqual(['/temp.bin', '/a.bin', '/temp.bin', '/a.bin']);
  });

  it('stops after too many redirects', async () => {
    for (let i = 0; i < 10; i++) server.redirect(`/loop${i}.bin`, `/loop${i + 1}.bin`);
    const err = await errorOf((await open(`${server.url}loop0.bin`)).read(0, 1));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toMatch(/redirects/);
  });

  it('does not forward credentials to another origin', async () => {
    await other.put('a.bin', A);
    server.redirect('/away.bin', `${other.url}a.bin`);
    const s = await open(`${server.url}away.bin`, { headers: { authorization: 'Bearer sesame' } });
    await s.read(0, 10);
    expect(server.requests[0].authorization).toBe('Bearer sesame');
    expect(other.requests[0].authorization).toBeUndefined();
  });
});

describe('http: partial Range support', () => {
  it('slices the whole body of a small object from a server that ignores Range', async () => {
    server.faults.ignoreRange = true;
    const s = await open();
    expect(Buffer.from(await s.read(5000, 100)).equals(A.subarray(5000, 5100))).toBe(true);
    const tail = await (await open()).readTail(100);
    expect(Buffer.from(tail.bytes).equals(A.subarray(SIZE - 100))).toBe(true);
  });

  it('refuses clearly, without downloading it, a large object from a server that ignores Range', async () => {
    const big = await server.put('big.bin', randomBytes(9 * 1024 * 1024));
    server.faults.ignoreRange = true;
    const err = await errorOf((await open(big)).readTail(100));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toMatch(/Range/);
  });

  it('trusts Content-Range when a suffix range returns other bytes (s3rver-like)', async () => {
    server.faults.suffixBug = true;
    const s = await open();
    const tail = await s.readTail(1000);
    expect(Buffer.from(tail.bytes).equals(A.subarray(SIZE - 1000))).toBe(true);
    expect(server.requests.map((r) => r.range)).toEqual(['bytes=-1000', `bytes=${SIZE - 1000}-${SIZE - 1}`]);
  });

  it.each([416, 400])('falls back to HEAD + range when suffix ranges are refused with %i', async (status) => {
    server.faults.rejectSuffix = status;
    const tail = await (await open()).readTail(1000);
    expect(Buffer.from(tail.bytes).equals(A.subarray(SIZE - 1000))).toBe(true);
    expect(tail.stat.size).toBe(SIZE);
  });

  it.each([405, 403])('learns the size when HEAD is refused with %i', async (status) => {
    server.faults.refuseHead = status;
    expect((await (await open()).stat()).size).toBe(SIZE);
    expect(server.requests.map((r) => `${r.method} ${r.range ?? ''}`)).toEqual(['HEAD ', 'GET bytes=0-0']);
  });

  it('reads the tail with exactly one request', async () => {
    const s = await open();
    await s.readTail(4096);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'GET', range: 'bytes=-4096' });
  });
});
