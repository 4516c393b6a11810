/**
 * Grouping a read into *extents*: runs of chunks whose stored bytes lie together in one archive, so a
 * bulk reader (cat, extract, verify, readahead) fetches each run with one storage read and decodes it
 * in one go into contiguous cache memory, instead of paying a request, a promise and an allocation
 * per chunk. A pure function with table tests (test/reader/extents.test.ts).
 *
 * A run breaks at a hole, at a chunk already cached (its bytes are used as they are), at a change of
 * owner archive, where the next chunk's bytes do not follow the previous ones (a deduplicated chunk
 * stored earlier; a forward gap of up to `maxGap` is read and skipped), and at the limits.
 */
import type { ChunkRef } from '../format/chunk-index.js';

/** Stored bytes one extent reads at most: 4 MiB amortises a request and a message, and stays cache-friendly. */
export const EXTENT_MAX_STORED = 4 * 1024 * 1024;
/** Plaintext one extent decodes at most: the cache arena's largest segment (cache/arena.ts). */
export const EXTENT_MAX_RAW = 4 * 1024 * 1024;
/** Chunks in one extent at most: bounds the message to a decode worker and the index entries of a segment. */
export const EXTENT_MAX_CHUNKS = 256;
/** Largest hole between two chunks' stored bytes still read through (one chunk: cheaper than another request). */
export const EXTENT_MAX_GAP = 64 * 1024;

export interface ExtentLimits {
  maxStored: number;
  maxRaw: number;
  maxChunks: number;
  maxGap: number;
}

export const DEFAULT_EXTENT_LIMITS: ExtentLimits = { maxStored: EXTENT_MAX_STORED, maxRaw: EXTENT_MAX_RAW, maxChunks: EXTENT_MAX_CHUNKS, maxGap: EXTENT_MAX_GAP };

/** Something to read: bytes `[from, to)` of chunk `ref`. */
export interface ChunkSlice {
  ref: ChunkRef;
  from: number;
  to: number;
}

export type ReadUnit<S extends ChunkSlice> =
  /** Zeros. */
  | { kind: 'hole'; slice: S }
  /** A chunk whose bytes are in the cache already. */
  | { kind: 'cached'; slice: S }
  /** Chunks to fetch with one read of `[offset, offset + length)` from owner `owner` and decode together. */
  | { kind: 'extent'; owner: number; offset: number; length: number; raw: number; slices: S[] };

/**
 * The units that read `slices` (in order, as planned). `cached(ref)` says whether a chunk is in the
 * cache now. A slice covering part of a chunk still decodes the whole chunk (that is what is stored).
 */
export function groupExtents<S extends ChunkSlice>(slices: readonly S[], cached: (ref: ChunkRef) => boolean, limits: ExtentLimits = DEFAULT_EXTENT_LIMITS): Array<ReadUnit<S>> {
  const units: Array<ReadUnit<S>> = [];
  let open: Extract<ReadUnit<S>, { kind: 'extent' }> | undefined;
  for (const slice of slices) {
    const r = slice.ref;
    if (r.hole) {
      open = undefined;
      units.push({ kind: 'hole', slice });
      continue;
    }
    if (cached(r)) {
      open = undefined;
      units.push({ kind: 'cached', slice });
      continue;
    }
    if (open) {
      const last = open.slices[open.slices.length - 1].ref;
      const end = open.offset + open.length;
      // A chunk stored earlier (deduplicated) or far ahead starts a new extent.
      const follows = r.owner === last.owner && r.offset >= end && r.offset - end <= limits.maxGap;
      const newEnd = r.offset + r.stored;
      if (follows && newEnd - open.offset <= limits.maxStored && open.raw + r.raw <= limits.maxRaw && open.slices.length < limits.maxChunks) {
        open.slices.push(slice);
        open.length = newEnd - open.offset;
        open.raw += r.raw;
        continue;
      }
    }
    open = { kind: 'extent', owner: r.owner, offset: r.offset, length: r.stored, raw: r.raw, slices: [slice] };
    units.push(open);
  }
  return units;
}
