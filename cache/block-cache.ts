/**
 * The process-wide block cache, within one byte budget: decoded chunks in the shared chunk arena
 * (./arena.ts: one budget for every thread of the process, zero-copy views), decoded index pages in
 * a small per-thread `lru-cache`. Both are keyed by content (chunk id, page hash), so every archive
 * and version in the process shares entries.
 *
 * - Concurrent loads of one chunk share one load: within a thread through a promise, across threads
 *   through the arena's loading slots.
 * - A failed load is never cached: the next request tries again.
 * - Loaders verify what they load (hash/id) before it enters the cache, so a hit is trusted and never
 *   re-verified.
 * - Chunk bytes are handed out as *leases*: a view of arena memory that stays valid until `release()`.
 *   Hold a lease only as long as the bytes are needed (a socket write, a copy into a FUSE buffer).
 */
import { LRUCache } from 'lru-cache';
import { ChunkArena, type ArenaHandle, type ArenaLocation } from './arena.js';
import { DEFAULT_CACHE_BYTES, IO_BUFFER_BYTES, MIN_CACHE_BYTES, prefetchBudgetFor, splitBudget } from './budget.js';

/** Per-entry bookkeeping overhead counted against the page cache budget (key, node, promise). */
const ENTRY_OVERHEAD = 256;
/** How long a thread waits for another thread's load of a chunk before looking again. */
const CROSS_THREAD_WAIT_MS = 200;

export interface CacheStats {
  hits: number;
  misses: number;
  /** Loads that joined a load already in flight (in this thread). */
  shared: number;
  /** Bytes loaded into the cache (misses). */
  loadedBytes: number;
  evictions: number;
  failures: number;
  /** Loads that were served uncached because the arena had no room (every segment pinned). */
  uncached: number;
  /** Current size and budget. */
  bytes: number;
  maxBytes: number;
  entries: number;
}

/** A view of cached chunk bytes, valid until `release()` (call it exactly once). */
export interface ChunkLease {
  readonly bytes: Uint8Array;
  release(): void;
}

/** Contiguous arena space for a decoded extent (many chunks): decode into `bytes`, then `index` each chunk. */
export interface ExtentSpace {
  readonly bytes: Uint8Array;
  /** Offset of `bytes` in the arena's data (where a decode worker writes). */
  readonly arenaOffset: number;
  /**
   * Claim the chunk that will be decoded at `[offset, offset + length)` of `bytes` (before reading
   * it): readers asking for (id, tag) meanwhile wait for this extent instead of loading it again.
   * A chunk present already is left alone (its bytes here are simply not indexed).
   */
  claim(id: Uint8Array, tag: number, offset: number, length: number): void;
  /** Every claimed chunk is decoded and verified: make them findable (one wake-up for all). */
  publish(): void;
  /** The extent failed: forget the claims (readers waiting on them load for themselves). */
  abandon(): void;
  /** One more lease on `[offset, offset + length)` of the space (each must be released). */
  lease(offset: number, length: number): ChunkLease;
  /** Give back the space's own pin (leases taken from it keep theirs). */
  release(): void;
}

interface PageEntry {
  value: unknown;
  size: number;
}

const NOOP = () => {};

export interface BlockCacheOptions {
  /** The budget of the whole cache (default DEFAULT_CACHE_BYTES). */
  maxBytes?: number;
  /** Attach to an arena made by another thread (its `arenaHandle`) instead of making one. */
  arena?: ArenaHandle;
  /**
   * Threads that share this budget, each with its own `BlockCache` over one arena (gateway workers):
   * the per-thread parts (index pages, I/O buffers) get a share each, so the whole stays one budget.
   */
  threads?: number;
}

export class BlockCache {
  readonly maxBytes: number;
  /** Process-wide allowance for prefetched bytes in flight (see `prefetchBudgetFor`). */
  readonly prefetchBudget: number;
  /** The chunk arena (shared with other threads through `arenaHandle`). */
  readonly arena: ChunkArena;
  private prefetching = 0;
  private readonly pages: LRUCache<string, PageEntry>;
  private readonly pageLoads = new Map<string, Promise<unknown>>();
  /** Chunk loads this thread has in flight, by cache key: resolve when published (or failed). */
  private readonly chunkLoads = new Map<string, Promise<void>>();
  /** Shared-memory buffers for stored bytes in flight, reused; at most `ioBuffersMax` exist. */
  private readonly ioFree: Uint8Array[] = [];
  private ioBuffers = 0;
  private readonly ioBuffersMax: number;
  private readonly ioWaiters: Array<() => void> = [];
  private readonly counters = { pageHits: 0, pageMisses: 0, shared: 0, pageLoadedBytes: 0, pageEvictions: 0, failures: 0 };

