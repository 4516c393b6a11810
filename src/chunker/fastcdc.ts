/**
 * Content-defined chunking: FastCDC with a 32-bit gear hash and normalized chunking, exactly as
 * specified in docs/format.md, section 8. Pure functions over byte arrays; no I/O.
 *
 * A 32-bit hash keeps the inner loop in small-integer arithmetic, which V8 compiles to plain machine
 * instructions (a 64-bit BigInt gear hash is ~20× slower in JavaScript).
 */
import { createHash } from 'node:crypto';
import { HexzError } from '../errors.js';
import { MAX_CHUNK_BYTES } from '../format/constants.js';

/** Chunking parameters recorded in every archive (docs/format.md, section 8). */
export interface ChunkingParams {
  /** 1 = gear32 FastCDC. */
  algorithm: 1;
  /** Normalization level 0–3: higher keeps sizes closer to the average. */
  normalization: number;
  min: number;
  avg: number;
  max: number;
  /** 8-byte gear seed, as 16 hex characters. */
  seed: string;
}

/** Defaults: 16/64/256 KiB as in casync and FastCDC's papers; level 2 normalization is FastCDC's recommendation. */
export const DEFAULT_CHUNKING: Readonly<ChunkingParams> = Object.freeze({
  algorithm: 1,
  normalization: 2,
  min: 16 * 1024,
  avg: 64 * 1024,
  max: 256 * 1024,
  seed: '0000000000000000',
});

/** Largest maximum chunk size the format allows (docs/format.md, section 8). */
export const MAX_CHUNK_LIMIT = MAX_CHUNK_BYTES;

/**
 * Parameters for an average size, keeping the default min:avg:max ratio of 1:4:16. Used by
 * `--chunk-size`.
 */
export function chunkingForAverage(avg: number, seed = DEFAULT_CHUNKING.seed): ChunkingParams {
  return validateChunking({ ...DEFAULT_CHUNKING, avg, min: Math.max(64, avg / 4), max: avg * 4, seed });
}

/** Check parameters; `INVALID_ARGUMENT` naming the bad one. */
export function validateChunking(p: ChunkingParams): ChunkingParams {
  const bad = (msg: string) => new HexzError('INVALID_ARGUMENT', `chunking parameters: ${msg}`);
  if (p.algorithm !== 1) throw bad(`unknown algorithm ${p.algorithm}`);
  if (!Number.isInteger(p.avg) || p.avg < 256 || (p.avg & (p.avg - 1)) !== 0) throw bad(`average ${p.avg} must be a power of two ≥ 256`);
  if (!Number.isInteger(p.min) || p.min < 64 || p.min > p.avg) throw bad(`minimum ${p.min} must be in [64, average]`);
  if (!Number.isInteger(p.max) || p.max < p.avg || p.max > MAX_CHUNK_LIMIT) throw bad(`maximum ${p.max} must be in [average, 16 MiB]`);
  if (!Number.isInteger(p.normalization) || p.normalization < 0 || p.normalization > 3) throw bad('normalization must be 0–3');
  if (!/^[0-9a-f]{16}$/.test(p.seed)) throw bad('seed must be 16 hex characters');
  const bits = Math.log2(p.avg);
  if (bits + p.normalization > 31 || bits - p.normalization < 1) throw bad('average and normalization give an impossible mask');
  return p;
}

/** The 256-entry gear table for a seed (docs/format.md, section 8). */
export function gearTable(seedHex: string): Uint32Array {
  const seed = Buffer.from(seedHex, 'hex');
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const d = createHash('sha256').update('hexz-gear-v1').update(seed).update(Uint8Array.of(i)).digest();
    table[i] = d.readUInt32LE(0);
  }
  return table;
}

/** A mask with the top `bits` bits of a 32-bit word set, as a signed int32 (JS bitwise domain). */
function topBits(bits: number): number {
  return bits >= 32 ? -1 : (~0 << (32 - bits)) | 0;
}

