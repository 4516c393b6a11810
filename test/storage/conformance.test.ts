/**
 * The storage contract, tested once and run against every backend: file, memory, http (a real HTTP
 * server on port 0) and s3 (a real s3rver in a child process). Writers: file, memory, s3.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWriter, openStorage, type Storage, type StorageOptions } from '@hexz/storage/index.js';
import { getMemoryObject, putMemoryObject } from '@hexz/storage/memory.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

const BUCKET = 'conformance';
let http: TestHttpServer;
let s3: S3TestServer;
let tmp: string;

beforeAll(async () => {
  [http, s3, tmp] = await Promise.all([startHttpServer(), startS3Server({ buckets: [BUCKET] }), fs.mkdtemp(path.join(os.tmpdir(), 'hexz-conf-'))]);
  Object.assign(process.env, s3.env);
});

afterAll(async () => {
  await Promise.all([http?.stop(), s3?.stop(), tmp && fs.rm(tmp, { recursive: true, force: true })]);
});

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? `not a HexzError: ${err}`;
  }
  return 'no error';
}

// ---- read conformance -----------------------------------------------------------------------------

interface ReadFixture {
  /** Make `bytes` available under `name`; returns its URL. */
  put(name: string, bytes: Uint8Array): Promise<string>;
  /** URL of an object that does not exist. */
  missing: string;
  options?: StorageOptions;
}

