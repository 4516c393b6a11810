/**
 * Chunk references and chunk-index pages (docs/format.md, section 7.1). A page body is an array of
 * fixed 64-byte references; `ChunkIndexPage` reads fields in place from the decompressed bytes, so a
 * cached page costs exactly its size and a lookup is a binary search without decoding anything.
 */
import { corrupt, type ErrorContext } from '../errors.js';
import { HASH_BYTES } from '../hash.js';
import { ByteWriter } from './bytes.js';
import { CHUNK_REF_SIZE, MAX_CHUNK_BYTES, MAX_HOLE_BYTES, MAX_REFS_PER_PAGE, MIN_REFS_PER_PAGE, REF_FLAG_HOLE, TARGET_PAGES_PER_TABLE } from './constants.js';

/** One chunk reference: where a run of logical bytes lives. */
export interface ChunkRef {
  /** BLAKE3 of the plaintext (keyed when encrypted); all zero for holes. */
  id: Uint8Array;
  /** Offset in the archive's logical space (all files concatenated in file-table order). */
  logical: number;
  /** Offset of the stored bytes in the owning archive. */
  offset: number;
  /** Stored (compressed, sealed) length. */
  stored: number;
  /** Plaintext length. */
  raw: number;
  /** 0 = this archive; k ≥ 1 = the k-th base entry of the root. */
  owner: number;
  codec: number;
  hole: boolean;
}

export const ZERO_ID = new Uint8Array(HASH_BYTES);

/** Append one reference to a page body. */
export function writeChunkRef(w: ByteWriter, ref: ChunkRef): void {
  w.bytes(ref.id).u64(ref.logical).u64(ref.offset).u32(ref.stored).u32(ref.raw);
  w.u16(ref.owner).u8(ref.codec).u8(ref.hole ? REF_FLAG_HOLE : 0).zeros(4);
}

/**
 * References per page for an archive expected to hold `expectedRefs` references (section 7): about
 * 4,096 pages per table, pages of 1,024 to 65,536 references.
 */
export function refsPerPage(expectedRefs: number): number {
  return Math.min(MAX_REFS_PER_PAGE, Math.max(MIN_REFS_PER_PAGE, Math.ceil(expectedRefs / TARGET_PAGES_PER_TABLE)));
}

/** A decoded (decompressed, verified) chunk-index page. */
export class ChunkIndexPage {
  readonly count: number;
  private readonly view: DataView;

  /**
   * Wrap and validate a page body. Validation is complete (contiguity, reserved bytes, flags, owner
   * range), so later accessors never see malformed data.
   */
  constructor(
    readonly body: Uint8Array,
    readonly firstLogical: number,
    expectedCount: number,
    baseCount: number,
    context: ErrorContext = {},
  ) {
    if (body.byteLength % CHUNK_REF_SIZE !== 0 || body.byteLength / CHUNK_REF_SIZE !== expectedCount) {
      throw corrupt('chunk-index page', `${body.byteLength} bytes do not hold ${expectedCount} references`, context);
    }
    this.count = expectedCount;
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    let logical = firstLogical;
    let maxOwner = 0;
    let maxOwnRaw = 0;
    let maxOwnEnd = 0;
    for (let i = 0; i < expectedCount; i++) {
      const at = i * CHUNK_REF_SIZE;
      const fail = (msg: string) => corrupt('chunk-index page', `reference ${i}: ${msg}`, context);
      if (this.u64(at + 32) !== logical) throw fail(`logical offset ${this.u64(at + 32)}, expected ${logical}`);
      const raw = this.view.getUint32(at + 52, true);
      if (raw === 0) throw fail('zero raw length');
      const owner = this.view.getUint16(at + 56, true);
      if (owner > baseCount) throw fail(`owner ${owner} but only ${baseCount} bases`);
      if (owner > maxOwner) maxOwner = owner;
      const codec = this.view.getUint8(at + 58);
      if (codec > 2) throw fail(`unknown codec ${codec}`);
      const flags = this.view.getUint8(at + 59);
      if (flags & ~REF_FLAG_HOLE) throw fail(`unknown flags ${flags}`);
      if (this.view.getUint32(at + 60, true) !== 0) throw fail('reserved bytes not zero');
      if (flags & REF_FLAG_HOLE) {
        if (this.view.getUint32(at + 48, true) !== 0 || owner !== 0 || codec !== 0 || this.u64(at + 40) !== 0) {
          throw fail('hole with a location');
        }
        if (raw > MAX_HOLE_BYTES) throw fail(`hole of ${raw} bytes exceeds 2^31`);
      } else {
        const stored = this.view.getUint32(at + 48, true);
        if (stored === 0) throw fail('stored chunk of zero length');
        // No writer makes chunks above the format's maximum; refusing them bounds what a hostile
        // archive can make a reader allocate.
        if (raw > MAX_CHUNK_BYTES || stored > MAX_CHUNK_BYTES + 64) throw fail(`chunk of ${raw} bytes exceeds the 16 MiB maximum`);
        if (owner === 0) {
          if (raw > maxOwnRaw) maxOwnRaw = raw;
          const end = this.u64(at + 40) + stored;
          if (end > maxOwnEnd) maxOwnEnd = end;
        }
      }
      logical += raw;
    }
    this.endLogical = logical;
    this.maxOwner = maxOwner;
    this.maxOwnRaw = maxOwnRaw;
    this.maxOwnEnd = maxOwnEnd;
  }

  /**
   * Largest raw length, and the end of the furthest stored bytes, of the chunks this archive stores
   * itself (owner 0): checked against the using archive's chunking maximum and body end.
   */
  readonly maxOwnRaw: number;
  readonly maxOwnEnd: number;

  /** Logical offset just past the page's last reference. */
  readonly endLogical: number;

  /**
   * Highest owner slot any reference names. Pages are cached by hash and may be shared between
   * archives, so a reader re-checks it against the base count of the archive using the page.
   */
  readonly maxOwner: number;

  private u64(at: number): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt('chunk-index page', 'u64 exceeds 2^53');
    return Number(v);
  }

  logicalAt(i: number): number {
    return this.u64(i * CHUNK_REF_SIZE + 32);
  }

  rawAt(i: number): number {
    return this.view.getUint32(i * CHUNK_REF_SIZE + 52, true);
  }

  /** Index of the reference containing logical offset `x` (the page must contain it). */
  find(x: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.logicalAt(mid) <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The i-th reference. `id` is a view into the page body (no copy). */
  ref(i: number): ChunkRef {
    const at = i * CHUNK_REF_SIZE;
    return {
      id: this.body.subarray(at, at + HASH_BYTES),
      logical: this.u64(at + 32),
      offset: this.u64(at + 40),
      stored: this.view.getUint32(at + 48, true),
      raw: this.view.getUint32(at + 52, true),
      owner: this.view.getUint16(at + 56, true),
      codec: this.view.getUint8(at + 58),
      hole: (this.view.getUint8(at + 59) & REF_FLAG_HOLE) !== 0,
    };
  }
}
