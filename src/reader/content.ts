/**
 * File content of an open archive: the one place that turns (file entry, offset, length) into bytes.
 * Every way of reading — `read`, the synchronous `readCachedInto`, `readInto`, prefetch, `pieces()`
 * and the streams built on it — goes through one *plan*: which chunk references (and holes) cover the
 * range, checked once (docs/format.md, sections 7.1 and 10).
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
 * Bytes handed out are read-only views into cached chunks or into buffers of their own.
 */
import { INITIAL_READAHEAD, MAX_READAHEAD, type Readahead } from '../../cache/readahead.js';
import type { Storage } from '../../storage/types.js';
import { chunkIdFunction, decodeChunk } from '../format/chunk.js';
import { HexzError, throwIfAborted, type ErrorContext } from '../errors.js';
import { toHex } from '../format/bytes.js';
import type { ChunkIndexPage, ChunkRef } from '../format/chunk-index.js';
import { ContentDigest } from '../format/content-digest.js';
import type { FileEntry } from '../format/file-table.js';
import type { OpenedArchive } from './opened.js';
import type { IndexPages } from './pages.js';

/** A shared page of zeros, for holes (read-only!). */
const ZEROS = Buffer.alloc(1024 * 1024);

/** A piece of file content: `bytes` at file offset `offset`; `hole` when they are a view of zeros. */
export interface ContentPiece {
  offset: number;
  bytes: Uint8Array;
  hole: boolean;
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

/** Plaintext of a hole: a view of the shared zero page when it fits (read-only!). */
function zeros(n: number): Uint8Array {
  return n <= ZEROS.byteLength ? ZEROS.subarray(0, n) : Buffer.alloc(n);
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

export class ArchiveContent {
  private readonly idOf: (plain: Uint8Array) => Uint8Array;
  private closed = false;

  constructor(
    private readonly a: OpenedArchive,
    private readonly pages: IndexPages,
  ) {
    this.idOf = chunkIdFunction(a.keys);
  }

  /** Stop background work (prefetches look at this before each load). */
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

  private ownerStorage(owner: number): Storage {
    if (owner === 0) return this.a.storage;
    const s = this.a.bases[owner - 1];
    if (!s) throw new HexzError('BASE_MISSING', `base ${owner} of ${this.a.url} is not open`, this.a.ctx());
    return s;
  }

  private chunkKey(ref: ChunkRef): string {
    return `c${toHex(ref.id)}`;
  }

  /** A stored chunk's bytes as stored (compressed, sealed) and its verified plaintext (flatten copies the former). */
  async fetchEncoded(ref: ChunkRef): Promise<{ stored: Uint8Array; plain: Uint8Array }> {
    const storage = this.ownerStorage(ref.owner);
    const stored = await storage.read(ref.offset, ref.stored);
    // decodeChunk checks the id and that the plaintext is exactly ref.raw bytes.
    let plain = decodeChunk(stored, ref, this.idOf, this.a.keys, { archive: storage.url, offset: ref.offset });
    // A raw (codec none) chunk is a view into the read it came from, which coalescing may have made
    // 16 MiB long: copy it, or caching the chunk would keep the whole read alive outside the budget.
    if (plain.byteLength !== plain.buffer.byteLength) plain = Buffer.from(plain);
    return { stored, plain };
  }

  /** Read and verify a chunk from storage, bypassing the cache (verify). */
  async fetchChunk(ref: ChunkRef): Promise<Uint8Array> {
    if (ref.hole) return zeros(ref.raw);
    return (await this.fetchEncoded(ref)).plain;
  }

  /**
   * The plaintext of a chunk, through the cache (verified once when it enters). The cache is keyed by
   * chunk id only, so an entry may have come through another reference (of this archive or another):
   * the id proves the content, but the length must also be the one *this* reference covers.
   */
  async loadChunk(ref: ChunkRef): Promise<Uint8Array> {
    if (ref.hole) return zeros(ref.raw);
    const plain = await this.a.cache.get(this.chunkKey(ref), () => this.fetchChunk(ref), (b) => b.byteLength);
    checkChunkLength(ref, plain, this.a.ctx());
    return plain;
  }

  /** The cached plaintext of a chunk (checked), a view of zeros for a hole, or undefined. Never loads. */
  private cachedChunk(ref: ChunkRef, e: FileEntry): Uint8Array | undefined {
    if (ref.hole) return ZEROS;
    const plain = this.a.cache.getIfCached<Uint8Array>(this.chunkKey(ref));
    if (plain) checkChunkLength(ref, plain, this.a.ctx({ path: e.path }));
    return plain;
  }

  // ---- reads --------------------------------------------------------------------------------------

  /** Copy what `plan` says from `chunks` (one per piece; undefined for holes) into `dst`. */
  private assemble(plan: PlannedPiece[], chunks: ReadonlyArray<Uint8Array | undefined>, dst: Uint8Array): void {
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i];
      const c = chunks[i];
      if (p.ref.hole || !c) dst.fill(0, p.at, p.at + p.to - p.from);
      else dst.set(c.subarray(p.from, p.to), p.at);
    }
  }