  constructor(opts: BlockCacheOptions = {}) {
    this.maxBytes = Math.max(MIN_CACHE_BYTES, opts.maxBytes ?? DEFAULT_CACHE_BYTES);
    this.prefetchBudget = prefetchBudgetFor(this.maxBytes);
    const { pageBytes, ioBuffers, arenaBytes } = splitBudget(this.maxBytes, Math.max(1, opts.threads ?? 1));
    this.ioBuffersMax = ioBuffers;
    this.arena = opts.arena ? ChunkArena.attach(opts.arena) : ChunkArena.create(arenaBytes);
    this.pages = new LRUCache<string, PageEntry>({
      maxSize: pageBytes,
      sizeCalculation: (e) => e.size,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.pageEvictions++;
      },
    });
  }

  /** What another thread needs to share this cache's chunks: `new BlockCache({ arena: handle })`. */
  get arenaHandle(): ArenaHandle {
    return this.arena.handle;
  }

  // ---- index pages --------------------------------------------------------------------------------

  /**
   * The page for `key`, loading it with `load` on a miss. `sizeOf` gives the bytes it holds. Pages
   * bigger than an eighth of the page budget are returned but not kept, so one huge page cannot flush
   * the others.
   */
  async getPage<T>(key: string, load: () => Promise<T>, sizeOf: (v: T) => number): Promise<T> {
    const hit = this.pages.get(key);
    if (hit) {
      this.counters.pageHits++;
      return hit.value as T;
    }
    const pending = this.pageLoads.get(key);
    if (pending) {
      this.counters.shared++;
      return pending as Promise<T>;
    }
    this.counters.pageMisses++;
    const p = (async () => {
      try {
        const value = await load();
        const size = sizeOf(value) + ENTRY_OVERHEAD;
        this.counters.pageLoadedBytes += size - ENTRY_OVERHEAD;
        if (size <= (this.pages.maxSize ?? 0) / 8) this.pages.set(key, { value, size });
        return value;
      } catch (err) {
        this.counters.failures++;
        throw err;
      } finally {
        this.pageLoads.delete(key);
      }
    })();
    this.pageLoads.set(key, p);
    return p;
  }

  /** The cached page, if present (recency updated, counted as a hit); never loads. */
  cachedPage<T>(key: string): T | undefined {
    const hit = this.pages.get(key);
    if (!hit) return undefined;
    this.counters.pageHits++;
    return hit.value as T;
  }

  // ---- chunks -------------------------------------------------------------------------------------

  private lease(at: ArenaLocation): ChunkLease {
    const arena = this.arena;
    let released = false;
    return {
      bytes: arena.view(at),
      release: () => {
        if (released) return;
        released = true;
        arena.unpin(at.segment);
      },
    };
  }

  /** The chunk (id, tag) if it is cached: a lease on its bytes (counted as a hit); never loads. */
  cachedChunk(id: Uint8Array, tag: number): ChunkLease | undefined {
    const at = this.arena.lookup(id, tag);
    return at ? this.lease(at) : undefined;
  }

  /** Whether the chunk is cached or being loaded (no lease, nothing counted). */
  hasChunk(id: Uint8Array, tag: number): boolean {
    return this.arena.has(id, tag) || this.chunkLoads.has(chunkKey(id, tag));
  }

  /**
   * The chunk (id, tag) of `raw` bytes: from the cache, or loaded by `load`, which must write exactly
   * the verified plaintext into the buffer it is given (arena memory, or memory of its own when the
   * arena has no room). `cold` marks loads of one-pass readers (evicted first).
   */
  async chunk(id: Uint8Array, tag: number, raw: number, load: (dst: Uint8Array) => Promise<void>, opts: { cold?: boolean } = {}): Promise<ChunkLease> {
    const key = chunkKey(id, tag);
    for (;;) {
      const mine = this.chunkLoads.get(key);
      if (mine) {
        this.counters.shared++;
        await mine.catch(() => {});
        const again = this.arena.lookup(id, tag);
        if (again) return this.lease(again);
        continue; // it failed, or was evicted already: try ourselves
      }
      const seq = this.arena.publishSeq();
      const t = this.arena.beginLoad(id, tag, raw, opts.cold);
      if (t.kind === 'hit') return this.lease(t.at);
      if (t.kind === 'loading') {
        // Another thread loads it: wait for its publish, then look again.
        await this.arena.waitForPublish(seq, CROSS_THREAD_WAIT_MS);
        continue;
      }
      if (t.kind === 'full') {
        const own = Buffer.allocUnsafe(raw);
        try {
          await load(own);
        } catch (err) {
          this.counters.failures++;
          throw err;
        }
        return { bytes: own, release: NOOP };
      }
      const at = t.at;
      const done = (async () => {
        try {
          await load(this.arena.view(at));
          this.arena.publish(id, tag, at);
        } catch (err) {
          this.counters.failures++;
          this.arena.abandon(id, tag, at);
          this.arena.unpin(at.segment);
          throw err;
        }
      })();
      this.chunkLoads.set(key, done);
      try {
        await done;
      } finally {
        this.chunkLoads.delete(key);
      }
      return this.lease(at);
    }
  }

  /**
   * Contiguous space of `bytes` for an extent of `chunks` chunks, or undefined when the arena has
   * none (bigger than a segment, or every segment pinned): decode into memory of your own then.
   */
  reserveExtent(bytes: number, chunks: number, cold: boolean): ExtentSpace | undefined {
    const at = this.arena.reserve(bytes, chunks, cold);
    if (!at) return undefined;
    const arena = this.arena;
    let tag = 0;
    const ids: Uint8Array[] = [];
    const places: ArenaLocation[] = [];
    const settle = (ready: boolean) => {
      if (ready) arena.publishLoaded(ids, tag, places);
      else arena.abandonLoading(ids, tag, places);
      ids.length = places.length = 0;
    };
    const space: ExtentSpace = {
      bytes: arena.view(at),
      arenaOffset: at.segment * arena.segmentBytes + at.offset,
      claim: (id, chunkTag, offset, length) => {
        const place = { segment: at.segment, offset: at.offset + offset, length };
        if (!arena.claimLoading(id, chunkTag, place)) return;
        tag = chunkTag;
        ids.push(id);
        places.push(place);
      },
      publish: () => settle(true),
      abandon: () => settle(false),
      lease: (offset, length) => {
        arena.addPin(at.segment);
        return this.lease({ segment: at.segment, offset: at.offset + offset, length });
      },
      release: () => {
        settle(false); // claims never published (a failure on the way) must not keep readers waiting
        arena.unpin(at.segment);
      },
    };
    return space;
  }

  // ---- I/O buffers --------------------------------------------------------------------------------

  /**
   * A buffer in shared memory for `bytes` ≤ IO_BUFFER_BYTES of stored data (read there by storage,
   * decoded from there by a worker), from a small pool inside the budget; waits while all are in use.
   * Give it back with `returnIoBuffer`.
   */
  async takeIoBuffer(bytes: number): Promise<Uint8Array> {
    if (bytes > IO_BUFFER_BYTES) return new Uint8Array(new SharedArrayBuffer(bytes)); // beyond the pool: a bigger-than-extent read
    for (;;) {
      const free = this.ioFree.pop();
      if (free) return free.subarray(0, bytes);
      if (this.ioBuffers < this.ioBuffersMax) {
        this.ioBuffers++;
        return new Uint8Array(new SharedArrayBuffer(IO_BUFFER_BYTES), 0, bytes);
      }
      await new Promise<void>((resolve) => this.ioWaiters.push(resolve));
    }
  }

  /** Give back a buffer from `takeIoBuffer` (any view of it). */
  returnIoBuffer(b: Uint8Array): void {
    if (b.buffer.byteLength !== IO_BUFFER_BYTES) return;
    this.ioFree.push(new Uint8Array(b.buffer, 0, IO_BUFFER_BYTES));
    this.ioWaiters.shift()?.();
  }

  // ---- prefetch allowance -------------------------------------------------------------------------

  /**
   * Reserve `bytes` of the prefetch allowance; false when it is used up (the caller then prefetches
   * less). Every successful reservation must be given back with `releasePrefetch`.
   */
  tryReservePrefetch(bytes: number): boolean {
    if (this.prefetching + bytes > this.prefetchBudget) return false;
    this.prefetching += bytes;
    return true;
  }

  releasePrefetch(bytes: number): void {
    this.prefetching = Math.max(0, this.prefetching - bytes);
  }

  /** Prefetched bytes in flight now. */
  get prefetchBytes(): number {
    return this.prefetching;
  }

  // ---- housekeeping -------------------------------------------------------------------------------

  /** Drop every cached index page (chunks stay: they are the same whatever archive asks). */
  clearPages(): void {
    this.pages.clear();
  }

  stats(): CacheStats {
    const a = this.arena.stats();
    const c = this.counters;
    return {
      hits: a.hits + c.pageHits,
      misses: a.misses + c.pageMisses,
      shared: c.shared,
      loadedBytes: a.insertedBytes + c.pageLoadedBytes,
      evictions: a.evictions + c.pageEvictions,
      failures: c.failures,
      uncached: a.overflows,
      bytes: a.bytes + (this.pages.calculatedSize ?? 0),
      maxBytes: this.maxBytes,
      entries: a.entries + this.pages.size,
    };
  }

  /** Let go of this thread's open segments (a worker thread that exits calls this). */
  detach(): void {
    this.arena.detach();
  }
}

/** The per-thread key of a chunk: its id in hex and its tag. */
function chunkKey(id: Uint8Array, tag: number): string {
  return `${tag}:${Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')}`;
}

let shared: BlockCache | undefined;

/**
 * The process's cache. The first caller that passes a budget sets it (the CLI does, from
 * `--cache-size`); later callers share the same instance: one memory budget for the whole process.
 */
export function sharedCache(maxBytes?: number): BlockCache {
  if (!shared) shared = new BlockCache({ maxBytes });
  return shared;
}
