import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkingForAverage, createChunker, cutPoints, DEFAULT_CHUNKING, gearTable, validateChunking } from '@hexz/src/chunker/fastcdc.js';
import { randomBytesSeeded } from '../helpers/data.js';

const MiB = 1024 * 1024;

function lengths(cuts: number[]): number[] {
  return cuts.map((c, i) => c - (i ? cuts[i - 1] : 0));
}

/** Cuts computed by feeding the chunker in small pieces (as the packer does across buffers). */
function streamedCuts(data: Buffer, pieceSize: number): number[] {
  const c = createChunker();
  const cuts: number[] = [];
  let start = 0;
  for (let end = Math.min(pieceSize, data.length); ; end = Math.min(end + pieceSize, data.length)) {
    const final = end === data.length;
    for (;;) {
      const n = c.cut(data, start, end, final);
      if (n <= 0) break;
      start += n;
      cuts.push(start);
      if (start === end) break;
    }
    if (final) break;
  }
  return cuts;
}

describe('FastCDC chunker', () => {
  const data = randomBytesSeeded(64 * MiB, 7);
  const cuts = cutPoints(data);

  it('is deterministic and covers the input exactly', () => {
    expect(cutPoints(data)).toEqual(cuts);
    expect(cuts[cuts.length - 1]).toBe(data.length);
  });

  it('respects min and max (only the last chunk may be short)', () => {
    const ls = lengths(cuts);
    for (const l of ls.slice(0, -1)) {
      expect(l).toBeGreaterThanOrEqual(DEFAULT_CHUNKING.min);
      expect(l).toBeLessThanOrEqual(DEFAULT_CHUNKING.max);
    }
    const mean = data.length / ls.length;
    expect(mean).toBeGreaterThan(48 * 1024);
    expect(mean).toBeLessThan(96 * 1024);
  });

  it('gives the same cuts when fed in pieces of any size', () => {
    for (const piece of [1000, 65536, 300_001]) expect(streamedCuts(data.subarray(0, 8 * MiB), piece)).toEqual(cutPoints(data.subarray(0, 8 * MiB)));
  });

  it.each([
    ['insert one byte', (d: Buffer, at: number) => Buffer.concat([d.subarray(0, at), Buffer.from([0x42]), d.subarray(at)])],
    ['delete one byte', (d: Buffer, at: number) => Buffer.concat([d.subarray(0, at), d.subarray(at + 1)])],
    ['overwrite 100 bytes', (d: Buffer, at: number) => Buffer.concat([d.subarray(0, at), randomBytesSeeded(100, 99), d.subarray(at + 100)])],
  ])('%s in a 64 MiB input changes only a few chunks', (_name, edit) => {
    const edited = edit(data, 31 * MiB + 12345);
    const a = new Set(chunkSet(data, cuts));
    const b = chunkSet(edited, cutPoints(edited));
    const changed = b.filter((h) => !a.has(h)).length;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(3);
  });

  it('matches an independent implementation of docs/format.md section 8', () => {
    expect(cutPoints(data.subarray(0, 16 * MiB))).toEqual(referenceCuts(data.subarray(0, 16 * MiB)));
  });

  it('cuts long zero runs exactly like the byte-by-byte scan (memcmp fast path)', () => {
    const d = Buffer.alloc(6 * MiB);
    randomBytesSeeded(100_000, 3).copy(d, 2 * MiB);
    randomBytesSeeded(10, 4).copy(d, 5 * MiB + 7);
    const fast = cutPoints(d);
    expect(fast).toEqual(referenceCuts(d));
    expect(fast.length).toBeGreaterThan(10);
  });

  it('derives the gear table from the seed', () => {
    expect(gearTable('0000000000000000')).toEqual(gearTable('0000000000000000'));
    expect(gearTable('0000000000000001')).not.toEqual(gearTable('0000000000000000'));
    const other = cutPoints(data.subarray(0, 4 * MiB), { ...DEFAULT_CHUNKING, seed: '00000000000000ff' });
    expect(other).not.toEqual(cutPoints(data.subarray(0, 4 * MiB)));
  });

  it.each([
    [{ avg: 1000 }, /power of two/],
    [{ min: 10 }, /minimum/],
    [{ max: 32 * MiB }, /maximum/],
    [{ normalization: 5 }, /normalization/],
    [{ seed: 'xyz' }, /seed/],
  ])('rejects bad parameters %o', (patch, msg) => {
    expect(() => validateChunking({ ...DEFAULT_CHUNKING, ...patch } as never)).toThrow(msg);
  });

  it('chunkingForAverage keeps the 1:4:16 shape', () => {
    expect(chunkingForAverage(16384)).toMatchObject({ min: 4096, avg: 16384, max: 65536 });
  });

  it('handles empty and tiny inputs', () => {
    expect(cutPoints(Buffer.alloc(0))).toEqual([]);
    expect(cutPoints(Buffer.from('x'))).toEqual([1]);
  });
});

function chunkSet(d: Buffer, cuts: number[]): string[] {
  return cuts.map((c, i) => createHash('sha256').update(d.subarray(i ? cuts[i - 1] : 0, c)).digest('hex'));
}

/** The cutting loop exactly as docs/format.md section 8 states it, with no optimisation. */
function referenceCuts(d: Buffer): number[] {
  const { min, avg, max, normalization } = DEFAULT_CHUNKING;
  const g = Array.from({ length: 256 }, (_, i) => createHash('sha256').update('hexz-gear-v1').update(Buffer.alloc(8)).update(Uint8Array.of(i)).digest().readUInt32LE(0));
  const bits = Math.log2(avg);
  const mask = (n: number) => (0xffffffff << (32 - n)) >>> 0;
  const maskS = mask(bits + normalization);
  const maskL = mask(bits - normalization);
  const cuts: number[] = [];
  let start = 0;
  while (start < d.length) {
    const remaining = d.length - start;
    let cut = remaining;
    if (remaining > min) {
      let h = 0;
      let i = min;
      const center = Math.min(avg, remaining);
      const end = Math.min(max, remaining);
      cut = end;
      let found = false;
      while (i < center && !found) {
        h = (h * 2 + g[d[start + i]]) % 2 ** 32;
        i++;
        if (((h & maskS) >>> 0) === 0) found = true;
      }
      while (i < end && !found) {
        h = (h * 2 + g[d[start + i]]) % 2 ** 32;
        i++;
        if (((h & maskL) >>> 0) === 0) found = true;
      }
      if (found) cut = i;
    }
    start += cut;
    cuts.push(start);
  }
  return cuts;
}