  /** The chunks of a plan, loaded through the cache (holes: undefined). */
  private loadAll(plan: PlannedPiece[], e: FileEntry): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(
      plan.map(async (p) => {
        if (p.ref.hole) return undefined;
        const c = await this.loadChunk(p.ref);
        checkChunkLength(p.ref, c, this.a.ctx({ path: e.path }));
        return c;
      }),
    );
  }

  /** Start prefetching what `readahead` says after a read of `[offset, offset + length)`. */
  private readAhead(e: FileEntry, offset: number, length: number, readahead: Readahead | undefined): void {
    const ahead = readahead?.observe(offset, length);
    if (ahead) this.prefetch(e, ahead.start, Math.min(ahead.end, e.size));
  }

  /**
   * `length` bytes of file `e` at `offset`: exactly that many, or a typed error. A range inside one
   * chunk is a read-only view of the cached chunk; others are assembled into a buffer of their own.
   */
  async read(e: FileEntry, offset: number, length: number, opts: ReadRangeOptions = {}): Promise<Uint8Array> {
    const plan = await this.plan(e, offset, length);
    if (length === 0) return new Uint8Array(0);
    const chunks = await this.loadAll(plan, e);
    throwIfAborted(opts.signal, this.a.ctx({ path: e.path }));
    this.readAhead(e, offset, length, opts.readahead);
    if (plan.length === 1) return plan[0].ref.hole ? zeros(length) : chunks[0]!.subarray(plan[0].from, plan[0].to);
    const out = Buffer.allocUnsafe(length);
    this.assemble(plan, chunks, out);
    return out;
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
    const chunks: Array<Uint8Array | undefined> = [];
    for (const p of plan) {
      const c = this.cachedChunk(p.ref, e);
      if (!c) return false;
      chunks.push(p.ref.hole ? undefined : c);
    }
    this.assemble(plan, chunks, dst);
    return true;
  }

  /**
   * Copy `n` bytes of file `e` at `offset` into `dst`, loading what is missing. Every chunk is loaded
   * and checked before the first byte is written; resolves false (nothing written) when `dst` was
   * detached meanwhile (a FUSE binding that gave up on a slow request).
   */
  async readInto(e: FileEntry, offset: number, n: number, dst: Uint8Array, opts: ReadRangeOptions = {}): Promise<boolean> {
    const plan = await this.plan(e, offset, n);
    const chunks = await this.loadAll(plan, e);
    throwIfAborted(opts.signal, this.a.ctx({ path: e.path }));
    if (dst.byteLength < n) return false;
    this.assemble(plan, chunks, dst);
    return true;
  }

  /**
   * Warm the cache for `[start, end)` of file `e` in the background, within the process-wide prefetch
   * allowance (it stops early when the allowance is used up); errors are left for real reads.
   */
  prefetch(e: FileEntry, start: number, end: number): void {
    if (end <= start) return;
    void (async () => {
      const plan = await this.plan(e, start, end - start);
      for (const { ref } of plan) {
        if (this.closed) return;
        if (ref.hole || this.a.cache.has(this.chunkKey(ref))) continue;
        if (!this.a.cache.tryReservePrefetch(ref.raw)) return;
        this.loadChunk(ref)
          .catch(() => {})
          .finally(() => this.a.cache.releasePrefetch(ref.raw));
      }
    })().catch(() => {});
  }

  /**
   * The content of file `e`'s range `[start, end)` as pieces in order: views of cached chunks, or
   * views of a shared zero page for holes (at most 1 MiB each, `hole: true`, so writers can leave them
   * sparse). Plans the range a window at a time and loads a window that grows from 1 MiB to 32 MiB
   * ahead of the consumer, within the process-wide prefetch allowance; stops loading when the consumer
   * stops iterating.
   */
  async *pieces(e: FileEntry, opts: { start?: number; end?: number; signal?: AbortSignal } = {}): AsyncGenerator<ContentPiece> {
    const first = opts.start ?? 0;
    const stop = opts.end ?? e.size;
    this.checkRange(e, first, stop - first);
    const queue: Array<{ piece: PlannedPiece; data?: Promise<Uint8Array> }> = [];
    let pending: PlannedPiece[] = []; // planned, not loading yet
    let planned = first; // file offset up to which the range is planned
    let queued = 0; // raw bytes loading or loaded in the queue
    let reserved = 0; // bytes of the cache's prefetch allowance held by this stream
    let window = INITIAL_READAHEAD;
    try {
      for (;;) {
        // Fill the window: the first piece in the queue is always allowed (progress is guaranteed);
        // more only within the process-wide prefetch allowance.
        while (queued < window) {
          if (pending.length === 0) {
            if (planned >= stop) break;
            const step = Math.min(stop - planned, window);
            pending = await this.plan(e, planned, step);
            planned += step;
          }
          const next = pending[0];
          if (!next.ref.hole && queue.length > 0) {
            if (!this.a.cache.tryReservePrefetch(next.ref.raw)) break;
            reserved += next.ref.raw;
          }
          pending.shift();
          // Holes need no load; a large one would otherwise allocate its whole size.
          const data = next.ref.hole ? undefined : this.loadChunk(next.ref);
          data?.catch(() => {}); // awaited below; this only silences rejections of abandoned loads
          queue.push({ piece: next, data });
          if (!next.ref.hole) queued += next.ref.raw;
        }
        const item = queue.shift();
        if (!item) return;
        const { ref, from, to } = item.piece;
        if (!ref.hole) queued -= ref.raw;
        const giveBack = Math.min(reserved, ref.hole ? 0 : ref.raw);
        reserved -= giveBack;
        this.a.cache.releasePrefetch(giveBack);
        // The plan's `at` is relative to its own step; the file offset comes from the reference.
        const offset = ref.logical + from - e.logical;
        if (ref.hole) {
          for (let pos = from; pos < to; pos += ZEROS.byteLength) {
            throwIfAborted(opts.signal, this.a.ctx({ path: e.path }));
            yield { offset: offset + (pos - from), bytes: ZEROS.subarray(0, Math.min(ZEROS.byteLength, to - pos)), hole: true };
          }
        } else {
          const bytes = await item.data!;
          checkChunkLength(ref, bytes, this.a.ctx({ path: e.path }));
          throwIfAborted(opts.signal, this.a.ctx({ path: e.path }));
          yield { offset, bytes: bytes.subarray(from, to), hole: false };
        }
        window = Math.min(MAX_READAHEAD, window * 2);
      }
    } finally {
      this.a.cache.releasePrefetch(reserved);
    }
  }

  // ---- digests ------------------------------------------------------------------------------------

  /**
   * The content digest of file `e` (src/format/content-digest.ts): equal exactly when the bytes are,
   * the same in every version that shares the chunks, computed from the chunk index alone.
   */
  async contentDigest(e: FileEntry): Promise<Uint8Array> {
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
