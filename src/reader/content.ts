/**
 * File content of an open archive: the one place that turns (file entry, offset, length) into bytes.
 * Every way of reading goes through one *plan*: which chunk references (and holes) cover the range,
 * checked once (docs/format.md, sections 7.1 and 10). Two engines execute plans:
 *
 * - random reads (`read`, `readInto`, `readCachedInto`): the plan's chunks through the cache, one
 *   lease each, copied into the caller's buffer;
 * - bulk reads (`leasedPieces`, and `pieces`, streams and prefetch built on it): the plan grouped into
 *   extents (./extents.ts) — one storage read and one decode job per run of chunks stored together,
 *   decoded on every core (./decode-pool.ts) straight into the cache's arena — handed out as leases on
 *   views, several extents in flight.
 *
 * What a plan checks, cheaply, as it reads the references it needs anyway:
 * - the entry's logical range lies inside the chunk index;
 * - the references cover the requested bytes exactly, each starting where the previous one ended;
 * - every reference used is one of the entry's own (its index lies in `[firstRef, firstRef + refCount)`),
 *   the entry's first reference starts at the entry's first byte and its last ends at its last byte
 *   (chunks never span two files);
 * - a chunk is exactly as long as the reference using it says (the cache is keyed by id only).
 * Anything else is `CORRUPT`, and no byte of a refused read is handed out.
 *
 * This file is over 400 lines because the two engines share the plan, the chunk loads and their
 * checks; splitting them would put those in a third module every reader path has to know.
 */
import type { ChunkLease, ExtentSpace } from '../../cache/block-cache.js';
import type { Readahead } from '../../cache/readahead.js';
import { readInto, type Storage } from '../../storage/types.js';
import { chunkIdFunction, decodeChunk } from '../format/chunk.js';
import { HexzError, throwIfAborted, type ErrorContext } from '../errors.js';
import { toHex } from '../format/bytes.js';
import type { ChunkIndexPage, ChunkRef } from '../format/chunk-index.js';
import { ContentDigest } from '../format/content-digest.js';
import type { FileEntry } from '../format/file-table.js';
import { decodeChunkInto } from './decode.js';
import { sharedDecodePool, type ExtentChunk } from './decode-pool.js';
import { DEFAULT_EXTENT_LIMITS, groupExtents, type ExtentLimits, type ReadUnit } from './extents.js';
import type { OpenedArchive } from './opened.js';
import type { BaseLease } from './bases.js';
import type { IndexPages } from './pages.js';

/** A shared page of zeros, for holes (read-only!). */
const ZEROS = Buffer.alloc(1024 * 1024);
/** Raw bytes a bulk reader plans at a time (a few extents; the index pages it needs are loaded together). */
const PLAN_WINDOW = 8 * 1024 * 1024;
/** Extents smaller than this decode on the reading thread: a message each way costs more than decoding them. */
const MIN_POOLED_EXTENT = 256 * 1024;
/** Raw bytes of extents one bulk reader keeps in flight beyond the first: enough to keep every decode thread and the storage busy. */
const MIN_INFLIGHT_BYTES = 16 * 1024 * 1024;

const NOOP = () => {};

/** A piece of file content: `bytes` at file offset `offset`; `hole` when they are a view of zeros. */
export interface ContentPiece {
  offset: number;
  bytes: Uint8Array;
  hole: boolean;
}

/** A piece whose bytes are a view into cache memory, valid until `release()` (call it exactly once). */
export interface LeasedPiece extends ContentPiece {
  /** Index of the span (of the spans given to `leasedPieces`) it belongs to. */
  span: number;
  release(): void;
}

/** Bytes `[start, end)` of a regular file, one of the spans a bulk read covers in order. */
export interface ReadSpan {
  entry: FileEntry;
  start: number;
  end: number;
}

export interface BulkReadOptions {
  signal?: AbortSignal;
  /**
   * A one-pass reader (cat, extract, verify): its chunks go to cold cache segments, evicted before
   * anything else, so a pass over a huge file does not flush what other readers use.
   */
  cold?: boolean;
}

export interface ReadRangeOptions {
  signal?: AbortSignal;
  /** Per-handle sequential detector: when given, sequential reads prefetch ahead. */
  readahead?: Readahead;
}

