/**
 * What reading an archive costs in storage requests over HTTP and S3 (real servers), counted with
 * `meterStorage`: opening ≤ 2 requests, a cold 4 KiB read ≤ 2 more, a 64 MiB sequential read far fewer
 * requests than chunks (coalescing), a cached range 0. Counts, never timings.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { meterStorage, newCounters } from '@hexz/cache/metered.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { createWriter, openStorage, type StorageOptions } from '@hexz/storage/index.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

const BIG = 64 * 1024 * 1024;
const BUCKET = 'counts';
let tmp: string;
let archivePath: string;
let big: Buffer;
let small: Buffer;
let http: TestHttpServer;
let s3: S3TestServer;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-count-'));
  const input = path.join(tmp, 'input');
  await fs.mkdir(path.join(input, 'docs'), { recursive: true });
  big = randomBytes(BIG);
  small = randomBytes(300 * 1024);
  await fs.writeFile(path.join(input, 'big.bin'), big);
  await fs.writeFile(path.join(input, 'small.bin'), small);
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(input, 'docs', `note${i}.txt`), `note ${i}\n`.repeat(100));
  const served = path.join(tmp, 'served');
  await fs.mkdir(served);
  archivePath = path.join(served, 'data.hxz');
  await pack(input, archivePath, { threads: 2 });
  [http, s3] = await Promise.all([startHttpServer({ dir: served }), startS3Server({ buckets: [BUCKET] })]);
  Object.assign(process.env, s3.env);
  // Upload through the S3 writer, in the pieces a packer would hand it.
  const w = await createWriter(`s3://${BUCKET}/data.hxz`, { s3: { endpoint: s3.endpoint } });
  const fh = await fs.open(archivePath, 'r');
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, null);
      if (bytesRead === 0) break;
      await w.write(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  await w.commit();
});

afterAll(async () => {
  await Promise.all([http?.stop(), s3?.stop()]);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/**
 * Each backend, and how to count requests on the wire where the server can tell (the HTTP test server
 * logs them). On s3rver one `readTail` is two GETs on the wire: it answers suffix ranges with the
 * object's first bytes, so the backend asks again with an explicit range; real S3 needs one.
 */
const backends: Array<[string, () => { url: string; options: StorageOptions; wire?: () => number }]> = [
  ['http', () => ({ url: `${http.url}data.hxz`, options: {}, wire: () => http.requests.length })],
  ['s3', () => ({ url: `s3://${BUCKET}/data.hxz`, options: { s3: { endpoint: s3.endpoint } } })],
];

describe.each(backends)('request counts over %s', (_name, target) => {
  it('opens in ≤ 2 requests, reads cold 4 KiB in ≤ 2, streams 64 MiB in few, re-reads cached for free', async () => {
    const { url, options, wire } = target();
    const wireBefore = wire?.();
    const counters = newCounters();
    const storage = meterStorage(await openStorage(url, options), counters);
    const archive = await openArchive(storage, { cache: new BlockCache() });
    try {
      expect(counters.requests).toBeLessThanOrEqual(2);
      if (wire) expect(wire() - wireBefore!).toBe(counters.requests);

      let before = counters.requests;
      const four = await archive.read('small.bin', 100_000, 4096);
      expect(Buffer.from(four).equals(small.subarray(100_000, 104_096))).toBe(true);
      expect(counters.requests - before).toBeLessThanOrEqual(2);

      const entry = await archive.entry('big.bin');
      let chunks = 0;
      for await (const _ref of archive.fileRefs(entry)) chunks++;
      before = counters.requests;
      const hash = createHash('sha256');
      for await (const piece of archive.createReadStream(entry)) hash.update(piece as Buffer);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
      const streamed = counters.requests - before;
      expect(chunks).toBeGreaterThan(500); // 64 MiB of ~64 KiB chunks
      expect(streamed).toBeLessThanOrEqual(chunks / 8);

      before = counters.requests;
      expect(Buffer.from(await archive.read('small.bin', 100_000, 4096)).equals(small.subarray(100_000, 104_096))).toBe(true);
      expect(Buffer.from(await archive.read(entry, 40 * 1024 * 1024, 4096)).equals(big.subarray(40 * 1024 * 1024, 40 * 1024 * 1024 + 4096))).toBe(true);
      expect(counters.requests - before).toBe(0);
      if (wire) expect(wire() - wireBefore!).toBe(counters.requests); // no hidden retries or HEADs
    } finally {
      await archive.close();
      await storage.close();
    }
  });
});
