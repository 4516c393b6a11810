/**
 * The WebAssembly gear scan against a JavaScript transcription of docs/format.md, section 8: same
 * cuts on every kind of input and parameter set, whether the bytes are scanned in place (a scan
 * memory, as the packer does) or copied in; and the committed module is what the .wat compiles to.
 */
import { describe, expect, it } from 'vitest';
import { chunkingForAverage, createChunker, createScanMemory, DEFAULT_CHUNKING, gearTable, SCAN_MEMORY_RESERVED, type ChunkingParams } from '@hexz/src/chunker/fastcdc.js';
import { randomBytesSeeded, textBytes } from '../helpers/data.js';
// @ts-expect-error: a plain .mjs build script without types
import { compileGearScan, moduleSource } from '../../scripts/build-wasm.mjs';
import { promises as fs } from 'node:fs';

/** docs/format.md §8, literally: the reference the WebAssembly scan must agree with. */
function referenceCuts(data: Uint8Array, p: ChunkingParams): number[] {
  const gear = gearTable(p.seed);
  const bits = Math.log2(p.avg);
  const maskS = 2 ** 32 - 2 ** (32 - (bits + p.normalization));
  const maskL = 2 ** 32 - 2 ** (32 - (bits - p.normalization));
  const cuts: number[] = [];
  let start = 0;
  while (start < data.length) {
    const limit = Math.min(p.max, data.length - start);
    let cut = limit;
    if (limit > p.min) {
      let h = 0;
      for (let i = p.min; i < limit; i++) {
        h = (h * 2 + gear[data[start + i]]) % 2 ** 32;
        if ((h & (i < Math.min(p.avg, limit) ? maskS : maskL)) >>> 0 === 0) {
          cut = i + 1;
          break;
        }
      }
    }
    start += cut;
    cuts.push(start);
  }
  return cuts;
}

function chunkerCuts(data: Uint8Array, p: ChunkingParams, inPlace: boolean): number[] {
  let buf = data;
  let chunker;
  if (inPlace) {
    const memory = createScanMemory(data.length);
    chunker = createChunker(p, { memory });
    const view = new Uint8Array(memory.buffer, SCAN_MEMORY_RESERVED, data.length);
    view.set(data);
    buf = view;
  } else chunker = createChunker(p);
  const cuts: number[] = [];
  let start = 0;
  while (start < buf.length) {
    start += chunker.cut(buf, start, buf.length, true);
    cuts.push(start);
  }
  return cuts;
}