/** One step of a plan: bytes `[from, to)` of chunk `ref`, which land at `at` in the output. */
export interface PlannedPiece {
  ref: ChunkRef;
  from: number;
  to: number;
  at: number;
}

interface SpanSlice extends PlannedPiece {
  span: number;
}

/** A chunk's plaintext must be exactly as long as the reference using it says. */
function checkChunkLength(ref: ChunkRef, plain: Uint8Array, ctx: ErrorContext): void {
  if (!ref.hole && plain.byteLength !== ref.raw) {
    throw new HexzError('CORRUPT', `corrupt chunk index: chunk ${toHex(ref.id).slice(0, 16)}… is ${plain.byteLength} bytes, but the reference at logical offset ${ref.logical} says ${ref.raw}`, {
      ...ctx,
      structure: 'chunk index',
      chunk: toHex(ref.id),
      offset: ref.logical,
    });
  }
}

/** The plaintext of a hole of `n` bytes as a lease (a view of the shared zero page when it fits). */
function zeroLease(n: number): ChunkLease {
  return { bytes: n <= ZEROS.byteLength ? ZEROS.subarray(0, n) : Buffer.alloc(n), release: NOOP };
}

export class ArchiveContent {
  private readonly idOf: (plain: Uint8Array) => Uint8Array;
  private closed = false;

  constructor(
    private readonly a: OpenedArchive,
    private readonly pages: IndexPages,
  ) {
    this.idOf = chunkIdFunction(a.keys);
  }

  /** Stop background work (prefetches look at this before each step). */
  close(): void {
    this.closed = true;
  }

  // ---- planning -----------------------------------------------------------------------------------