function storageConformance(backend: string, setup: () => Promise<ReadFixture>): void {
  describe(`storage conformance: ${backend}`, () => {
    const SIZE = 1024 * 1024 + 123;
    const source = randomBytes(SIZE);
    let fx: ReadFixture;
    let url: string;
    let emptyUrl: string;
    const opened: Storage[] = [];
    const open = async (u = url): Promise<Storage> => {
      const s = await openStorage(u, fx.options);
      opened.push(s);
      return s;
    };

    beforeAll(async () => {
      fx = await setup();
      url = await fx.put('object.bin', source);
      emptyUrl = await fx.put('empty.bin', new Uint8Array(0));
    });
    afterAll(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });

    it('reports its backend and URL', async () => {
      const s = await open();
      expect(s.backend).toBe(backend);
      expect(s.url).toBe(url);
    });

    it('returns exactly the source bytes for many random ranges', async () => {
      const s = await open();
      const rnd = prng(1);
      for (let i = 0; i < 60; i++) {
        const offset = Math.floor(rnd() * SIZE);
        const length = Math.floor(rnd() * Math.min(SIZE - offset, rnd() < 0.5 ? 300 : 200_000));
        const got = await s.read(offset, length);
        expect(got.byteLength).toBe(length);
        expect(Buffer.from(got).equals(source.subarray(offset, offset + length))).toBe(true);
      }
    });

    it('reads the first and the last bytes, and the whole object', async () => {
      const s = await open();
      expect(Buffer.from(await s.read(0, 1)).equals(source.subarray(0, 1))).toBe(true);
      expect(Buffer.from(await s.read(SIZE - 10, 10)).equals(source.subarray(SIZE - 10))).toBe(true);
      expect(Buffer.from(await s.read(0, SIZE)).equals(source)).toBe(true);
      expect((await s.read(SIZE, 0)).byteLength).toBe(0);
    });

    it('refuses ranges past the end with OUT_OF_RANGE, before and after the size is known', async () => {
      const cold = await open();
      expect(await codeOf(cold.read(SIZE - 5, 10))).toBe('OUT_OF_RANGE');
      const cold2 = await open();
      expect(await codeOf(cold2.read(SIZE + 100, 1))).toBe('OUT_OF_RANGE');
      const warm = await open();
      await warm.stat();
      expect(await codeOf(warm.read(SIZE - 5, 10))).toBe('OUT_OF_RANGE');
      expect(await codeOf(warm.read(SIZE + 1, 0))).toBe('OUT_OF_RANGE');
      expect(await codeOf(warm.read(-1, 1))).toBe('OUT_OF_RANGE');
      expect(await codeOf(warm.read(0.5, 1))).toBe('OUT_OF_RANGE');
    });

    it('returns zero bytes for a zero-length read', async () => {
      const s = await open();
      expect((await s.read(0, 0)).byteLength).toBe(0);
      expect((await s.read(1000, 0)).byteLength).toBe(0);
    });

    it('reads the tail with the size, also when asking for more than the object holds', async () => {
      const a = await open();
      const tail = await a.readTail(1000);
      expect(tail.stat.size).toBe(SIZE);
      expect(Buffer.from(tail.bytes).equals(source.subarray(SIZE - 1000))).toBe(true);
      const b = await open();
      const all = await b.readTail(SIZE + 5000);
      expect(all.stat.size).toBe(SIZE);
      expect(Buffer.from(all.bytes).equals(source)).toBe(true);
      const c = await open();
      const none = await c.readTail(0);
      expect(none.bytes.byteLength).toBe(0);
      expect(none.stat.size).toBe(SIZE);
      // After the size is known, readTail is a plain range read.
      const again = await a.readTail(64 * 1024);
      expect(Buffer.from(again.bytes).equals(source.subarray(SIZE - 64 * 1024))).toBe(true);
    });

    it('handles an empty object', async () => {
      const s = await open(emptyUrl);
      const tail = await s.readTail(4096);
      expect(tail.bytes.byteLength).toBe(0);
      expect(tail.stat.size).toBe(0);
      expect((await s.read(0, 0)).byteLength).toBe(0);
      expect(await codeOf(s.read(0, 1))).toBe('OUT_OF_RANGE');
    });

    it('stats size and a stable etag', async () => {
      const s = await open();
      const st = await s.stat();
      expect(st.size).toBe(SIZE);
      expect(typeof st.etag).toBe('string');
      await s.read(10, 10);
      expect((await s.stat()).etag).toBe(st.etag);
      const t = await open();
      expect((await t.readTail(10)).stat.etag).toBe(st.etag);
    });

    it('serves concurrent reads correctly', async () => {
      const s = await open();
      const rnd = prng(2);
      const ranges = Array.from({ length: 32 }, () => {
        const offset = Math.floor(rnd() * SIZE);
        return { offset, length: Math.floor(rnd() * Math.min(SIZE - offset, 100_000)) };
      });
      const results = await Promise.all(ranges.map((r) => s.read(r.offset, r.length)));
      results.forEach((got, i) => {
        const { offset, length } = ranges[i];
        expect(Buffer.from(got).equals(source.subarray(offset, offset + length))).toBe(true);
      });
    });

    it('fails with ABORTED when the signal has fired', async () => {
      const s = await open();
      const signal = AbortSignal.abort();
      expect(await codeOf(s.read(0, 100, { signal }))).toBe('ABORTED');
      expect(await codeOf(s.readTail(100, { signal }))).toBe('ABORTED');
      // The storage stays usable.
      expect(Buffer.from(await s.read(0, 100)).equals(source.subarray(0, 100))).toBe(true);
    });

    it('reports a missing object as ARCHIVE_NOT_FOUND', async () => {
      const attempt = async () => {
        const s = await open(fx.missing);
        await s.readTail(100);
      };
      expect(await codeOf(attempt())).toBe('ARCHIVE_NOT_FOUND');
    });
  });
}

// ---- writer conformance ---------------------------------------------------------------------------

interface WriteFixture {
  url(name: string): string;
  /** Whatever a writer might leave behind: temp files, pending multipart uploads. */
  leftovers(): Promise<string[]>;
  options?: StorageOptions;
}

