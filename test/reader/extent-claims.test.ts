/**
 * Extents in flight are visible to every reader (src/reader/content.ts, cache/arena.ts
 * `claimLoading`): a read that lands on chunks a prefetch is still decoding waits for that extent
 * instead of reading and decoding them a second time, and a random read of many chunks that are not
 * cached loads them as extents (one storage read per run stored together), not chunk by chunk.
 * Counted at the storage (a wrapper around the real file storage), with the decode pool on and off;
 * a chunk that fails inside a prefetched extent is a typed CORRUPT for the reader waiting on it.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { isHexzError } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import type { Storage } from '@hexz/storage/types.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let out: string;
/** Incompressible: stored bytes ≈ plaintext bytes, so a chunk read twice shows in the byte count. */
const data = randomBytesSeeded(16 * MiB, 77);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-claims-');
  await writeTree(path.join(tmp.dir, 'in'), { 'big.bin': data });
  out = path.join(tmp.dir, 'a.hxz');
  await pack(path.join(tmp.dir, 'in'), out);
});
afterAll(async () => {
  await tmp.cleanup();
});

interface Counted {
  archive: Archive;
  /** Storage reads, bytes, and how many were extent reads (positional reads into the pooled I/O buffers). */
  counts: { reads: number; bytes: number; extentReads: number };
}

/** The archive on a fresh cache, every storage read counted; `damage(offset, bytes)` may alter what a read returns. */
async function openCounted(decodeThreads: number, damage?: (offset: number, bytes: Uint8Array) => void, cacheBytes = 128 * MiB): Promise<Counted> {
  const counts = { reads: 0, bytes: 0, extentReads: 0 };
  const wrap = (s: Storage): Storage => {
    const seen = (offset: number, bytes: Uint8Array) => {
      counts.reads++;
      counts.bytes += bytes.byteLength;
      damage?.(offset, bytes);
    };
    return {
      url: s.url,
      backend: s.backend,
      stat: (o) => s.stat(o),
      readTail: (n, o) => s.readTail(n, o),
      read: async (offset, length, o) => {
        const b = await s.read(offset, length, o);
        seen(offset, b);
        return b;
      },
      readInto: async (offset, dst, o) => {
        if (s.readInto) await s.readInto(offset, dst, o);
        else dst.set(await s.read(offset, dst.byteLength, o));
        counts.extentReads++;
        seen(offset, dst);
      },
      close: () => s.close(),
    } as Storage;
  };
  const archive = await openArchive(out, { cache: new BlockCache({ maxBytes: cacheBytes }), wrapStorage: wrap, decodeThreads });
  return { archive, counts };
}

describe.each([2, 0])('extents in flight (%i decode threads)', (threads) => {
  it('a read inside a prefetch in flight waits for it: every stored byte is read once', async () => {
    const { archive, counts } = await openCounted(threads);
    try {
      const e = await archive.resolve('big.bin');
      await archive.read(e, 0, 1); // index pages and the first chunk
      const before = counts.bytes;
      archive.prefetch(e, 1 * MiB, 9 * MiB);
      // The reads land on chunks the prefetch has claimed, while it is still reading or decoding them.
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => archive.read(e, (1 + i) * MiB, MiB)));
      expect(Buffer.concat(got).equals(data.subarray(MiB, 9 * MiB))).toBe(true);
      // 8 MiB of chunks, read once (+ the chunks straddling the edges and the gaps of one extent).
      expect(counts.bytes - before).toBeLessThan(8 * MiB + 1 * MiB);
    } finally {
      await archive.close();
    }
  });

  it('with a small cache (1 MiB arena segments) too: extents fit a segment, nothing is read twice', async () => {
    const { archive, counts } = await openCounted(threads, undefined, 16 * MiB);
    try {
      const e = await archive.resolve('big.bin');
      await archive.read(e, 0, 1);
      const before = counts.bytes;
      archive.prefetch(e, 1 * MiB, 5 * MiB);
      const got = await Promise.all(Array.from({ length: 4 }, (_, i) => archive.read(e, (1 + i) * MiB, MiB)));
      expect(Buffer.concat(got).equals(data.subarray(MiB, 5 * MiB))).toBe(true);
      // A miss of 2 MiB: in extents of one segment each, cached, so reading it again costs nothing.
      const miss = await archive.read(e, 8 * MiB, 2 * MiB);
      expect(Buffer.from(miss).equals(data.subarray(8 * MiB, 10 * MiB))).toBe(true);
      const again = counts.reads;
      await archive.read(e, 8 * MiB, 2 * MiB);
      expect(counts.reads).toBe(again);
      expect(counts.bytes - before).toBeLessThan(6 * MiB + 1 * MiB);
    } finally {
      await archive.close();
    }
  });

  it('a random read of many uncached chunks is one storage read per extent, not per chunk', async () => {
    const { archive, counts } = await openCounted(threads);
    try {
      const e = await archive.resolve('big.bin');
      await archive.read(e, 0, 1);
      const reads = counts.reads;
      const extents = counts.extentReads;
      const got = await archive.read(e, 4 * MiB + 123, 3 * MiB);
      expect(Buffer.from(got).equals(data.subarray(4 * MiB + 123, 7 * MiB + 123))).toBe(true);
      // ~48 chunks of 64 KiB: one extent (4 MiB of stored bytes at most), maybe cut once at a limit,
      // read into an I/O buffer and decoded as a whole (chunk-by-chunk loads use plain reads, which
      // the coalescer would have merged into as few requests, but each decoded on its own).
      expect(counts.reads - reads).toBeLessThanOrEqual(2);
      expect(counts.extentReads - extents).toBe(counts.reads - reads);
      // And it is cached now: the same range again reads nothing.
      const again = counts.reads;
      await archive.read(e, 4 * MiB + 123, 3 * MiB);
      expect(counts.reads).toBe(again);
    } finally {
      await archive.close();
    }
  });

  it('a bad chunk inside a prefetched extent is CORRUPT for the reader waiting on it; the rest reads', async () => {
    // Damage the stored bytes around 6 MiB of the file's chunk data, in every read that covers them.
    const hit = 64 + 6 * MiB; // chunks start right after the 64-byte header
    const { archive } = await openCounted(threads, (offset, bytes) => {
      if (offset <= hit && hit < offset + bytes.byteLength) bytes[hit - offset] ^= 0xff;
    });
    try {
      const e = await archive.resolve('big.bin');
      await archive.read(e, 0, 1);
      archive.prefetch(e, 4 * MiB, 8 * MiB);
      const bad = archive.read(e, 6 * MiB - 64 * 1024, 256 * 1024);
      await expect(bad).rejects.toSatisfy((err: unknown) => isHexzError(err, 'CORRUPT'));
      const good = await archive.read(e, 9 * MiB, MiB);
      expect(Buffer.from(good).equals(data.subarray(9 * MiB, 10 * MiB))).toBe(true);
    } finally {
      await archive.close();
    }
  });
});