  /** `OUT_OF_RANGE` unless `[offset, offset + length)` lies inside the file. */
  checkRange(e: FileEntry, offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > e.size) {
      throw new HexzError('OUT_OF_RANGE', `range ${offset}+${length} is outside ${e.path} (${e.size} bytes)`, this.a.ctx({ path: e.path, offset, length, size: e.size }));
    }
  }

  private corrupt(e: FileEntry, what: string): HexzError {
    return new HexzError('CORRUPT', `corrupt chunk index: ${what} (${e.path})`, this.a.ctx({ path: e.path, structure: 'chunk index' }));
  }

  /**
   * The plan for bytes `[offset, offset + length)` of file `e` from the given chunk-index pages
   * (`page(i)` gives page `i`, or undefined when it is not at hand: then the plan is undefined too).
   * Checks everything the module comment lists except chunk lengths (those need the chunks).
   */
  private collect(e: FileEntry, offset: number, length: number, page: (i: number) => ChunkIndexPage | undefined): PlannedPiece[] | undefined {
    const out: PlannedPiece[] = [];
    if (length === 0) return out;
    const start = e.logical + offset;
    const end = start + length;
    const fileEnd = e.logical + e.size;
    if (fileEnd > this.a.root.logicalSize) throw this.corrupt(e, `the file's bytes ${e.logical}..${fileEnd} lie past the end of the chunk index (${this.a.root.logicalSize})`);
    const span = this.pages.chunkPagesFor(start, end);
    if (!span) throw this.corrupt(e, `no references cover bytes ${offset}..${offset + length}`);
    let covered = start;
    for (let pi = span[0]; pi <= span[1] && covered < end; pi++) {
      const p = page(pi);
      if (!p) return undefined;
      const firstRef = this.pages.firstRefOf(pi);
      for (let i = p.firstLogical <= covered ? p.find(covered) : 0; i < p.count && covered < end; i++) {
        const ref = p.ref(i);
        if (ref.logical > covered || ref.logical + ref.raw <= covered) throw this.corrupt(e, `the references do not cover bytes ${covered - e.logical}..${offset + length}`);
        const index = firstRef + i;
        if (index < e.firstRef || index >= e.firstRef + e.refCount) throw this.corrupt(e, `reference ${index} covers the file's bytes but is not one of its ${e.refCount} references from ${e.firstRef}`);
        if (index === e.firstRef && ref.logical !== e.logical) throw this.corrupt(e, `the file's first reference starts at logical ${ref.logical}, the file at ${e.logical}`);
        if (index === e.firstRef + e.refCount - 1 && ref.logical + ref.raw !== fileEnd) throw this.corrupt(e, `the file's last reference ends at logical ${ref.logical + ref.raw}, the file at ${fileEnd}`);
        const from = covered - ref.logical;
        const to = Math.min(end, ref.logical + ref.raw) - ref.logical;
        out.push({ ref, from, to, at: covered - start });
        covered = ref.logical + to;
      }
    }
    if (covered !== end) throw this.corrupt(e, `the references do not cover bytes ${covered - e.logical}..${offset + length}`);
    return out;
  }

  /** The plan of a range whose index pages are all cached, or undefined (nothing is loaded). */
  planCached(e: FileEntry, offset: number, length: number): PlannedPiece[] | undefined {
    return this.collect(e, offset, length, (i) => this.pages.cachedChunkPage(i));
  }

  /** The plan of a range, loading the index pages it needs (all at once: they are coalesced). */
  async plan(e: FileEntry, offset: number, length: number): Promise<PlannedPiece[]> {
    this.checkRange(e, offset, length);
    const span = length > 0 ? this.pages.chunkPagesFor(e.logical + offset, e.logical + offset + length) : undefined;
    const loaded: ChunkIndexPage[] = [];
    if (span) for (const p of await Promise.all(range(span[0], span[1]).map((i) => this.pages.chunkPage(i)))) loaded.push(p);
    return this.collect(e, offset, length, (i) => loaded[i - span![0]])!;
  }

  // ---- chunks -------------------------------------------------------------------------------------

  /** Run `fn` on the storage holding chunks of `owner` (0: this archive; a base is opened on first use). */
  private withStorage<T>(owner: number, fn: (storage: Storage) => Promise<T>): Promise<T> {
    return owner === 0 ? fn(this.a.storage) : this.a.bases.use(owner, fn);
  }

  /** A stored chunk's bytes as stored (compressed, sealed) and its verified plaintext (flatten copies the former). */
  async fetchEncoded(ref: ChunkRef): Promise<{ stored: Uint8Array; plain: Uint8Array }> {
    return this.withStorage(ref.owner, async (storage) => {
      const stored = await storage.read(ref.offset, ref.stored);
      // decodeChunk checks the id and that the plaintext is exactly ref.raw bytes.
      const plain = decodeChunk(stored, ref, this.idOf, this.a.keys, { archive: storage.url, offset: ref.offset });
      return { stored, plain };
    });
  }

  /** Read and verify a chunk from storage, bypassing the cache (verify). */
  async fetchChunk(ref: ChunkRef): Promise<Uint8Array> {
    if (ref.hole) return Buffer.alloc(ref.raw);
    return (await this.fetchEncoded(ref)).plain;
  }

  /** Read chunk `ref`'s stored bytes and decode them into `dst` (exactly its raw length), verified. */
  private loadInto(ref: ChunkRef, dst: Uint8Array): Promise<void> {
    // This archive's chunks (the random-read hot path) go straight to its storage: no lease, no closure.
    if (ref.owner === 0) return this.loadFrom(this.a.storage, ref, dst);
    return this.a.bases.use(ref.owner, (storage) => this.loadFrom(storage, ref, dst));
  }

  private async loadFrom(storage: Storage, ref: ChunkRef, dst: Uint8Array): Promise<void> {
    const stored = await storage.read(ref.offset, ref.stored);
    decodeChunkInto(stored, ref, dst, this.idOf, this.a.keys, { archive: storage.url, offset: ref.offset });
  }

  /**
   * A lease on the plaintext of chunk `ref`, through the cache (verified once when it enters). The
   * cache is keyed by chunk id, so an entry may have come through another reference (of this archive
   * or another): the id proves the content, but the length must also be the one *this* reference says.
   */
  async chunkLease(ref: ChunkRef, opts: { cold?: boolean; path?: string } = {}): Promise<ChunkLease> {
    if (ref.hole) return zeroLease(ref.raw);
    const lease = await this.a.cache.chunk(ref.id, this.a.chunkTag, ref.raw, (dst) => this.loadInto(ref, dst), { cold: opts.cold });
    try {
      checkChunkLength(ref, lease.bytes, this.a.ctx({ path: opts.path }));
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  /** The plaintext of a chunk, through the cache, as bytes of its own (verify, diff, flatten). */
  async loadChunk(ref: ChunkRef): Promise<Uint8Array> {
    const lease = await this.chunkLease(ref);
    try {
      return Buffer.from(lease.bytes); // deliberate copy: the lease's view is only valid until release
    } finally {
      lease.release();
    }
  }

  /** A lease on a cached chunk (checked), a zero view for a hole, or undefined. Never loads. */
  private cachedLease(ref: ChunkRef, e: FileEntry): ChunkLease | undefined {
    if (ref.hole) return zeroLease(ref.raw);
    const lease = this.a.cache.cachedChunk(ref.id, this.a.chunkTag);
    if (!lease) return undefined;
    try {
      checkChunkLength(ref, lease.bytes, this.a.ctx({ path: e.path }));
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  // ---- random reads -------------------------------------------------------------------------------

  /** Copy what `plan` says from the chunk leases (one per piece) into `dst`. */
  private assemble(plan: PlannedPiece[], leases: readonly ChunkLease[], dst: Uint8Array): void {
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i];
      if (p.ref.hole) dst.fill(0, p.at, p.at + p.to - p.from);
      else dst.set(leases[i].bytes.subarray(p.from, p.to), p.at);
    }
  }

  /** Leases on every chunk of a plan (released again if one fails). */
  private async leaseAll(plan: PlannedPiece[], e: FileEntry): Promise<ChunkLease[]> {
    const got = await Promise.allSettled(plan.map((p) => this.chunkLease(p.ref, { path: e.path })));
    const failed = got.find((g) => g.status === 'rejected');
    if (failed) {
      for (const g of got) if (g.status === 'fulfilled') g.value.release();
      throw (failed as PromiseRejectedResult).reason;
    }
    return got.map((g) => (g as PromiseFulfilledResult<ChunkLease>).value);
  }

  /** Start prefetching what `readahead` says after a read of `[offset, offset + length)`. */
  private readAhead(e: FileEntry, offset: number, length: number, readahead: Readahead | undefined): void {
    const ahead = readahead?.observe(offset, length);
    if (ahead) this.prefetch(e, ahead.start, Math.min(ahead.end, e.size));
  }

  /** `length` bytes of file `e` at `offset`, in a buffer of their own: exactly that many, or a typed error. */
  async read(e: FileEntry, offset: number, length: number, opts: ReadRangeOptions = {}): Promise<Uint8Array> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(e, offset, length, out, opts);
    return out;
  }

  /**
   * Views of bytes `[offset, offset + n)` of file `e` straight from the cache, synchronously, when the
   * index pages and every chunk are cached (a warm gateway range: no promise, no copy); undefined when
   * something must be loaded (nothing is held then). The views stay valid until `release()`.
   */
  cachedViews(e: FileEntry, offset: number, n: number): { views: Uint8Array[]; release(): void } | undefined {
    this.checkRange(e, offset, n);
    const plan = this.planCached(e, offset, n);
    if (!plan) return undefined;
    const leases: ChunkLease[] = [];
    const release = () => {
      for (const l of leases) l.release();
      leases.length = 0;
    };
    const views: Uint8Array[] = [];
    for (const p of plan) {
      let lease: ChunkLease | undefined;
      try {
        lease = this.cachedLease(p.ref, e);
      } catch (err) {
        release();
        throw err;
      }
      if (!lease) {
        release();
        return undefined;
      }
      leases.push(lease);
      views.push(lease.bytes.subarray(p.from, p.to));
    }
    return { views, release };
  }

  /**
   * Copy `n` bytes of file `e` at `offset` into `dst` synchronously, straight from the cache: true when
   * the index pages and every chunk were cached (most FUSE reads are answered this way, without a
   * promise), false when something must be loaded (nothing was written). Same checks as every read.
   */
  readCachedInto(e: FileEntry, offset: number, n: number, dst: Uint8Array): boolean {
    this.checkRange(e, offset, n);
    const plan = this.planCached(e, offset, n);
    if (!plan) return false;
    const leases: ChunkLease[] = [];
    try {
      for (const p of plan) {
        const lease = this.cachedLease(p.ref, e);
        if (!lease) return false;
        leases.push(lease);
      }
      this.assemble(plan, leases, dst);
      return true;
    } finally {
      for (const l of leases) l.release();
    }
  }

  /**
   * Copy `n` bytes of file `e` at `offset` into `dst`, loading what is missing. Every chunk is loaded
   * and checked before the first byte is written; resolves false (nothing written) when `dst` was
   * detached meanwhile (a FUSE binding that gave up on a slow request).
   */
  async readInto(e: FileEntry, offset: number, n: number, dst: Uint8Array, opts: ReadRangeOptions = {}): Promise<boolean> {
    const plan = await this.plan(e, offset, n);
    if (plan.length > 1) await this.loadExtents(e, plan);
    const leases = await this.leaseAll(plan, e);
    try {
      throwIfAborted(opts.signal, this.a.ctx({ path: e.path }));
      this.readAhead(e, offset, n, opts.readahead);
      if (dst.byteLength < n) return false;
      this.assemble(plan, leases, dst);
      return true;
    } finally {
      for (const l of leases) l.release();
    }
  }

  /**
   * Extent limits for reads whose chunks should stay cached: an extent must fit in one segment of the
   * cache's arena (1–4 MiB, smaller for small budgets), or it is decoded into memory of its own, never
   * indexed, and a prefetch or a miss would be read and decoded again by the reader that wanted it.
   */
  private cachedExtentLimits(): ExtentLimits {
    const segment = this.a.cache.arena.segmentBytes;
    return segment >= DEFAULT_EXTENT_LIMITS.maxRaw ? DEFAULT_EXTENT_LIMITS : { ...DEFAULT_EXTENT_LIMITS, maxRaw: segment };
  }

  /**
   * Load the chunks of `plan` that are not cached (nor being loaded) in extents: a FUSE read of 1 MiB
   * that misses is one storage read and one decode job per run of chunks stored together, not one
   * of each per chunk. Chunks of single-chunk runs are left to the chunk path.
   */
  private async loadExtents(e: FileEntry, plan: readonly PlannedPiece[]): Promise<void> {
    const slices: SpanSlice[] = plan.map((p) => ({ ...p, span: 0 }));
    const spans = [{ entry: e, start: 0, end: e.size }];
    const jobs: Array<Promise<void>> = [];
    for (const unit of groupExtents(slices, (ref) => this.a.cache.hasChunk(ref.id, this.a.chunkTag), this.cachedExtentLimits())) {
      if (unit.kind !== 'extent' || unit.slices.length < 2) continue;
      jobs.push(
        this.decodeExtent(unit, spans, false).then((pieces) => {
          for (const p of pieces) p.release();
        }),
      );
    }
    if (jobs.length > 0) await Promise.all(jobs);
  }

  // ---- bulk reads ---------------------------------------------------------------------------------

  /**
   * Warm the cache for `[start, end)` of file `e` in the background, in extents, within the
   * process-wide prefetch allowance (it stops early when the allowance is used up); errors are left
   * for real reads.
   */
  prefetch(e: FileEntry, start: number, end: number): void {
    if (end <= start || this.closed) return;
    void (async () => {
      const plan = await this.plan(e, start, end - start);
      const slices: SpanSlice[] = plan.map((p) => ({ ...p, span: 0 }));
      for (const unit of groupExtents(slices, (ref) => this.a.cache.hasChunk(ref.id, this.a.chunkTag), this.cachedExtentLimits())) {
        if (this.closed) return;
        if (unit.kind !== 'extent') continue;
        if (!this.a.cache.tryReservePrefetch(unit.raw)) return;
        this.decodeExtent(unit, [{ entry: e, start, end }], false)
          .then((pieces) => {
            for (const p of pieces) p.release();
          })
          .catch(() => {})
          .finally(() => this.a.cache.releasePrefetch(unit.raw));
      }
    })().catch(() => {});
  }

  /**
   * Read and decode one extent (one storage read, one decode job) into cache space, index its
   * chunks, and return its pieces: one lease per run of slices of one span.
   */
  private async decodeExtent(unit: Extract<ReadUnit<SpanSlice>, { kind: 'extent' }>, spans: readonly ReadSpan[], cold: boolean): Promise<LeasedPiece[]> {
    const n = unit.slices.length;
    const space: ExtentSpace | undefined = this.a.cache.reserveExtent(unit.raw, n, cold);
    const pool = this.a.decodeThreads > 0 && unit.raw >= MIN_POOLED_EXTENT ? sharedDecodePool(this.a.decodeThreads) : undefined;
    // Without cache space (every segment pinned): decode into memory of this read's own.
    const own = space ? undefined : pool ? new SharedArrayBuffer(unit.raw) : undefined;
    const out = space ? space.bytes : own ? new Uint8Array(own) : Buffer.allocUnsafe(unit.raw);
    let stored: Uint8Array | undefined;
    let base: BaseLease | undefined;
    const chunks: ExtentChunk[] = [];
    let rawAt = 0;
    for (const s of unit.slices) {
      chunks.push({ id: s.ref.id, codec: s.ref.codec, storedAt: s.ref.offset - unit.offset, storedLength: s.ref.stored, rawAt, rawLength: s.ref.raw, offset: s.ref.offset });
      // Claimed before the read: a reader that asks for one of these chunks meanwhile (a FUSE read
      // landing inside a prefetch) waits for this extent instead of loading the chunk a second time.
      space?.claim(s.ref.id, this.a.chunkTag, rawAt, s.ref.raw);
      rawAt += s.ref.raw;
    }
    try {
      if (unit.owner !== 0) base = await this.a.bases.acquire(unit.owner);
      const storage = base ? base.storage : this.a.storage;
      // Stored bytes go into a pooled shared buffer (a positional read straight into it for local
      // files), where a decode worker reads them: no allocation or copy per extent.
      stored = await this.a.cache.takeIoBuffer(unit.length);
      await readInto(storage, unit.offset, stored);
      const ctx = { archive: storage.url };
      if (pool?.usable) {
        await pool.decode(stored, chunks, space ? { buffer: this.a.cache.arena.handle.data, offset: space.arenaOffset } : { buffer: own!, offset: 0 }, this.a.keys, ctx);
      } else {
        for (const c of chunks) {
          decodeChunkInto(stored.subarray(c.storedAt, c.storedAt + c.storedLength), c, out.subarray(c.rawAt, c.rawAt + c.rawLength), this.idOf, this.a.keys, { ...ctx, offset: c.offset });
        }
      }
      space?.publish();
      // Pieces: consecutive slices of one span are adjacent in `out` (whole chunks between them).
      const pieces: LeasedPiece[] = [];
      for (let i = 0; i < n; ) {
        const first = unit.slices[i];
        let j = i;
        while (j + 1 < n && unit.slices[j + 1].span === first.span && unit.slices[j].to === unit.slices[j].ref.raw && unit.slices[j + 1].from === 0 && unit.slices[j + 1].ref.logical === unit.slices[j].ref.logical + unit.slices[j].ref.raw) j++;
        const start = chunks[i].rawAt + first.from;
        const end = chunks[j].rawAt + unit.slices[j].to;
        const entry = spans[first.span].entry;
        const lease = space ? space.lease(start, end - start) : { bytes: out.subarray(start, end), release: NOOP };
        pieces.push({ span: first.span, offset: first.ref.logical + first.from - entry.logical, bytes: lease.bytes, hole: false, release: lease.release });
        i = j + 1;
      }
      return pieces;
    } finally {
      base?.release();
      if (stored) this.a.cache.returnIoBuffer(stored);
      space?.release(); // abandons the claims of a failed extent
    }
  }

  /** The pieces of a unit: zeros, a cached chunk's lease, or a decoded extent. */
  private async unitPieces(unit: ReadUnit<SpanSlice>, spans: readonly ReadSpan[], cold: boolean): Promise<LeasedPiece[]> {
    if (unit.kind === 'extent') return this.decodeExtent(unit, spans, cold);
    const { ref, from, to, span } = unit.slice;
    const entry = spans[span].entry;
    const offset = ref.logical + from - entry.logical;
    if (unit.kind === 'hole') {
      const out: LeasedPiece[] = [];
      for (let pos = from; pos < to; pos += ZEROS.byteLength) out.push({ span, offset: offset + (pos - from), bytes: ZEROS.subarray(0, Math.min(ZEROS.byteLength, to - pos)), hole: true, release: NOOP });
      return out;
    }
    const lease = this.cachedLease(ref, entry) ?? (await this.chunkLease(ref, { cold, path: entry.path }));
    return [{ span, offset, bytes: lease.bytes.subarray(from, to), hole: false, release: lease.release }];
  }

  /**
   * The content of `spans` (byte ranges of regular files, in order) as leased pieces in order: views
   * into cache memory, valid until each piece's `release()`, which the consumer must call (a consumer
   * that stops early gets nothing more, and what was already loaded is released for it). Holes come
   * as views of a shared zero page (at most 1 MiB each, `hole: true`, so writers can leave them
   * sparse). Plans a few MiB at a time, groups chunks stored together into extents, and keeps several
   * extents in flight within the process-wide prefetch allowance.
   */
  async *leasedPieces(spans: readonly ReadSpan[], opts: BulkReadOptions = {}): AsyncGenerator<LeasedPiece> {
    for (const s of spans) this.checkRange(s.entry, s.start, s.end - s.start);
    const cold = opts.cold ?? false;
    const queue: Array<{ raw: number; reserved: boolean; result: Promise<LeasedPiece[]> }> = [];
    const isCached = (ref: ChunkRef) => this.a.cache.hasChunk(ref.id, this.a.chunkTag);
    const maxInflight = Math.max(MIN_INFLIGHT_BYTES, 4 * Math.max(1, this.a.decodeThreads) * 4 * 1024 * 1024);
    let units: Array<ReadUnit<SpanSlice>> = [];
    let spanIndex = 0;
    let pos = spans[0]?.start ?? 0;
    let inflight = 0;
    /** Plan the next window of spans into `units`; false when everything is planned. */
    const planMore = async (): Promise<boolean> => {
      const slices: SpanSlice[] = [];
      let raw = 0;
      while (spanIndex < spans.length && raw < PLAN_WINDOW) {
        const s = spans[spanIndex];
        if (pos >= s.end) {
          spanIndex++;
          pos = spans[spanIndex]?.start ?? 0;
          continue;
        }
        const step = Math.min(s.end - pos, PLAN_WINDOW - raw);
        for (const p of await this.plan(s.entry, pos, step)) slices.push({ ...p, span: spanIndex });
        pos += step;
        raw += step;
      }
      if (slices.length === 0) return false;
      units = groupExtents(slices, isCached, this.cachedExtentLimits());
      return true;
    };
    const unitRaw = (u: ReadUnit<SpanSlice>) => (u.kind === 'extent' ? u.raw : u.kind === 'cached' ? u.slice.ref.raw : 0);
    /** Start units while there is room: the head is always allowed, the rest within the allowance. */
    const fill = async () => {
      for (;;) {
        if (units.length === 0 && !(await planMore())) return;
        const u = units[0];
        const raw = unitRaw(u);
        const head = queue.length === 0;
        if (!head && (inflight + raw > maxInflight || (raw > 0 && !this.a.cache.tryReservePrefetch(raw)))) return;
        units.shift();
        const result = this.unitPieces(u, spans, cold);
        result.catch(() => {}); // awaited in order below; this only silences abandoned ones
        queue.push({ raw, reserved: !head && raw > 0, result });
        inflight += raw;
      }
    };
    let current: LeasedPiece[] = [];
    let next = 0;
    try {
      for (;;) {
        throwIfAborted(opts.signal, this.a.ctx());
        await fill();
        const item = queue.shift();
        if (!item) return;
        try {
          current = await item.result;
          next = 0;
        } finally {
          inflight -= item.raw;
          if (item.reserved) this.a.cache.releasePrefetch(item.raw);
        }
        while (next < current.length) {
          // From here the piece is the consumer's to release.
          yield current[next++];
          throwIfAborted(opts.signal, this.a.ctx());
        }
        current = [];
      }
    } finally {
      // The consumer stopped (or something failed): release what was loaded and not handed out.
      for (let k = next; k < current.length; k++) current[k].release();
      for (const item of queue) {
        if (item.reserved) this.a.cache.releasePrefetch(item.raw);
        item.result.then((ps) => ps.forEach((p) => p.release()), NOOP);
      }
    }
  }

  /**
   * The content of file `e`'s range `[start, end)` as pieces in order, each in a buffer of its own
   * (holes: views of a shared zero page, `hole: true`). Built on `leasedPieces`, copying each piece
   * once so a consumer may keep it.
   */
  async *pieces(e: FileEntry, opts: { start?: number; end?: number; signal?: AbortSignal; cold?: boolean } = {}): AsyncGenerator<ContentPiece> {
    const it = this.leasedPieces([{ entry: e, start: opts.start ?? 0, end: opts.end ?? e.size }], { signal: opts.signal, cold: opts.cold });
    for await (const p of it) {
      if (p.hole) {
        yield { offset: p.offset, bytes: p.bytes, hole: true };
        continue;
      }
      const bytes = Buffer.from(p.bytes); // deliberate copy: the consumer may keep it past release
      p.release();
      yield { offset: p.offset, bytes, hole: false };
    }
  }

  // ---- verification -------------------------------------------------------------------------------

  /**
   * Decode and verify stored chunks (verify: every distinct way a location is referenced), bypassing
   * the cache, in extents on the decode threads. Resolves with the chunks that failed, each with its
   * typed error (an extent that fails is decoded again chunk by chunk on this thread to name every bad
   * chunk of it, not only the first).
   */
  async verifyChunks(refs: readonly ChunkRef[]): Promise<Array<{ ref: ChunkRef; error: unknown }>> {
    const sorted = [...refs].filter((r) => !r.hole).sort((a, b) => a.owner - b.owner || a.offset - b.offset);
    const units = groupExtents(
      sorted.map((ref) => ({ ref, from: 0, to: ref.raw })),
      () => false,
    );
    const failed: Array<{ ref: ChunkRef; error: unknown }> = [];
    const pool = this.a.decodeThreads > 0 ? sharedDecodePool(this.a.decodeThreads) : undefined;
    const one = async (unit: (typeof units)[number]) => {
      if (unit.kind !== 'extent') return;
      let base: BaseLease | undefined;
      try {
        if (unit.owner !== 0) base = await this.a.bases.acquire(unit.owner);
      } catch (error) {
        for (const s of unit.slices) failed.push({ ref: s.ref, error });
        return;
      }
      const storage = base ? base.storage : this.a.storage;
      const input = await this.a.cache.takeIoBuffer(unit.length);
      // The plaintext only needs somewhere to land: cold cache space (evicted first, never indexed),
      // or memory of its own when the cache has none free.
      const space = this.a.cache.reserveExtent(unit.raw, unit.slices.length, true);
      const own = space ? undefined : new SharedArrayBuffer(unit.raw);
      const output = space ? space.bytes : new Uint8Array(own!);
      try {
        try {
          await readInto(storage, unit.offset, input);
        } catch (error) {
          for (const s of unit.slices) failed.push({ ref: s.ref, error });
          return;
        }
        const chunks: ExtentChunk[] = [];
        let rawAt = 0;
        for (const s of unit.slices) {
          chunks.push({ id: s.ref.id, codec: s.ref.codec, storedAt: s.ref.offset - unit.offset, storedLength: s.ref.stored, rawAt, rawLength: s.ref.raw, offset: s.ref.offset });
          rawAt += s.ref.raw;
        }
        const ctx = { archive: storage.url };
        if (pool?.usable) {
          try {
            await pool.decode(input, chunks, space ? { buffer: this.a.cache.arena.handle.data, offset: space.arenaOffset } : { buffer: own!, offset: 0 }, this.a.keys, ctx);
            return;
          } catch {
            // Find every bad chunk of the extent below.
          }
        }
        for (let i = 0; i < chunks.length; i++) {
          const c = chunks[i];
          try {
            decodeChunkInto(input.subarray(c.storedAt, c.storedAt + c.storedLength), c, output.subarray(c.rawAt, c.rawAt + c.rawLength), this.idOf, this.a.keys, { ...ctx, offset: c.offset });
          } catch (error) {
            failed.push({ ref: unit.slices[i].ref, error });
          }
        }
      } finally {
        base?.release();
        this.a.cache.returnIoBuffer(input);
        space?.release();
      }
    };
    // Two extents per decode thread in flight: the pool stays busy while the next ones are read.
    const width = 2 * Math.max(1, this.a.decodeThreads);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(width, units.length) }, async () => {
        while (next < units.length) await one(units[next++]);
      }),
    );
    return failed;
  }

  // ---- digests ------------------------------------------------------------------------------------

  /**
   * The content digest of file `e` (src/format/content-digest.ts): equal exactly when the bytes are,
   * the same in every version that shares the chunks, computed from the chunk index alone.
   */
  async contentDigest(e: FileEntry): Promise<Uint8Array> {
    if (e.digest) return e.digest; // recorded by the writer (version 2): no index page to read
    const d = new ContentDigest();
    for await (const r of this.pages.refsIn(e.logical, e.logical + e.size)) {
      if (r.hole) d.zero(r.raw);
      else d.chunk(r.id, r.raw);
    }
    return d.finish();
  }
}

/** The integers `[from, to]`. */
function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}
