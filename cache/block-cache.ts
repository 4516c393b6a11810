/**
 * The process-wide block cache: decoded chunks and index pages, keyed by content (chunk id, page
 * hash), so every archive and version in the process shares entries, within one byte budget.
 *
 * - `lru-cache` does the bookkeeping (byte budget via `maxSize` + `sizeCalculation`).
 * - Concurrent requests for the same key share one load (in-flight map).
 * - A failed load is never cached: the next request tries again.
 * - Loaders verify what they load (hash/id) before it enters the cache, so a hit is trusted and never
 *   re-verified.
 */
import { LRUCache } from 'lru-cache';

/** Default budget: enough for ~4,000 chunks of 64 KiB; `--cache-size` changes it. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** Per-entry bookkeeping overhead counted against the budget (key, node, promise). */
const ENTRY_OVERHEAD = 256;

export interface CacheStats {
  hits: number;
  misses: number;
  /** Loads that joined a load already in flight. */
  shared: number;
  /** Bytes loaded into the cache (misses). */
  loadedBytes: number;
  evictions: number;
  failures: number;
  /** Current size and budget. */
  bytes: number;
  maxBytes: number;
  entries: number;
}

interface Entry {
  value: unknown;
  size: number;
}

/**
 * Bytes of prefetch (chunks loaded ahead of their reader, not yet consumed) allowed for the whole
 * process: a quarter of the cache budget, between 4 and 64 MiB. Without a shared bound, 32 streams
 * with 32 MiB windows could hold 1 GiB in flight whatever the cache budget.
 */
export function prefetchBudgetFor(maxBytes: number): number {
  return Math.min(64 << 20, Math.max(4 << 20, Math.floor(maxBytes / 4)));
}

export class BlockCache {
  readonly maxBytes: number;
  /** Process-wide allowance for prefetched bytes in flight (see `prefetchBudgetFor`). */
  readonly prefetchBudget: number;
  private prefetching = 0;
  private readonly lru: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly counters = { hits: 0, misses: 0, shared: 0, loadedBytes: 0, evictions: 0, failures: 0 };

  /** Bytes the cached entries may hold: the budget less the prefetch allowance, so the two together stay within it. */
  readonly entryBytes: number;

  constructor(opts: { maxBytes?: number } = {}) {
    this.maxBytes = Math.max(1 << 20, opts.maxBytes ?? DEFAULT_CACHE_BYTES);
    this.prefetchBudget = prefetchBudgetFor(this.maxBytes);
    this.entryBytes = Math.max(1 << 20, this.maxBytes - this.prefetchBudget);
    this.lru = new LRUCache<string, Entry>({
      maxSize: this.entryBytes,
      sizeCalculation: (e) => e.size,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
  }

  /**
   * The value for `key`, loading it with `load` on a miss. `sizeOf` gives the bytes it holds. Values
   * bigger than an eighth of the budget are returned but not kept, so one huge item cannot flush the
   * cache.
   */
  async get<T>(key: string, load: () => Promise<T>, sizeOf: (v: T) => number): Promise<T> {
    const hit = this.lru.get(key);
    if (hit) {
      this.counters.hits++;
      return hit.value as T;
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.shared++;
      return pending as Promise<T>;
    }
    this.counters.misses++;
    const p = (async () => {
      try {
        const value = await load();
        const size = sizeOf(value) + ENTRY_OVERHEAD;
        this.counters.loadedBytes += size - ENTRY_OVERHEAD;
        if (size <= this.entryBytes / 8) this.lru.set(key, { value, size });
        return value;
      } catch (err) {
        this.counters.failures++;
        throw err;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

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

  /** The cached value, if present, as a hit (recency updated, counted); never loads. */
  getIfCached<T>(key: string): T | undefined {
    const hit = this.lru.get(key);
    if (!hit) return undefined;
    this.counters.hits++;
    return hit.value as T;
  }

  /** The cached value without loading or counting, if present. */
  peek<T>(key: string): T | undefined {
    return this.lru.peek(key)?.value as T | undefined;
  }

  has(key: string): boolean {
    return this.lru.has(key) || this.inflight.has(key);
  }

  /** Drop every entry whose key starts with `prefix` (all when omitted). */
  clear(prefix = ''): void {
    if (!prefix) return this.lru.clear();
    for (const k of [...this.lru.keys()]) if (k.startsWith(prefix)) this.lru.delete(k);
  }

  stats(): CacheStats {
    return { ...this.counters, bytes: this.lru.calculatedSize ?? 0, maxBytes: this.maxBytes, entries: this.lru.size };
  }
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
