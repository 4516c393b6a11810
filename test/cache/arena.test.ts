/**
 * The shared chunk arena (cache/arena.ts): index, allocation, eviction and pins, checked against a
 * plain model, then under real worker threads racing on one arena with every byte verified.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { arenaGeometry, ChunkArena, MAX_ENTRIES_PER_SEGMENT, type ArenaLocation } from '@hexz/cache/arena.js';

const MiB = 1024 * 1024;

/** A 32-byte id; `collide` makes ids share their first four bytes (the hash home), to exercise probing. */
function id(n: number, collide = false): Uint8Array {
  const h = createHash('sha256').update(`id-${n}`).digest();
  if (collide) h.writeUInt32LE(0xdeadbeef, 0);
  return h;
}

/** A pseudo-random pattern; test chunk `n` holds it from offset `n % 4099`: checkable without keeping it. */
const PATTERN = Buffer.from(Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24));
function fill(dst: Uint8Array, n: number): void {
  dst.set(PATTERN.subarray(n % 4099, (n % 4099) + dst.length));
}
function holds(bytes: Uint8Array, n: number): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(PATTERN.subarray(n % 4099, (n % 4099) + bytes.length));
}

/** Load chunk n (len bytes) into the arena as a reader would; returns where it is (unpinned). */
function load(a: ChunkArena, n: number, len: number, opts: { collide?: boolean; cold?: boolean } = {}): ArenaLocation | undefined {
  const key = id(n, opts.collide);
  const t = a.beginLoad(key, 1, len, opts.cold);
  if (t.kind === 'full' || t.kind === 'loading') return undefined;
  if (t.kind === 'load') {
    fill(a.view(t.at), n);
    a.publish(key, 1, t.at);
  }
  a.unpin(t.at.segment);
  return t.at;
}

