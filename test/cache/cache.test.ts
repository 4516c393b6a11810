import { describe, expect, it } from 'vitest';
import { arenaOverheadBytes } from '@hexz/cache/arena.js';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { IO_BUFFER_BYTES, ioBudgetFor, pageBudgetFor } from '@hexz/cache/budget.js';
import { coalesceReads, planCoalesced } from '@hexz/cache/coalesce.js';
import { meterStorage } from '@hexz/cache/metered.js';
import { Readahead } from '@hexz/cache/readahead.js';
import { openStorage } from '@hexz/storage/index.js';
import { putMemoryObject } from '@hexz/storage/memory.js';
import { randomBytesSeeded } from '../helpers/data.js';

/** A chunk id for tests (any 32 bytes: the cache trusts its loaders to verify). */
function cid(n: number): Uint8Array {
  const id = Buffer.alloc(32);
  id.writeUInt32LE(n * 2654435761 >>> 0, 0);
  id.writeUInt32LE(n, 4);
  return id;
}

describe('BlockCache', () => {
  it('keeps arena, index pages and I/O buffers of every thread inside the budget, or refuses the budget', () => {
    const MiB = 1 << 20;
    for (const maxBytes of [8 * MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB]) {
      for (const threads of [1, 2, 4, 8]) {
        let cache: BlockCache;
        try {
          cache = new BlockCache({ maxBytes, threads });
        } catch (err) {
          // Too small for this many threads: a clear error naming the least that works, never an overrun.
          expect(String(err)).toMatch(/too small for \d+ threads? sharing it: at least [\d.]+ MiB/);
          expect(maxBytes).toBeLessThan(threads * 6 * MiB);
          continue;
        }
        const { arena } = cache;
        // What each thread may hold besides the arena: its page LRU and its I/O buffers.
        const pages = Math.max(MiB, Math.floor(pageBudgetFor(maxBytes) / threads));
        const io = Math.max(1, Math.floor(ioBudgetFor(maxBytes) / IO_BUFFER_BYTES / threads)) * IO_BUFFER_BYTES;
        const arenaBytes = arena.segmentBytes * arena.segmentCount;
        expect(arenaBytes + arenaOverheadBytes(arenaBytes) + threads * (pages + io)).toBeLessThanOrEqual(maxBytes);
      }
    }
    expect(() => new BlockCache({ maxBytes: 8 * MiB, threads: 1 })).not.toThrow();
    expect(() => new BlockCache({ maxBytes: 8 * MiB, threads: 2 })).toThrow(/too small for 2 threads/);
  });

  it('holds chunks in shared memory within its budget, all of it accounted', async () => {
    const cache = new BlockCache({ maxBytes: 32 << 20 });
    const { arena } = cache;
    // Arena data + its index + the page budget: the whole cache is what was asked for.
    expect(arena.data.byteLength).toBeLessThanOrEqual(cache.maxBytes);
    let maxSeen = 0;
    for (let i = 0; i < 2000; i++) {
      const lease = await cache.chunk(cid(i % 700), 1, 64 * 1024 + (i % 7), async (dst) => void dst.fill(i % 700 & 0xff));
      expect(lease.bytes[0]).toBe(i % 700 & 0xff);
      lease.release();
      maxSeen = Math.max(maxSeen, cache.stats().bytes);
    }
    expect(maxSeen).toBeLessThanOrEqual(arena.data.byteLength);
    expect(cache.stats().evictions).toBeGreaterThan(0);
  });

  it('shares one chunk load between concurrent requests and never caches failures', async () => {
    const cache = new BlockCache();
    let loads = 0;
    const load = async (dst: Uint8Array) => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      dst.fill(7);
    };
    const leases = await Promise.all([cache.chunk(cid(1), 1, 100, load), cache.chunk(cid(1), 1, 100, load), cache.chunk(cid(1), 1, 100, load)]);
    expect(loads).toBe(1);
    expect(cache.stats().shared).toBe(2);
    for (const l of leases) {
      expect(l.bytes.every((b) => b === 7)).toBe(true);
      l.release();
    }
    const again = await cache.chunk(cid(1), 1, 100, load);
    again.release();
    expect(loads).toBe(1);
    let attempts = 0;
    const failing = async () => {
      attempts++;
      throw new Error('boom');
    };
    await expect(cache.chunk(cid(2), 1, 100, failing)).rejects.toThrow('boom');
    await expect(cache.chunk(cid(2), 1, 100, failing)).rejects.toThrow('boom');
    expect(attempts).toBe(2);
    expect(cache.stats().failures).toBe(2);
    expect(cache.hasChunk(cid(2), 1)).toBe(false);
  });

  it('a lease keeps its bytes while the cache churns through many times its size', async () => {
    const cache = new BlockCache({ maxBytes: 16 << 20 });
    const held = await cache.chunk(cid(99), 1, 200_000, async (dst) => void dst.fill(0x5a));
    for (let i = 0; i < 1000; i++) (await cache.chunk(cid(1000 + i), 1, 100_000, async (dst) => void dst.fill(1))).release();
    expect(held.bytes.every((b) => b === 0x5a)).toBe(true);
    held.release();
  });

  it('a chunk bigger than a segment is served from memory of its own, uncached', async () => {
    const cache = new BlockCache({ maxBytes: 16 << 20 });
    const big = await cache.chunk(cid(5), 1, 8 << 20, async (dst) => void dst.fill(3));
    expect(big.bytes.byteLength).toBe(8 << 20);
    big.release();
    expect(cache.hasChunk(cid(5), 1)).toBe(false);
    expect(cache.stats().uncached).toBe(1);
  });

  it('index pages: one load shared, failures not kept, values over an eighth of the page budget not kept', async () => {
    const cache = new BlockCache();
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return Buffer.from('x');
    };
    await Promise.all([cache.getPage('a', load, () => 1), cache.getPage('a', load, () => 1), cache.getPage('a', load, () => 1)]);
    expect(loads).toBe(1);
    expect(cache.cachedPage('a')).toBeDefined();
    await expect(cache.getPage('f', async () => Promise.reject(new Error('boom')), () => 1)).rejects.toThrow('boom');
    expect(cache.cachedPage('f')).toBeUndefined();
    await cache.getPage('big', async () => Buffer.alloc(8 << 20), (b) => b.byteLength);
    expect(cache.cachedPage('big')).toBeUndefined();
  });
});

