/**
 * How one cache budget is split (docs/operations.md, "Cache sizing"): the shared chunk arena, and per
 * thread that shares it (each gateway worker) a page LRU and I/O buffers; the prefetch allowance is a
 * part of the arena's use, not extra memory. Pure arithmetic, so the whole stays within the budget
 * for any budget and thread count, or the budget is refused (test/cache/cache.test.ts).
 */
import { HexzError } from '../src/errors.js';
import { arenaOverheadBytes, MIN_SEGMENT_BYTES } from './arena.js';

/** Default budget: enough for ~4,000 chunks of 64 KiB; `--cache-size` changes it. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
/** Smallest budget: one I/O buffer, a small page cache and a couple of arena segments. */
export const MIN_CACHE_BYTES = 8 * 1024 * 1024;
/** Size of one I/O buffer: a bulk reader's extent of stored bytes fits (src/reader/extents.ts, plus a gap). */
export const IO_BUFFER_BYTES = 4 * 1024 * 1024 + 64 * 1024;
/** Smallest share of index pages a thread gets. */
const MIN_PAGE_BYTES = 1 << 20;

/**
 * Bytes of prefetch (chunks loaded ahead of their reader, not yet consumed) allowed for the whole
 * process: a quarter of the cache budget, between 4 and 64 MiB. Prefetched chunks land in the arena,
 * so this bounds how much of the cache readahead may claim ahead of its readers, and how much storage
 * traffic it may have in flight.
 */
export function prefetchBudgetFor(maxBytes: number): number {
  return Math.min(64 << 20, Math.max(4 << 20, Math.floor(maxBytes / 4)));
}

/**
 * Bytes of the budget kept for I/O buffers (stored bytes of extents on their way to a decode worker):
 * an eighth, 1–16 buffers. Each extent holds one from its storage read to the end of its decode, so
 * the count bounds how many are in flight: 3 (a sixteenth of 256 MiB) left a cold sequential pass
 * waiting on buffers while the disk and the decode threads idled.
 */
export function ioBudgetFor(maxBytes: number): number {
  return IO_BUFFER_BYTES * Math.min(16, Math.max(1, Math.floor(maxBytes / 8 / IO_BUFFER_BYTES)));
}

/** Bytes of the budget given to decoded index pages (all threads together): an eighth, 1–64 MiB. */
export function pageBudgetFor(maxBytes: number): number {
  return Math.min(64 << 20, Math.max(1 << 20, Math.floor(maxBytes / 8)));
}

/** The split of a budget for `threads` threads sharing one arena. */
export interface BudgetSplit {
  /** Page LRU of each thread. */
  pageBytes: number;
  /** I/O buffers each thread may have. */
  ioBuffers: number;
  /** The arena's data (its index and bookkeeping come on top, within the budget). */
  arenaBytes: number;
}

/**
 * Split `maxBytes` for `threads` threads. Every thread needs its own index pages (1 MiB at least) and
 * one I/O buffer, and the arena two segments: a budget below that is `INVALID_ARGUMENT` naming the
 * least that works, never quietly exceeded.
 */
export function splitBudget(maxBytes: number, threads: number): BudgetSplit {
  const least = threads * (MIN_PAGE_BYTES + IO_BUFFER_BYTES) + 2 * MIN_SEGMENT_BYTES + arenaOverheadBytes(2 * MIN_SEGMENT_BYTES);
  if (maxBytes < least) {
    throw new HexzError('INVALID_ARGUMENT', `cache size ${mib(maxBytes)} is too small for ${threads} thread${threads === 1 ? '' : 's'} sharing it: at least ${mib(least)} (each thread keeps index pages and an I/O buffer of its own)`, { cacheBytes: maxBytes, threads });
  }
  const pageBytes = Math.max(MIN_PAGE_BYTES, Math.floor(pageBudgetFor(maxBytes) / threads));
  const ioBuffers = Math.max(1, Math.floor(ioBudgetFor(maxBytes) / IO_BUFFER_BYTES / threads));
  const rest = maxBytes - threads * (pageBytes + ioBuffers * IO_BUFFER_BYTES);
  return { pageBytes, ioBuffers, arenaBytes: rest - arenaOverheadBytes(rest) };
}

/** `n` bytes in MiB, for messages. */
function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(n % (1 << 20) === 0 ? 0 : 1)} MiB`;
}
