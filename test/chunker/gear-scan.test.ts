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

  it('is committed as gear-scan.wat compiles (run node scripts/build-wasm.mjs after editing it)', async () => {
    const committed = await fs.readFile(new URL('../../src/chunker/gear-scan-wasm.ts', import.meta.url), 'utf8');
    expect(committed).toBe(moduleSource(await compileGearScan()));
  });
});