describe('read coalescing', () => {
  it.each([
    ['adjacent reads merge', [[0, 10], [10, 10], [20, 5]], [[0, 25, 3]]],
    ['unsorted input is sorted', [[20, 5], [0, 10], [10, 10]], [[0, 25, 3]]],
    ['a small gap is fetched', [[0, 10], [100, 10]], [[0, 110, 2]]],
    ['a big gap splits', [[0, 10], [200_000, 10]], [[0, 10, 1], [200_000, 10, 1]]],
    ['overlaps merge', [[0, 100], [50, 100]], [[0, 150, 2]]],
  ])('%s', (_n, reads, groups) => {
    const plan = planCoalesced(reads.map(([offset, length]) => ({ offset, length })));
    expect(plan.map((g) => [g.offset, g.length, g.members.length])).toEqual(groups);
  });

  it('caps merged requests at maxBytes', () => {
    const reads = Array.from({ length: 10 }, (_, i) => ({ offset: i * 100, length: 100 }));
    expect(planCoalesced(reads, 0, 300).map((g) => g.members.length)).toEqual([3, 3, 3, 1]);
  });

  it('turns concurrent reads into one request and returns each caller its bytes', async () => {
    const data = randomBytesSeeded(1 << 20, 3);
    putMemoryObject('memory://coalesce/a', data);
    const metered = meterStorage(await openStorage('memory://coalesce/a'));
    const s = coalesceReads(metered);
    const parts = await Promise.all(Array.from({ length: 16 }, (_, i) => s.read(i * 65536, 65536)));
    expect(metered.counters.requests).toBe(1);
    parts.forEach((p, i) => expect(Buffer.from(p).equals(data.subarray(i * 65536, (i + 1) * 65536))).toBe(true));
  });

  it('one caller aborting does not abort the others of a merged request', async () => {
    putMemoryObject('memory://coalesce/b', randomBytesSeeded(1 << 16, 4));
    const s = coalesceReads(await openStorage('memory://coalesce/b'));
    const ac = new AbortController();
    const a = s.read(0, 100, { signal: ac.signal });
    const b = s.read(100, 100, { signal: new AbortController().signal });
    ac.abort();
    await expect(a).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(b).resolves.toHaveLength(100);
  });
});

describe('Readahead', () => {
  it('grows on sequential reads, hands out each range once, and resets on a jump', () => {
    const ra = new Readahead(1000, 8000);
    expect(ra.observe(0, 100)).toBeUndefined();
    expect(ra.observe(100, 100)).toEqual({ start: 200, end: 1200 });
    expect(ra.observe(200, 100)).toEqual({ start: 1200, end: 2300 });
    expect(ra.observe(300, 100)).toEqual({ start: 2300, end: 4400 });
    for (let i = 4; i < 10; i++) ra.observe(i * 100, 100);
    expect(ra.size).toBe(8000);
    expect(ra.observe(50_000, 100)).toBeUndefined();
    expect(ra.size).toBe(0);
  });
});