describe('ChunkArena', () => {
  it('sizes segments and the index from the budget', () => {
    expect(arenaGeometry(256 * MiB)).toMatchObject({ segmentBytes: 4 * MiB, segmentCount: 64 });
    expect(arenaGeometry(16 * MiB)).toMatchObject({ segmentBytes: 1 * MiB, segmentCount: 16 });
    const g = arenaGeometry(64 * MiB);
    expect(g.slotCount).toBeGreaterThanOrEqual(2 * g.segmentCount * MAX_ENTRIES_PER_SEGMENT);
  });

  it('loads, publishes and finds chunks with exact bytes; a second loader is told to wait', () => {
    const a = ChunkArena.create(16 * MiB);
    const key = id(1);
    const t = a.beginLoad(key, 1, 1000);
    expect(t.kind).toBe('load');
    if (t.kind !== 'load') return;
    expect(a.beginLoad(key, 1, 1000).kind).toBe('loading');
    expect(a.lookup(key, 1)).toBeUndefined(); // not visible before publish
    fill(a.view(t.at), 1);
    a.publish(key, 1, t.at);
    a.unpin(t.at.segment);
    const at = a.lookup(key, 1)!;
    expect(holds(a.view(at), 1)).toBe(true);
    a.unpin(at.segment);
    // Another tag is another namespace.
    expect(a.lookup(key, 2)).toBeUndefined();
  });

  it('an abandoned load is forgotten: the next reader loads it', () => {
    const a = ChunkArena.create(16 * MiB);
    const key = id(2);
    const t = a.beginLoad(key, 1, 100);
    if (t.kind !== 'load') throw new Error(t.kind);
    a.abandon(key, 1, t.at);
    a.unpin(t.at.segment);
    expect(a.beginLoad(key, 1, 100).kind).toBe('load');
  });

  it('matches a model under inserts with colliding homes and whole-segment evictions', () => {
    const a = ChunkArena.create(16 * MiB); // 16 segments of 1 MiB
    const where = new Map<number, ArenaLocation>();
    const segOf = new Map<number, number>();
    for (let n = 0; n < 6000; n++) {
      const len = 1000 + ((n * 7919) % 60_000);
      const at = load(a, n, len, { collide: n % 3 === 0 });
      expect(at).toBeDefined();
      where.set(n, at!);
      segOf.set(n, at!.segment);
      // Every 500 inserts, every chunk the arena still claims must be intact, and the most recent
      // ones must still be there.
      if (n % 500 === 499) {
        let present = 0;
        for (const [m] of where) {
          const found = a.lookup(id(m, m % 3 === 0), 1);
          if (!found) continue;
          present++;
          const len2 = 1000 + ((m * 7919) % 60_000);
          expect(found.length).toBe(len2);
          expect(holds(a.view(found), m)).toBe(true);
          a.unpin(found.segment);
        }
        expect(present).toBeGreaterThan(0);
        for (let m = n - 5; m <= n; m++) expect(a.has(id(m, m % 3 === 0), 1)).toBe(true);
      }
    }
    const s = a.stats();
    expect(s.evictions).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(s.capacity);
    expect(s.pinnedSegments).toBe(0);
    // The index holds exactly the entries the segments list.
    let live = 0;
    for (const [m] of where) if (a.has(id(m, m % 3 === 0), 1)) live++;
    expect(live).toBe(s.entries);
  });

  it('never recycles a pinned segment', () => {
    const a = ChunkArena.create(16 * MiB);
    load(a, 7, 50_000);
    const pinned = a.lookup(id(7), 1)!;
    for (let n = 100; n < 2000; n++) load(a, n, 60_000);
    expect(holds(a.view(pinned), 7)).toBe(true);
    expect(a.has(id(7), 1)).toBe(true);
    a.unpin(pinned.segment);
    for (let n = 2000; n < 4000; n++) load(a, n, 60_000);
    expect(a.has(id(7), 1)).toBe(false);
  });

  it('evicts cold segments (one-pass readers) before hot ones', () => {
    const a = ChunkArena.create(16 * MiB);
    for (let n = 0; n < 60; n++) load(a, n, 100_000); // hot: ~6 segments
    for (let n = 1000; n < 2500; n++) load(a, n, 100_000, { cold: true }); // cold: many times the arena
    let hot = 0;
    for (let n = 0; n < 60; n++) if (a.has(id(n), 1)) hot++;
    expect(hot).toBe(60);
  });

  it('reserves contiguous space for extents; claimed chunks are loading for everyone until published', () => {
    const a = ChunkArena.create(16 * MiB);
    const other = ChunkArena.attach(a.handle);
    const at = a.reserve(300_000, 3, false)!;
    const v = a.view(at);
    const parts = [0, 1, 2].map((k) => ({ segment: at.segment, offset: at.offset + k * 100_000, length: 100_000 }));
    const keys = parts.map((_, k) => id(50 + k));
    for (let k = 0; k < 3; k++) expect(a.claimLoading(keys[k], 1, parts[k])).toBe(true);
    expect(a.claimLoading(keys[0], 1, parts[0])).toBe(false); // present already
    // While the extent decodes, other threads see its chunks as being loaded: they wait, never load them too.
    expect(other.beginLoad(keys[1], 1, 100_000).kind).toBe('loading');
    expect(other.lookup(keys[1], 1)).toBeUndefined();
    expect(other.has(keys[1], 1)).toBe(true);
    for (let k = 0; k < 3; k++) fill(a.view(parts[k]), 50 + k);
    a.publishLoaded(keys, 1, parts);
    expect(v.length).toBe(300_000);
    a.unpin(at.segment);
    for (let k = 0; k < 3; k++) {
      const found = other.lookup(keys[k], 1)!;
      expect(holds(other.view(found), 50 + k)).toBe(true);
      other.unpin(found.segment);
    }
    expect(a.reserve(2 * MiB, 1, false)).toBeUndefined(); // bigger than a segment
  });

  it('abandoned claims are forgotten: the next reader loads the chunk itself', () => {
    const a = ChunkArena.create(16 * MiB);
    const at = a.reserve(100_000, 1, false)!;
    const key = id(60);
    expect(a.claimLoading(key, 1, at)).toBe(true);
    a.abandonLoading([key], 1, [at]);
    a.unpin(at.segment);
    expect(a.has(key, 1)).toBe(false);
    const t = a.beginLoad(key, 1, 100_000);
    expect(t.kind).toBe('load');
    // A stale claim settled late touches nothing that is not its own any more.
    a.publishLoaded([key], 1, [at]);
    expect(a.lookup(key, 1)).toBeUndefined(); // still the new loader's, still loading
  });

  it('gives back the pins of a thread that died', () => {
    const a = ChunkArena.create(16 * MiB);
    const other = ChunkArena.attach(a.handle);
    load(other, 9, 1000);
    const held = other.lookup(id(9), 1)!; // "dies" holding it
    expect(a.stats().pinnedSegments).toBe(1);
    a.releaseThread(other.thread);
    expect(a.stats().pinnedSegments).toBe(0);
    void held;
  });

  it('stays consistent with four threads loading, hitting and evicting at once (every byte checked)', async () => {
    const a = ChunkArena.create(16 * MiB);
    const arenaUrl = new URL('../../dist/cache/arena.js', import.meta.url).href;
    const script = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { createHash } = require('node:crypto');
      import(${JSON.stringify(arenaUrl)}).then(async ({ ChunkArena }) => {
        const a = ChunkArena.attach(workerData.handle);
        const id = (n) => createHash('sha256').update('id-' + n).digest();
        let bad = 0, hits = 0, loads = 0;
        for (let i = 0; i < 4000; i++) {
          const n = (i * 2654435761 + workerData.seed * 97) % 1500; // overlapping working sets
          const len = 2000 + (n % 40) * 1000;
          const key = id(n);
          const t = a.beginLoad(key, 1, len, n % 2 === 0);
          if (t.kind === 'full') continue;
          if (t.kind === 'loading') { await a.waitForPublish(a.publishSeq(), 50); continue; }
          const v = a.view(t.at);
          if (t.kind === 'load') {
            loads++;
            for (let k = 0; k < v.length; k++) v[k] = (n * 31 + k * 7) & 0xff;
            a.publish(key, 1, t.at);
          } else {
            hits++;
            if (v.length !== len) bad++;
            for (let k = 0; k < v.length; k++) if (v[k] !== ((n * 31 + k * 7) & 0xff)) { bad++; break; }
          }
          a.unpin(t.at.segment);
        }
        a.detach();
        parentPort.postMessage({ bad, hits, loads });
      });`;
    const results = await Promise.all(
      [1, 2, 3, 4].map(
        (seed) =>
          new Promise<{ bad: number; hits: number; loads: number }>((resolve, reject) => {
            const w = new Worker(script, { eval: true, workerData: { handle: a.handle, seed } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    expect(results.map((r) => r.bad)).toEqual([0, 0, 0, 0]);
    expect(results.reduce((n, r) => n + r.hits, 0)).toBeGreaterThan(0);
    const s = a.stats();
    expect(s.pinnedSegments).toBe(0);
    expect(s.evictions).toBeGreaterThan(0);
  });
});
