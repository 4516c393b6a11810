/**
 * S3 reads under faults and version changes, against a real s3rver through the helper's front (which
 * injects the faults and, started with `honourIfMatch`, answers 412 as S3 does):
 * - GetObject answered 503 is retried by the SDK (standard mode, S3_MAX_ATTEMPTS attempts), a body cut
 *   short or reset mid-way is fetched again by S3Storage (S3_READ_RETRIES); either way the bytes are
 *   exact, and a fault that does not go away is a typed STORAGE_IO naming the URL, not a hang;
 * - every GetObject after the first carries `If-Match` with the pinned ETag, so an object replaced
 *   between reads is ARCHIVE_CHANGED from the server's 412, never bytes of the new version;
 * - the block cache is keyed by content: a file read through v1 costs v2 (standalone or a delta of
 *   v1) no storage request at all.
 * Counts and statuses, never timings.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { meterStorage, newCounters } from '@hexz/cache/metered.js';
import type { ChunkRef } from '@hexz/src/format/chunk-index.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { openStorage, type StorageOptions } from '@hexz/storage/index.js';
import { S3_MAX_ATTEMPTS } from '@hexz/storage/s3.js';
import { errorOf } from '../helpers/errors.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { startS3Server, type S3RecordedRequest, type S3TestServer } from '../helpers/s3-server.js';

const BUCKET = 'hexz-faults';
/** GetObject attempts S3Storage makes when every body is cut short: the first and S3_READ_RETRIES (2) more. */
const BODY_ATTEMPTS = 3;
const NO_FAULTS = { failUploadParts: 0, hangRequests: 0, failGets: 0, cutGets: 0, resetGets: 0 };

let s3: S3TestServer;
let sdkClient: S3Client;
let opts: StorageOptions;
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-s3-faults-'));
  s3 = await startS3Server({ buckets: [BUCKET], honourIfMatch: true });
  Object.assign(process.env, s3.env);
  opts = { s3: { endpoint: s3.endpoint } };
  sdkClient = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});
afterEach(async () => {
  await s3?.setFaults(NO_FAULTS); // a failed test must not leave faults for the next one
});
afterAll(async () => {
  sdkClient?.destroy();
  await s3?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** Put an object (outside the code under test); resolves with its ETag. */
async function put(key: string, body: Uint8Array): Promise<string> {
  return (await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))).ETag!;
}