describe('WebAssembly gear scan', () => {
  const inputs: Array<[string, Buffer]> = [
    ['random', randomBytesSeeded(3 * 1024 * 1024, 11)],
    ['text', textBytes(3 * 1024 * 1024, 12)],
    ['runs of one byte', Buffer.alloc(2 * 1024 * 1024, 0x61)],
  ];
  const params: Array<[string, ChunkingParams]> = [
    ['default', DEFAULT_CHUNKING],
    ['avg 4 KiB', chunkingForAverage(4096)],
    ['avg 256, seeded', chunkingForAverage(256, '0123456789abcdef')],
    ['normalization 0', { ...DEFAULT_CHUNKING, normalization: 0 }],
    ['normalization 3', { ...DEFAULT_CHUNKING, normalization: 3 }],
  ];
  for (const [pname, p] of params) {
    it.each(inputs)(`cuts %s like the reference (${pname}), in place and copied`, (_name, data) => {
      // The reference is slow: compare on a prefix.
      const d = data.subarray(0, p.avg <= 4096 ? 512 * 1024 : data.length);
      const expected = referenceCuts(d, p);
      expect(chunkerCuts(d, p, true)).toEqual(expected);
      expect(chunkerCuts(d, p, false)).toEqual(expected);
    });
  }

  /**
   * Random data broken by runs of one byte (the scan skips runs instead of hashing them): zeros, 0xff,
   * random bytes and the bytes whose fixed-point hash matches a mask (those cut inside a run), with
   * lengths from 1 byte to beyond the maximum chunk, placed to start and end around `min`, `avg` and
   * `max` of the chunks they fall in.
   */
  function withRuns(p: ChunkingParams, seed: number, bytes: number): { data: Buffer; cutting: number[] } {
    let s = seed >>> 0;
    const next = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s;
    };
    const gear = gearTable(p.seed);
    const bits = Math.log2(p.avg);
    const maskL = 2 ** 32 - 2 ** (32 - (bits - p.normalization));
    const cutting = [...Array(256).keys()].filter((b) => ((-gear[b] >>> 0) & maskL) >>> 0 === 0);
    const pool = [0, 0, 0xff, ...cutting, ...cutting];
    const near = [1, 31, 32, 33, p.min - 1, p.min, p.min + 1, p.avg - 1, p.avg, p.avg + 1, p.max - 1, p.max, p.max + 1, 2 * p.max + 7];
    const data = Buffer.alloc(bytes);
    const noise = randomBytesSeeded(bytes, seed);
    let at = 0;
    while (at < bytes) {
      const gap = next() % 4 === 0 ? next() % 64 : next() % (2 * p.max);
      noise.copy(data, at, at, Math.min(bytes, at + gap));
      at += gap;
      const byte = next() % 3 === 0 ? next() & 0xff : pool[next() % pool.length];
      const len = next() % 2 === 0 ? near[next() % near.length] + (next() % 5) - 2 : 1 + (next() % (3 * p.max));
      data.fill(byte, Math.min(at, bytes), Math.min(bytes, at + Math.max(1, len)));
      at += Math.max(1, len);
    }
    return { data, cutting };
  }

  const runParams: Array<[string, ChunkingParams]> = [
    ['default', DEFAULT_CHUNKING],
    ['avg 4 KiB', chunkingForAverage(4096)],
    ['avg 256, normalization 3', { ...chunkingForAverage(256), normalization: 3 }],
    ['avg 1 KiB, normalization 0, seeded', { ...chunkingForAverage(1024, 'fedcba9876543210'), normalization: 0 }],
  ];
  for (const [pname, p] of runParams) {
    it(`cuts random data with runs of one byte like the reference (${pname})`, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const { data } = withRuns(p, seed * 7919, p.avg <= 4096 ? 384 * 1024 : 3 * 1024 * 1024);
        const expected = referenceCuts(data, p);
        expect(chunkerCuts(data, p, true)).toEqual(expected);
        expect(chunkerCuts(data, p, false)).toEqual(expected);
      }
    });
  }

  it('cuts a run of every byte value like the reference, from every offset around min and avg', () => {
    const p = { ...chunkingForAverage(256), normalization: 3 };
    const noise = randomBytesSeeded(4 * p.max, 5);
    let cuttingRuns = 0;
    for (let b = 0; b < 256; b++) {
      for (const lead of [p.min - 40, p.min - 1, p.min + 3, p.avg - 33, p.avg - 1, p.avg, p.avg + 9]) {
        const data = Buffer.from(noise);
        data.fill(b, lead, lead + p.max + 50);
        const expected = referenceCuts(data, p);
        expect(chunkerCuts(data, p, true)).toEqual(expected);
        if (expected[0] > lead && expected[0] < lead + p.max) cuttingRuns++;
      }
    }
    // Some of these runs must cut inside themselves, or the branch that decides a run's cut is untested.
    expect(cuttingRuns).toBeGreaterThan(0);
  });

  it('is committed as gear-scan.wat compiles (run node scripts/build-wasm.mjs after editing it)', async () => {
    const committed = await fs.readFile(new URL('../../src/chunker/gear-scan-wasm.ts', import.meta.url), 'utf8');
    expect(committed).toBe(moduleSource(await compileGearScan()));
  });
});