/** A prepared chunker: tables and masks computed once per parameter set. */
export interface Chunker {
  readonly params: ChunkingParams;
  /**
   * Length of a chunk that starts in a run of at least this many zero bytes: the scan is
   * deterministic, so such chunks can be cut without looking at the bytes (sparse files).
   */
  readonly zeroCut: number;
  /**
   * Length of the chunk that starts at `start` in `data[start..end)`, where `end` is the end of the
   * file's bytes known so far. `final` says whether `end` is the end of the file: if it is not and no
   * cut point is found before `end`, returns -1 (more bytes are needed).
   */
  cut(data: Uint8Array, start: number, end: number, final: boolean): number;
}

/** Prepare a chunker for the given parameters. */
export function createChunker(params: ChunkingParams = DEFAULT_CHUNKING): Chunker {
  validateChunking(params);
  const gear = new Int32Array(gearTable(params.seed).buffer);
  const bits = Math.log2(params.avg);
  const maskS = topBits(bits + params.normalization);
  const maskL = topBits(bits - params.normalization);
  const { min, avg, max } = params;

  // The scan proper: returns the cut length for data[start..start+limit), limit ≤ max. Unrolled by
  // four with absolute indices: ~2 GB/s instead of ~1.2 GB/s for the plain loop in V8, same cuts.
  const scan = (data: Uint8Array, start: number, limit: number): number => {
    if (limit <= min) return limit;
    const center = start + Math.min(avg, limit);
    const end = start + limit;
    let h = 0;
    let p = start + min;
    while (p + 4 <= center) {
      h = ((h << 1) + gear[data[p]]) | 0;
      if ((h & maskS) === 0) return p + 1 - start;
      h = ((h << 1) + gear[data[p + 1]]) | 0;
      if ((h & maskS) === 0) return p + 2 - start;
      h = ((h << 1) + gear[data[p + 2]]) | 0;
      if ((h & maskS) === 0) return p + 3 - start;
      h = ((h << 1) + gear[data[p + 3]]) | 0;
      p += 4;
      if ((h & maskS) === 0) return p - start;
    }
    while (p < center) {
      h = ((h << 1) + gear[data[p++]]) | 0;
      if ((h & maskS) === 0) return p - start;
    }
    while (p + 4 <= end) {
      h = ((h << 1) + gear[data[p]]) | 0;
      if ((h & maskL) === 0) return p + 1 - start;
      h = ((h << 1) + gear[data[p + 1]]) | 0;
      if ((h & maskL) === 0) return p + 2 - start;
      h = ((h << 1) + gear[data[p + 2]]) | 0;
      if ((h & maskL) === 0) return p + 3 - start;
      h = ((h << 1) + gear[data[p + 3]]) | 0;
      p += 4;
      if ((h & maskL) === 0) return p - start;
    }
    while (p < end) {
      h = ((h << 1) + gear[data[p++]]) | 0;
      if ((h & maskL) === 0) return p - start;
    }
    return limit;
  };

  // Where an all-zero run gets cut: the scan is deterministic, so compute it once. Long zero runs
  // (sparse files, disk images) are then cut with a memcmp instead of a byte loop, with results
  // identical to the scan.
  const zeros = new Uint8Array(max);
  const zeroCut = scan(zeros, 0, max);
  const zeroCheck = Buffer.from(zeros.buffer, 0, zeroCut);

  return {
    params,
    zeroCut,
    cut(data, start, end, final) {
      const available = end - start;
      if (available >= zeroCut) {
        const window = Buffer.from(data.buffer, data.byteOffset + start, zeroCut);
        if (window[0] === 0 && window.equals(zeroCheck)) return zeroCut;
      }
      if (available >= max) return scan(data, start, max);
      if (!final) {
        // Not enough bytes to be sure of a cut: a cut found early is still a cut (the scan never looks
        // past it), so try; -1 only when the scan ran into the end of what we have.
        const n = scan(data, start, available);
        return n < available ? n : -1;
      }
      return available === 0 ? 0 : scan(data, start, available);
    },
  };
}

/** Cut points (chunk end offsets) of a whole buffer: the pure, table-testable form. */
export function cutPoints(data: Uint8Array, params: ChunkingParams = DEFAULT_CHUNKING): number[] {
  const chunker = createChunker(params);
  const cuts: number[] = [];
  let start = 0;
  while (start < data.byteLength) {
    const n = chunker.cut(data, start, data.byteLength, true);
    start += n;
    cuts.push(start);
  }
  return cuts;
}
