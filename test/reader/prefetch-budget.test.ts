import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { randomBytesSeeded, sha256, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let out: string;
const files = Array.from({ length: 8 }, (_, i) => randomBytesSeeded(24 * MiB, 50 + i));

beforeAll(async () => {
  tmp = await makeTempDir('hexz-prefetch-');
  await writeTree(path.join(tmp.dir, 'in'), Object.fromEntries(files.map((f, i) => [`f${i}.bin`, f])));
  out = path.join(tmp.dir, 'a.hxz');
  await pack(path.join(tmp.dir, 'in'), out);
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('process-wide prefetch allowance', () => {
  it('bounds bytes loaded ahead across many concurrent streams, and all of it comes back', async () => {
    const cache = new BlockCache({ maxBytes: 32 * MiB });
    const archive = await openArchive(out, { cache });
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, cache.prefetchBytes)), 1);
    const streams = files.flatMap((f, i) => [0, 1].map(async () => {
      const parts: Buffer[] = [];
      for await (const p of archive.pieces(`f${i}.bin`)) {
        parts.push(Buffer.from(p.bytes));
        peak = Math.max(peak, cache.prefetchBytes);
      }
      expect(sha256(Buffer.concat(parts))).toBe(sha256(f));
    }));
    // Streams abandoned half-way must give their allowance back too.
    const abandoned = files.slice(0, 4).map(async (_, i) => {
      let n = 0;
      for await (const p of archive.pieces(`f${i}.bin`)) if ((n += p.bytes.byteLength) > 5 * MiB) break;
    });
    await Promise.all([...streams, ...abandoned]);
    clearInterval(timer);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(cache.prefetchBudget);
    expect(cache.prefetchBytes).toBe(0);
    await archive.close();
  });

  it('sequential readers through read() with a Readahead stay within it too', async () => {
    const cache = new BlockCache({ maxBytes: 16 * MiB });
    const archive = await openArchive(out, { cache });
    const { Readahead } = await import('@hexz/cache/readahead.js');
    let peak = 0;
    await Promise.all(files.map(async (f, i) => {
      const ra = new Readahead();
      for (let at = 0; at < 8 * MiB; at += 128 * 1024) {
        const got = await archive.read(`f${i}.bin`, at, 128 * 1024, { readahead: ra });
        expect(Buffer.from(got).equals(f.subarray(at, at + 128 * 1024))).toBe(true);
        peak = Math.max(peak, cache.prefetchBytes);
      }
    }));
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(cache.prefetchBudget);
    await new Promise((r) => setTimeout(r, 200));
    expect(cache.prefetchBytes).toBe(0);
    await archive.close();
  });

  it('random-access readers through read() with a Readahead prefetch nothing', async () => {
    const cache = new BlockCache({ maxBytes: 16 * MiB });
    const archive = await openArchive(out, { cache });
    const { Readahead } = await import('@hexz/cache/readahead.js');
    let peak = 0;
    await Promise.all(files.map(async (f, i) => {
      const ra = new Readahead();
      // A fixed pseudo-random order of 4 KiB reads: never where the previous one ended.
      for (let k = 0; k < 64; k++) {
        const at = ((k * 7919 + i * 104729) % 6000) * 4096;
        const got = await archive.read(`f${i}.bin`, at, 4096, { readahead: ra });
        expect(Buffer.from(got).equals(f.subarray(at, at + 4096))).toBe(true);
        peak = Math.max(peak, cache.prefetchBytes);
      }
    }));
    expect(peak).toBe(0);
    await archive.close();
  });
});