function writerConformance(backend: string, setup: () => Promise<WriteFixture>): void {
  describe(`writer conformance: ${backend}`, () => {
    let fx: WriteFixture;
    beforeAll(async () => {
      fx = await setup();
    });

    /** Write `pieces` through one reused scratch buffer (the writer must copy) and return what was sent. */
    async function writePieces(w: Awaited<ReturnType<typeof createWriter>>, pieces: number[]): Promise<Buffer> {
      const scratch = Buffer.alloc(Math.max(...pieces, 1));
      const sent: Buffer[] = [];
      for (const n of pieces) {
        const piece = randomBytes(n);
        piece.copy(scratch);
        await w.write(scratch.subarray(0, n));
        scratch.fill(0xee); // the writer may not keep a reference to the caller's buffer
        sent.push(piece);
      }
      return Buffer.concat(sent);
    }

    async function readBack(url: string): Promise<Buffer> {
      const s = await openStorage(url, fx.options);
      try {
        const { size } = await s.stat();
        return Buffer.from(await s.read(0, size));
      } finally {
        await s.close();
      }
    }

    it('writes in pieces (several parts), commits, and reads back', async () => {
      const url = fx.url('pieces.bin');
      const w = await createWriter(url, fx.options);
      expect(w.backend).toBe(backend);
      const sent = await writePieces(w, [1, 0, 1000, 3 * 1024 * 1024, 5 * 1024 * 1024 + 7, 65536, 4 * 1024 * 1024, 3]);
      expect(w.bytesWritten).toBe(sent.byteLength);
      const st = await w.commit();
      expect(st.size).toBe(sent.byteLength);
      expect((await readBack(url)).equals(sent)).toBe(true);
      expect(await fx.leftovers()).toEqual([]);
    });

    it('writes a small object', async () => {
      const url = fx.url('small.bin');
      const w = await createWriter(url, fx.options);
      const sent = await writePieces(w, [100_000, 100_000, 17]);
      expect((await w.commit()).size).toBe(sent.byteLength);
      expect((await readBack(url)).equals(sent)).toBe(true);
    });

    it('writes an empty object', async () => {
      const url = fx.url('empty.bin');
      const w = await createWriter(url, fx.options);
      expect((await w.commit()).size).toBe(0);
      expect((await readBack(url)).byteLength).toBe(0);
    });

    it('leaves nothing behind on abort, even after several parts', async () => {
      const url = fx.url('aborted.bin');
      const w = await createWriter(url, fx.options);
      await writePieces(w, [9 * 1024 * 1024, 9 * 1024 * 1024, 1000]);
      await w.abort(new Error('test'));
      await w.abort(); // safe twice
      expect(await codeOf(openStorage(url, fx.options).then((s) => s.readTail(10)))).toBe('ARCHIVE_NOT_FOUND');
      expect(await fx.leftovers()).toEqual([]);
    });

    it('leaves nothing behind when aborted before any byte', async () => {
      const url = fx.url('aborted-empty.bin');
      const w = await createWriter(url, fx.options);
      await w.abort();
      expect(await codeOf(openStorage(url, fx.options).then((s) => s.readTail(10)))).toBe('ARCHIVE_NOT_FOUND');
      expect(await fx.leftovers()).toEqual([]);
    });
  });
}

// ---- backends -------------------------------------------------------------------------------------

async function fileDir(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

storageConformance('file', async () => {
  const dir = await fileDir('file-read');
  return {
    async put(name, bytes) {
      await fs.writeFile(path.join(dir, name), bytes);
      return pathToFileURL(path.join(dir, name)).href;
    },
    missing: pathToFileURL(path.join(dir, 'missing.bin')).href,
  };
});

storageConformance('memory', async () => ({
  async put(name, bytes) {
    putMemoryObject(`memory://conformance/${name}`, bytes);
    return `memory://conformance/${name}`;
  },
  missing: 'memory://conformance/missing.bin',
}));

storageConformance('http', async () => ({
  put: (name, bytes) => http.put(`read/${name}`, bytes),
  missing: `${http.url}read/missing.bin`,
  options: { http: { retries: 1 } },
}));

storageConformance('s3', async () => {
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  return {
    async put(name, bytes) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `read/${name}`, Body: bytes }));
      return `s3://${BUCKET}/read/${name}`;
    },
    missing: `s3://${BUCKET}/read/missing.bin`,
    options: { s3: { endpoint: s3.endpoint } },
  };
});

writerConformance('file', async () => {
  const dir = await fileDir('file-write');
  return {
    url: (name) => pathToFileURL(path.join(dir, name)).href,
    leftovers: async () => (await fs.readdir(dir)).filter((n) => n.startsWith('.')),
  };
});

writerConformance('memory', async () => ({
  url: (name) => `memory://conformance-write/${name}`,
  leftovers: async () => (getMemoryObject('memory://conformance-write/aborted.bin') ? ['aborted.bin'] : []),
}));

writerConformance('s3', async () => ({
  url: (name) => `s3://${BUCKET}/write/${name}`,
  leftovers: async () => s3.pendingUploads(BUCKET),
  options: { s3: { endpoint: s3.endpoint } },
}));