/** GetObject requests for `key` logged since the last `clearRequests()`. */
async function getsOf(key: string): Promise<S3RecordedRequest[]> {
  return (await s3.requests()).filter((r) => r.method === 'GET' && r.bucket === BUCKET && r.key === key);
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Pack `files` into a local archive and put it at `key`; returns the archive's bytes. */
async function packTo(key: string, files: Record<string, string | Uint8Array>): Promise<Buffer> {
  const dir = await fs.mkdtemp(path.join(tmp, 'in-'));
  await writeTree(dir, files);
  const out = path.join(tmp, `${key.replace(/\W/g, '_')}.hxz`);
  await pack(dir, out, { threads: 2, overwrite: true, cache: new BlockCache() });
  const bytes = await fs.readFile(out);
  await put(key, bytes);
  return bytes;
}

describe('s3 faults: GetObject retries', () => {
  const key = 'retry/object.bin';
  const url = `s3://${BUCKET}/${key}`;
  const data = randomBytes(300_000);
  let etag: string;

  beforeAll(async () => {
    etag = await put(key, data);
  });

  /** An S3Storage of the object, pinned (HeadObject), with the request log cleared. */
  async function pinned() {
    const s = await openStorage(url, opts);
    expect((await s.stat()).etag).toBe(etag);
    await s3.clearRequests();
    return s;
  }

  it('503s are retried by the SDK: exact bytes, every attempt with the same range and If-Match', async () => {
    const s = await pinned();
    await s3.setFaults({ failGets: S3_MAX_ATTEMPTS - 1 });
    expect(same(await s.read(1000, 200_000), data.subarray(1000, 201_000))).toBe(true);
    const gets = await getsOf(key);
    expect(gets.map((g) => g.status)).toEqual([...Array(S3_MAX_ATTEMPTS - 1).fill(503), 206]);
    for (const g of gets) expect(g.headers).toMatchObject({ range: 'bytes=1000-200999', 'if-match': etag });
    expect((await s3.setFaults()).failGets).toBe(0);
  });

  it.each([
    ['cut short (FIN)', 'cutGets', 'cut'],
    ['reset (RST)', 'resetGets', 'reset'],
  ] as const)('a body %s mid-way is fetched again: exact bytes', async (_what, fault, tag) => {
    const s = await pinned();
    await s3.setFaults({ [fault]: 1 });
    expect(same(await s.read(5000, 250_000), data.subarray(5000, 255_000))).toBe(true);
    const gets = await getsOf(key);
    expect(gets[0].fault).toBe(tag);
    expect(gets.at(-1)).toMatchObject({ status: 206 });
    expect(gets.at(-1)!.fault).toBeUndefined();
    if (fault === 'cutGets') expect(gets).toHaveLength(2); // a reset may also be retried by the SDK itself
    for (const g of gets) expect(g.headers['if-match']).toBe(etag);
  });

  it(`bodies cut short ${BODY_ATTEMPTS - 1} times in a row still give exact bytes`, async () => {
    const s = await pinned();
    await s3.setFaults({ cutGets: BODY_ATTEMPTS - 1 });
    expect(same(await s.read(0, data.byteLength), data)).toBe(true);
    expect((await getsOf(key)).map((g) => g.fault ?? 'ok')).toEqual([...Array(BODY_ATTEMPTS - 1).fill('cut'), 'ok']);
  });

  it('a 503 that does not go away is STORAGE_IO naming the URL after S3_MAX_ATTEMPTS attempts; the storage recovers', async () => {
    const s = await pinned();
    await s3.setFaults({ failGets: 1000 });
    const err = await errorOf(s.read(0, 100));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
    expect(err.context).toMatchObject({ url, backend: 's3', status: 503 });
    expect((await getsOf(key)).map((g) => g.status)).toEqual(Array(S3_MAX_ATTEMPTS).fill(503));
    await s3.setFaults(NO_FAULTS);
    expect(same(await s.read(0, 100), data.subarray(0, 100))).toBe(true);
  });

  it.each([
    ['cut short', 'cutGets'],
    ['reset', 'resetGets'],
  ] as const)('bodies %s every time are STORAGE_IO naming the URL, after a bounded number of attempts', async (_what, fault) => {
    const s = await pinned();
    await s3.setFaults({ [fault]: 1000 });
    const err = await errorOf(s.read(0, 100_000));
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
    expect(err.context).toMatchObject({ url, backend: 's3' });
    const gets = await getsOf(key);
    if (fault === 'cutGets') expect(gets).toHaveLength(BODY_ATTEMPTS);
    else {
      expect(gets.length).toBeGreaterThanOrEqual(BODY_ATTEMPTS);
      expect(gets.length).toBeLessThanOrEqual(BODY_ATTEMPTS * S3_MAX_ATTEMPTS);
    }
    await s3.setFaults(NO_FAULTS);
    expect(same(await s.read(0, 100_000), data.subarray(0, 100_000))).toBe(true);
  });

  it('an archive on S3 opens and reads exact bytes through 503s and cut bodies; a permanent fault is STORAGE_IO, not cached', async () => {
    const files = { 'a.bin': randomBytesSeeded(700_000, 11), 'b.bin': randomBytesSeeded(500_000, 12), 'c.txt': 'c\n'.repeat(40_000) };
    const archiveKey = 'retry/archive.hxz';
    const archiveUrl = `s3://${BUCKET}/${archiveKey}`;
    await packTo(archiveKey, files);
    await s3.clearRequests();
    await s3.setFaults({ failGets: 1 }); // the open's first (suffix) GetObject
    const archive = await openArchive(archiveUrl, { storage: opts, cache: new BlockCache() });
    try {
      expect((await getsOf(archiveKey))[0]).toMatchObject({ status: 503, fault: 'fail' });
      await s3.setFaults({ failGets: 2 });
      expect(same(await archive.read('a.bin', 0, files['a.bin'].byteLength), files['a.bin'])).toBe(true);
      await s3.setFaults({ cutGets: 1 });
      expect(same(await archive.read('b.bin', 0, files['b.bin'].byteLength), files['b.bin'])).toBe(true);
      expect((await s3.setFaults()).cutGets).toBe(0); // the fault did hit a chunk read
      await s3.setFaults({ failGets: 1000 });
      const size = (await archive.entry('c.txt')).size;
      const err = await errorOf(archive.read('c.txt', 0, size));
      expect(err.code).toBe('STORAGE_IO');
      expect(err.message).toContain(archiveUrl);
      await s3.setFaults(NO_FAULTS);
      expect(Buffer.from(await archive.read('c.txt', 0, size)).toString()).toBe(files['c.txt']);
    } finally {
      await archive.close();
    }
  });
});

describe('s3 If-Match', () => {
  it('sends the pinned ETag as If-Match on every GetObject after the first', async () => {
    const key = 'ifmatch/sent.bin';
    const url = `s3://${BUCKET}/${key}`;
    const data = randomBytes(100_000);
    const etag = await put(key, data);
    const s = await openStorage(url, opts);
    await s3.clearRequests();
    const tail = await s.readTail(1000);
    expect(tail.stat.etag).toBe(etag);
    expect(same(tail.bytes, data.subarray(data.byteLength - 1000))).toBe(true);
    expect(same(await s.read(0, 10), data.subarray(0, 10))).toBe(true);
    expect(same(await s.read(50_000, 40_000), data.subarray(50_000, 90_000))).toBe(true);
    const gets = await getsOf(key);
    // The suffix read that opens it knows no ETag yet; s3rver's answer to it makes the backend ask
    // again with an explicit range (real S3 needs one request), pinned already.
    expect(gets.length).toBeGreaterThanOrEqual(3);
    expect(gets[0].headers['if-match']).toBeUndefined();
    for (const g of gets.slice(1)) expect(g.headers['if-match']).toBe(etag);
  });

  it('an object replaced between reads is ARCHIVE_CHANGED from the server’s 412, never the new bytes', async () => {
    const key = 'ifmatch/replaced.bin';
    const url = `s3://${BUCKET}/${key}`;
    const A = randomBytes(100_000);
    const etagA = await put(key, A);
    const s = await openStorage(url, opts);
    expect(same(await s.read(0, 100), A.subarray(0, 100))).toBe(true);
    // The same bytes again: same ETag, the pin holds and reads go on.
    expect(await put(key, A)).toBe(etagA);
    expect(same(await s.read(100, 100), A.subarray(100, 200))).toBe(true);
    // Other bytes of the same size: only the ETag tells.
    const etagB = await put(key, randomBytes(100_000));
    expect(etagB).not.toBe(etagA);
    await s3.clearRequests();
    for (const [offset, length] of [
      [200, 100],
      [0, 100_000],
    ]) {
      const err = await errorOf(s.read(offset, length));
      expect(err.code).toBe('ARCHIVE_CHANGED');
      expect(err.message).toContain(url);
      expect(err.context).toMatchObject({ url, status: 412 });
    }
    const gets = await getsOf(key);
    expect(gets.map((g) => [g.status, g.headers['if-match']])).toEqual([
      [412, etagA],
      [412, etagA],
    ]);
    expect((await s.stat()).etag).toBe(etagA); // still the version it was opened on
  });

  it('an archive replaced while open fails every uncached read with ARCHIVE_CHANGED; a stream never yields bytes of the new version', async () => {
    const key = 'ifmatch/archive.hxz';
    const url = `s3://${BUCKET}/${key}`;
    const v1 = { 'big.bin': randomBytesSeeded(1 << 20, 21), 'other.bin': randomBytesSeeded(200_000, 22) };
    const v2 = { 'big.bin': randomBytesSeeded(1 << 20, 23), 'other.bin': randomBytesSeeded(200_000, 24) };
    await packTo(key, v1);
    const archive = await openArchive(url, { storage: opts, cache: new BlockCache() });
    try {
      expect(same(await archive.read('big.bin', 0, 100_000), v1['big.bin'].subarray(0, 100_000))).toBe(true);
      await packTo(key, v2);
      await s3.clearRequests();
      for (const [p, offset, length] of [
        ['big.bin', 500_000, 100_000],
        ['big.bin', 0, 1 << 20], // spans the chunks read before and the rest
        ['other.bin', 0, 200_000],
      ] as const) {
        const err = await errorOf(archive.read(p, offset, length));
        expect(err.code).toBe('ARCHIVE_CHANGED');
        expect(err.message).toContain(url);
      }
      // A stream: whatever comes before the error is v1's, in order.
      const got: Buffer[] = [];
      const err = await errorOf(
        (async () => {
          for await (const piece of archive.createReadStream('big.bin')) got.push(piece as Buffer);
        })(),
      );
      expect(err.code).toBe('ARCHIVE_CHANGED');
      const prefix = Buffer.concat(got);
      expect(prefix.byteLength).toBeLessThan(1 << 20);
      expect(prefix.equals(v1['big.bin'].subarray(0, prefix.byteLength))).toBe(true);
      const gets = await getsOf(key);
      expect(gets.length).toBeGreaterThan(0);
      for (const g of gets) expect(g.status).toBe(412);
    } finally {
      await archive.close();
    }
  });
});

describe('block cache shared across versions (s3)', () => {
  const big = randomBytesSeeded(1 << 20, 31);
  // Sorts (and is stored) before big.bin, and grows in v2: big.bin's chunks move to other offsets.
  const v1Files = { 'a-changed.txt': 'version 1\n', 'big.bin': big, 'other.bin': randomBytesSeeded(100_000, 32) };
  const v2Files = { ...v1Files, 'a-changed.txt': 'version 2, a little longer\n'.repeat(50) };
  const v1 = `s3://${BUCKET}/versions/v1.hxz`;

  beforeAll(async () => {
    const [d1, d2] = [path.join(tmp, 'v1'), path.join(tmp, 'v2')];
    await writeTree(d1, v1Files);
    await writeTree(d2, v2Files);
    const packOpts = { threads: 2, storage: opts, cache: new BlockCache() };
    await pack(d1, v1, packOpts);
    await pack(d2, `s3://${BUCKET}/versions/v2.hxz`, packOpts);
    await pack(d2, `s3://${BUCKET}/versions/v2-delta.hxz`, { ...packOpts, bases: [v1] });
  });

  async function refsOf(archive: Archive, p: string): Promise<ChunkRef[]> {
    const refs: ChunkRef[] = [];
    for await (const r of archive.fileRefs(await archive.entry(p))) refs.push(r);
    return refs;
  }

  it.each([
    ['standalone', 'v2.hxz'],
    ['a delta of v1', 'v2-delta.hxz'],
  ])('a file read through v1 costs v2 (%s) no storage request', async (kind, name) => {
    const cache = new BlockCache();
    const c1 = newCounters();
    const c2 = newCounters();
    const a1 = await openArchive(v1, { storage: opts, cache, wrapStorage: (s) => meterStorage(s, c1) });
    const a2 = await openArchive(`s3://${BUCKET}/versions/${name}`, { storage: opts, cache, wrapStorage: (s) => meterStorage(s, c2) });
    try {
      const refs1 = await refsOf(a1, 'big.bin');
      const refs2 = await refsOf(a2, 'big.bin');
      expect(refs1.length).toBeGreaterThan(4);
      expect(refs2.map((r) => Buffer.from(r.id).toString('hex'))).toEqual(refs1.map((r) => Buffer.from(r.id).toString('hex')));
      // The same content stored elsewhere: only the chunk id is shared.
      if (kind === 'standalone') expect(refs2.every((r, i) => r.owner === 0 && r.offset !== refs1[i].offset)).toBe(true);
      else expect(refs2.every((r) => r.owner === 1)).toBe(true);

      expect(same(await a1.read('big.bin', 0, big.byteLength), big)).toBe(true);
      expect(c1.requests).toBeGreaterThan(0);

      const before = { c1: c1.requests, c2: c2.requests, stats: cache.stats() };
      await s3.clearRequests();
      expect(same(await a2.read('big.bin', 0, big.byteLength), big)).toBe(true);
      const after = cache.stats();
      expect(c2.requests - before.c2).toBe(0);
      expect(c1.requests - before.c1).toBe(0);
      expect(await s3.requests()).toEqual([]); // nothing on the wire either
      expect(after.hits - before.stats.hits).toBeGreaterThanOrEqual(refs2.length);
      expect(after.misses - before.stats.misses).toBe(0);
      expect(after.loadedBytes).toBe(before.stats.loadedBytes);

      // The changed file is v2's own.
      const changed = await a2.entry('a-changed.txt');
      expect(Buffer.from(await a2.read(changed, 0, changed.size)).toString()).toBe(v2Files['a-changed.txt']);
    } finally {
      await a2.close();
      await a1.close();
    }
  });
});
