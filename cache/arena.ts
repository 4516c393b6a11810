/**
 * The chunk arena: decoded chunks in one `SharedArrayBuffer` of the cache budget, with an index every
 * thread of the process can read, so gateway worker threads, decode workers and the main thread share
 * one cache and one budget (docs/operations.md, "Cache sizing").
 *
 * Layout (all in shared memory, attached from any thread with `ChunkArena.attach(handle)`):
 * - `data`: the budget cut into equal *segments* (1–4 MiB). A thread fills a segment it owns by
 *   bumping a cursor; a decoded extent (many chunks) lands contiguously in one segment, so readers get
 *   one view for many chunks. Eviction is by whole segment, least recently used first, cold segments
 *   (those filled by one-pass readers: `cat`, `extract`, `verify`) before hot ones.
 * - `slots`: an open-addressing hash table (linear probing, backward-shift deletion, no tombstones)
 *   from (chunk id, tag) to the chunk's segment, offset and length. A slot is `loading` while its
 *   owner decodes into reserved space (other threads wait, see `ChunkArena.waitForPublish`) and `ready`
 *   once published. Recycling a segment deletes its slots first.
 * - `segments`: per segment its generation, fill, entry count, last use, owner and pin count.
 *
 * Every index and allocation operation runs under one spin lock (`Atomics`): critical sections are a
 * few dozen memory accesses and never do I/O, so contention stays negligible at gateway rates.
 * Bytes are read outside the lock through *pins*: a lookup pins the segment it returns, and a pinned
 * segment is never recycled, so a view stays valid until its pin is released. Pins are also counted
 * per thread, so the pins of a thread that died can be given back (`releaseThread`).
 *
 * Nothing here decodes or verifies: callers put only verified plaintext in (cache/block-cache.ts).
 *
 * Why this file is long: the hash table, the segment allocator and the pins share one lock and one
 * shared-memory layout; each operation touches all three under the lock, so splitting them would
 * spread one invariant (a pinned segment is never recycled, a recycled one has no slots) over files.
 */

/** Largest segment: a decoded extent of the bulk readers (src/reader/extents.ts) fits in one. */
export const MAX_SEGMENT_BYTES = 4 * 1024 * 1024;
/** Smallest segment: below this the per-segment bookkeeping outweighs the data. */
export const MIN_SEGMENT_BYTES = 1024 * 1024;
/** Segments at least: eviction by segment must not throw away a large share of the cache at once. */
const MIN_SEGMENTS = 16;
/** Chunks per segment at most (4 KiB on average in a 4 MiB segment): bounds the index size. */
export const MAX_ENTRIES_PER_SEGMENT = 1024;
/** Threads that may attach (main, decode workers, gateway workers): rows of the per-thread pin table. */
export const MAX_THREADS = 64;
/** A `loading` slot older than this is taken over: its loader died or hung (storage has its own timeouts). */
const STALE_LOAD_MS = 60_000;

// control words
const C_LOCK = 0;
/** Seconds since 2023-11-14 (1.7e9 s) when the arena was made: the origin of its clocks (int32-safe for decades). */
const C_EPOCH = 1;
const C_PUBLISH = 2;
const C_THREADS = 3;
/** Segments filled so far (under the lock): the tie-break of equal last-use ticks. */
const C_FILL_SEQ = 4;
/** Offset of C_EPOCH's origin from the Unix epoch, in seconds. */
const EPOCH_OFFSET_S = 1_700_000_000;
/** Resolution of the segments' last-use clock: 10 ms (int32 ticks last 248 days; LRU needs no finer order). */
const TICK_MS = 10;
const CONTROL_WORDS = 8;
// counters (BigInt64)
const K_HITS = 0;
const K_MISSES = 1;
const K_EVICTIONS = 2;
const K_INSERTED_BYTES = 3;
const K_OVERFLOWS = 4;
const COUNTER_WORDS = 8;
// segment words
const S_GEN = 0;
const S_FILL = 1;
const S_ENTRIES = 2;
const S_LAST_USE = 3;
/** Thread slot that owns the segment (fills it), or -1. */
const S_OWNER = 4;
const S_PINS = 5;
/** 1 when filled by a one-pass reader: evicted first. */
const S_COLD = 6;
/** 1 once it has held data since the arena was created (free segments are taken first). */
const S_USED = 7;
/**
 * When the segment was last taken for filling (C_FILL_SEQ at that time). Segments used within one
 * 10 ms tick tie on S_LAST_USE; the one filled earlier goes first, so a burst of inserts never evicts
 * the segment it has just sealed while an older one of the same tick remains. (Wraps after 2^31
 * fills — petabytes —, when the order of one tick is briefly arbitrary again.)
 */
const S_FILL_SEQ = 8;
const SEGMENT_WORDS = 9;
// slot words
const SLOT_KEY = 0; // 8 words: the 32-byte id
const SLOT_TAG = 8;
const SLOT_STATE = 9;
const SLOT_SEG = 10;
const SLOT_OFFSET = 11;
const SLOT_LENGTH = 12;
/** Position of this slot in its segment's entry list. */
const SLOT_ENTRY = 13;
const SLOT_SINCE = 14;
const SLOT_WORDS = 16;
const EMPTY = 0;
const LOADING = 1;
const READY = 2;

/** Everything a thread needs to attach to an arena (structured-clonable: shared buffers and numbers). */
export interface ArenaHandle {
  data: SharedArrayBuffer;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  segments: SharedArrayBuffer;
  entries: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  pins: SharedArrayBuffer;
  segmentBytes: number;
  segmentCount: number;
  slotCount: number;
}

/** Where a chunk's bytes are: `length` bytes at `offset` of segment `segment`. */
export interface ArenaLocation {
  segment: number;
  offset: number;
  length: number;
}

/** Outcome of `beginLoad`: found (pinned), being loaded by someone else, or ours to load into `at` (pinned). */
export type LoadTicket = { kind: 'hit'; at: ArenaLocation } | { kind: 'loading' } | { kind: 'load'; at: ArenaLocation } | { kind: 'full' };

export interface ArenaStats {
  hits: number;
  misses: number;
  evictions: number;
  insertedBytes: number;
  /** Loads that found no segment to put their bytes in (all pinned or too big): served uncached. */
  overflows: number;
  /** Bytes in segments holding data. */
  bytes: number;
  capacity: number;
  entries: number;
  pinnedSegments: number;
}

/** Sizes of an arena for a byte budget. */
export function arenaGeometry(budget: number): { segmentBytes: number; segmentCount: number; slotCount: number } {
  let segmentBytes = MAX_SEGMENT_BYTES;
  while (segmentBytes > MIN_SEGMENT_BYTES && budget / segmentBytes < MIN_SEGMENTS) segmentBytes /= 2;
  const segmentCount = Math.max(2, Math.floor(budget / segmentBytes));
  // Load factor ≤ 0.5 even when every segment holds its maximum of entries.
  let slotCount = 1024;
  while (slotCount < 2 * segmentCount * MAX_ENTRIES_PER_SEGMENT) slotCount *= 2;
  return { segmentBytes, segmentCount, slotCount };
}

/** Bytes of shared memory an arena of this budget takes besides its data (index and bookkeeping). */
export function arenaOverheadBytes(budget: number): number {
  const g = arenaGeometry(budget);
  return g.slotCount * SLOT_WORDS * 4 + g.segmentCount * (SEGMENT_WORDS + MAX_ENTRIES_PER_SEGMENT + MAX_THREADS) * 4;
}

export class ChunkArena {
  readonly data: Uint8Array;
  readonly segmentBytes: number;
  readonly segmentCount: number;
  private readonly control: Int32Array;
  private readonly counters: BigInt64Array;
  private readonly segments: Int32Array;
  private readonly entries: Int32Array;
  private readonly slots: Int32Array;
  private readonly pins: Int32Array;
  private readonly slotMask: number;
  /** This thread's row in the pin table. */
  readonly thread: number;
  /** Segments this thread fills, hot and cold (-1: none). */
  private open = [-1, -1];

  private constructor(
    readonly handle: ArenaHandle,
    thread: number,
  ) {
    this.data = new Uint8Array(handle.data);
    this.segmentBytes = handle.segmentBytes;
    this.segmentCount = handle.segmentCount;
    this.control = new Int32Array(handle.control);
    this.counters = new BigInt64Array(handle.counters);
    this.segments = new Int32Array(handle.segments);
    this.entries = new Int32Array(handle.entries);
    this.slots = new Int32Array(handle.slots);
    this.pins = new Int32Array(handle.pins);
    this.slotMask = handle.slotCount - 1;
    this.thread = thread;
  }

  /** A new arena of `budget` bytes (data, plus `arenaOverheadBytes` of index), attached as thread 0. */
  static create(budget: number): ChunkArena {
    const g = arenaGeometry(budget);
    const handle: ArenaHandle = {
      data: new SharedArrayBuffer(g.segmentBytes * g.segmentCount),
      control: new SharedArrayBuffer(CONTROL_WORDS * 4),
      counters: new SharedArrayBuffer(COUNTER_WORDS * 8),
      segments: new SharedArrayBuffer(g.segmentCount * SEGMENT_WORDS * 4),
      entries: new SharedArrayBuffer(g.segmentCount * MAX_ENTRIES_PER_SEGMENT * 4),
      slots: new SharedArrayBuffer(g.slotCount * SLOT_WORDS * 4),
      pins: new SharedArrayBuffer(MAX_THREADS * g.segmentCount * 4),
      ...g,
    };
    const segs = new Int32Array(handle.segments);
    for (let s = 0; s < g.segmentCount; s++) segs[s * SEGMENT_WORDS + S_OWNER] = -1;
    const control = new Int32Array(handle.control);
    Atomics.store(control, C_THREADS, 1);
    Atomics.store(control, C_EPOCH, Math.floor(Date.now() / 1000) - EPOCH_OFFSET_S);
    return new ChunkArena(handle, 0);
  }

  /** Attach to an arena created elsewhere (another thread), as a new thread slot. */
  static attach(handle: ArenaHandle): ChunkArena {
    const control = new Int32Array(handle.control);
    const thread = Atomics.add(control, C_THREADS, 1);
    if (thread >= MAX_THREADS) throw new RangeError(`more than ${MAX_THREADS} threads attached to one chunk arena`);
    return new ChunkArena(handle, thread);
  }

  // ---- locking --------------------------------------------------------------------------------------

  private lock(): void {
    for (let spins = 0; Atomics.compareExchange(this.control, C_LOCK, 0, 1) !== 0; spins++) {
      // Critical sections are short: spin a little, then sleep until the holder wakes us.
      if (spins > 64) Atomics.wait(this.control, C_LOCK, 1, 1);
    }
  }

  private unlock(): void {
    Atomics.store(this.control, C_LOCK, 0);
    Atomics.notify(this.control, C_LOCK, 1);
  }

  // ---- slots ----------------------------------------------------------------------------------------

  private home(key: Uint8Array, tag: number): number {
    // Ids are cryptographic hashes: any four of their bytes are uniformly distributed.
    return ((key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) ^ Math.imul(tag, 0x9e3779b1)) & this.slotMask;
  }

  private keyMatches(slot: number, key: Uint8Array, tag: number): boolean {
    const s = this.slots;
    const base = slot * SLOT_WORDS;
    if (s[base + SLOT_TAG] !== tag) return false;
    for (let w = 0; w < 8; w++) {
      const b = w * 4;
      if (s[base + SLOT_KEY + w] !== (key[b] | (key[b + 1] << 8) | (key[b + 2] << 16) | (key[b + 3] << 24))) return false;
    }
    return true;
  }

  /** The slot of (key, tag), or -1. Under the lock. */
  private find(key: Uint8Array, tag: number): number {
    const s = this.slots;
    for (let i = this.home(key, tag); ; i = (i + 1) & this.slotMask) {
      if (s[i * SLOT_WORDS + SLOT_STATE] === EMPTY) return -1;
      if (this.keyMatches(i, key, tag)) return i;
    }
  }

  /** Insert (key, tag) in `state` at `at`; the caller has checked it is absent. Under the lock. */
  private insert(key: Uint8Array, tag: number, state: number, at: ArenaLocation): void {
    const s = this.slots;
    let i = this.home(key, tag);
    while (s[i * SLOT_WORDS + SLOT_STATE] !== EMPTY) i = (i + 1) & this.slotMask;
    const base = i * SLOT_WORDS;
    for (let w = 0; w < 8; w++) {
      const b = w * 4;
      s[base + SLOT_KEY + w] = key[b] | (key[b + 1] << 8) | (key[b + 2] << 16) | (key[b + 3] << 24);
    }
    s[base + SLOT_TAG] = tag;
    s[base + SLOT_SEG] = at.segment;
    s[base + SLOT_OFFSET] = at.offset;
    s[base + SLOT_LENGTH] = at.length;
    s[base + SLOT_SINCE] = state === LOADING ? this.seconds() : 0;
    const seg = at.segment * SEGMENT_WORDS;
    const n = this.segments[seg + S_ENTRIES]++;
    this.entries[at.segment * MAX_ENTRIES_PER_SEGMENT + n] = i;
    s[base + SLOT_ENTRY] = n;
    s[base + SLOT_STATE] = state;
  }

  /** Remove slot `i` (backward-shift deletion keeps every probe chain unbroken). Under the lock. */
  private remove(i: number): void {
    const s = this.slots;
    // Take it out of its segment's entry list (swap with the last entry).
    const seg = s[i * SLOT_WORDS + SLOT_SEG];
    const pos = s[i * SLOT_WORDS + SLOT_ENTRY];
    const last = --this.segments[seg * SEGMENT_WORDS + S_ENTRIES];
    if (pos !== last) {
      const moved = this.entries[seg * MAX_ENTRIES_PER_SEGMENT + last];
      this.entries[seg * MAX_ENTRIES_PER_SEGMENT + pos] = moved;
      s[moved * SLOT_WORDS + SLOT_ENTRY] = pos;
    }
    let hole = i;
    for (let j = (i + 1) & this.slotMask; s[j * SLOT_WORDS + SLOT_STATE] !== EMPTY; j = (j + 1) & this.slotMask) {
      const home = this.homeOfSlot(j);
      // Slot j may move into the hole if its home does not lie cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      s.copyWithin(hole * SLOT_WORDS, j * SLOT_WORDS, (j + 1) * SLOT_WORDS);
      const jseg = s[hole * SLOT_WORDS + SLOT_SEG];
      this.entries[jseg * MAX_ENTRIES_PER_SEGMENT + s[hole * SLOT_WORDS + SLOT_ENTRY]] = hole;
      hole = j;
    }
    s.fill(0, hole * SLOT_WORDS, (hole + 1) * SLOT_WORDS);
  }

  private homeOfSlot(i: number): number {
    const s = this.slots;
    const base = i * SLOT_WORDS;
    return (s[base + SLOT_KEY] ^ Math.imul(s[base + SLOT_TAG], 0x9e3779b1)) & this.slotMask;
  }

  private location(i: number): ArenaLocation {
    const base = i * SLOT_WORDS;
    return { segment: this.slots[base + SLOT_SEG], offset: this.slots[base + SLOT_OFFSET], length: this.slots[base + SLOT_LENGTH] };
  }

  // ---- segments -------------------------------------------------------------------------------------

  /** Pin segment `seg` for this thread (its bytes stay put until `unpin`). Under the lock or while already pinned. */
  private pin(seg: number): void {
    Atomics.add(this.segments, seg * SEGMENT_WORDS + S_PINS, 1);
    Atomics.add(this.pins, this.thread * this.segmentCount + seg, 1);
  }

  /** Release a pin taken by `lookup`, `beginLoad`, `reserve` or `addPin` on this thread. */
  unpin(seg: number): void {
    Atomics.sub(this.pins, this.thread * this.segmentCount + seg, 1);
    Atomics.sub(this.segments, seg * SEGMENT_WORDS + S_PINS, 1);
  }

  /** One more pin on a segment this thread already holds pinned (to hand a second view out). */
  addPin(seg: number): void {
    this.pin(seg);
  }

  /** Milliseconds since this arena's origin. */
  private sinceOrigin(): number {
    return Date.now() - (Atomics.load(this.control, C_EPOCH) + EPOCH_OFFSET_S) * 1000;
  }

  /** The last-use clock now, in ticks. */
  private ticks(): number {
    return Math.floor(this.sinceOrigin() / TICK_MS);
  }

  /** Seconds since the origin (the age of loading slots). */
  private seconds(): number {
    return Math.floor(this.sinceOrigin() / 1000);
  }

  private touch(seg: number): void {
    Atomics.store(this.segments, seg * SEGMENT_WORDS + S_LAST_USE, this.ticks());
  }

  /** A segment to fill: a free one, else the least recently used unpinned, unowned one (cold first), emptied. Under the lock. */
  private takeSegment(cold: boolean): number {
    const g = this.segments;
    let best = -1;
    let bestScore = Infinity;
    let bestSeq = 0;
    let free = -1;
    for (let s = 0; s < this.segmentCount; s++) {
      const b = s * SEGMENT_WORDS;
      if (g[b + S_OWNER] !== -1 || Atomics.load(g, b + S_PINS) !== 0) continue;
      if (g[b + S_USED] === 0) {
        if (free < 0) free = s;
        continue;
      }
      // Cold segments go first whatever their age; among each kind, the least recently used.
      const score = g[b + S_LAST_USE] - (g[b + S_COLD] ? 2 ** 32 : 0);
      const seq = g[b + S_FILL_SEQ];
      if (score < bestScore || (score === bestScore && seq < bestSeq)) {
        bestScore = score;
        bestSeq = seq;
        best = s;
      }
    }
    // A hot load takes a free segment before evicting anything. A cold one (a one-pass reader) reuses
    // a cold segment first: a pass over a huge file then cycles through a few segments instead of
    // touching (and faulting in) the whole budget.
    if (free >= 0 && !(cold && best >= 0 && g[best * SEGMENT_WORDS + S_COLD])) best = free;
    if (best < 0) return -1;
    const b = best * SEGMENT_WORDS;
    if (g[b + S_USED]) {
      while (g[b + S_ENTRIES] > 0) this.remove(this.entries[best * MAX_ENTRIES_PER_SEGMENT + g[b + S_ENTRIES] - 1]);
      Atomics.add(this.counters, K_EVICTIONS, 1n);
    }
    g[b + S_GEN]++;
    g[b + S_FILL] = 0;
    g[b + S_USED] = 1;
    g[b + S_COLD] = cold ? 1 : 0;
    g[b + S_OWNER] = this.thread;
    g[b + S_LAST_USE] = this.ticks();
    g[b + S_FILL_SEQ] = Atomics.add(this.control, C_FILL_SEQ, 1) + 1;
    return best;
  }

  /** Stop filling segment `seg` (it stays readable and becomes evictable). Under the lock. */
  private seal(seg: number): void {
    this.segments[seg * SEGMENT_WORDS + S_OWNER] = -1;
  }

  /**
   * `bytes` of contiguous space in a segment this thread fills (`entries` index slots with it),
   * pinned; undefined when nothing can be had (bigger than a segment, or every segment pinned). Under
   * the lock.
   */
  private allocate(bytes: number, entries: number, cold: boolean): ArenaLocation | undefined {
    if (bytes > this.segmentBytes || entries > MAX_ENTRIES_PER_SEGMENT) return undefined;
    const kind = cold ? 1 : 0;
    let seg = this.open[kind];
    const g = this.segments;
    if (seg >= 0) {
      const b = seg * SEGMENT_WORDS;
      if (g[b + S_OWNER] !== this.thread || g[b + S_FILL] + bytes > this.segmentBytes || g[b + S_ENTRIES] + entries > MAX_ENTRIES_PER_SEGMENT) {
        if (g[b + S_OWNER] === this.thread) this.seal(seg);
        seg = -1;
      }
    }
    if (seg < 0) {
      seg = this.takeSegment(cold);
      this.open[kind] = seg;
      if (seg < 0) return undefined;
    }
    const b = seg * SEGMENT_WORDS;
    const offset = g[b + S_FILL];
    g[b + S_FILL] = offset + bytes;
    this.pin(seg);
    return { segment: seg, offset, length: bytes };
  }

  // ---- the API --------------------------------------------------------------------------------------

  /** A view of the bytes at `at` (valid while the segment is pinned). */
  view(at: ArenaLocation): Uint8Array {
    return this.data.subarray(at.segment * this.segmentBytes + at.offset, at.segment * this.segmentBytes + at.offset + at.length);
  }

  /** The chunk (key, tag) if it is ready, pinned (release with `unpin(at.segment)`); counts a hit or a miss. */
  lookup(key: Uint8Array, tag: number): ArenaLocation | undefined {
    this.lock();
    let at: ArenaLocation | undefined;
    try {
      const i = this.find(key, tag);
      if (i >= 0 && this.slots[i * SLOT_WORDS + SLOT_STATE] === READY) {
        at = this.location(i);
        this.pin(at.segment);
      }
    } finally {
      this.unlock();
    }
    if (at) {
      this.touch(at.segment);
      Atomics.add(this.counters, K_HITS, 1n);
    } else Atomics.add(this.counters, K_MISSES, 1n);
    return at;
  }

  /** Whether (key, tag) is ready or loading; pins nothing and counts nothing. */
  has(key: Uint8Array, tag: number): boolean {
    this.lock();
    try {
      return this.find(key, tag) >= 0;
    } finally {
      this.unlock();
    }
  }

  /**
   * Find (key, tag), or claim it: a `load` ticket reserves `length` bytes (pinned) and marks the slot
   * loading, so other threads wait for this one's `publish` (or `abandon`) instead of loading it too.
   * `full`: no space can be had; load it into memory of your own, uncached.
   */
  beginLoad(key: Uint8Array, tag: number, length: number, cold = false): LoadTicket {
    this.lock();
    try {
      const i = this.find(key, tag);
      if (i >= 0) {
        const state = this.slots[i * SLOT_WORDS + SLOT_STATE];
        if (state === READY) {
          const at = this.location(i);
          this.pin(at.segment);
          this.touch(at.segment);
          Atomics.add(this.counters, K_HITS, 1n);
          return { kind: 'hit', at };
        }
        if (this.seconds() - this.slots[i * SLOT_WORDS + SLOT_SINCE] < STALE_LOAD_MS / 1000) return { kind: 'loading' };
        this.remove(i); // a loader that never published: take over
      }
      Atomics.add(this.counters, K_MISSES, 1n);
      const at = this.allocate(length, 1, cold);
      if (!at) {
        Atomics.add(this.counters, K_OVERFLOWS, 1n);
        return { kind: 'full' };
      }
      this.insert(key, tag, LOADING, at);
      return { kind: 'load', at };
    } finally {
      this.unlock();
    }
  }

  /**
   * The loaded bytes of a `load` ticket (reserved at `at`) are in place: make them visible and wake
   * waiters. The pin stays. Only the slot still claimed at `at` is touched: one taken over as stale
   * (STALE_LOAD_MS) belongs to its new loader, whose bytes may not be written yet.
   */
  publish(key: Uint8Array, tag: number, at: ArenaLocation): void {
    this.settleLoading([key], tag, [at], true);
  }

  /** A `load` ticket failed: forget its slot (the reserved bytes are simply left unused) and wake waiters. */
  abandon(key: Uint8Array, tag: number, at: ArenaLocation): void {
    this.settleLoading([key], tag, [at], false);
  }

  /**
   * `bytes` of contiguous space for an extent of `chunks` chunks, pinned (release with `unpin`), or
   * undefined. The caller claims each chunk it will decode there (`claimLoading`), decodes into
   * `view(at)`, then publishes them (`publishLoaded`) or gives them up (`abandonLoading`).
   */
  reserve(bytes: number, chunks: number, cold: boolean): ArenaLocation | undefined {
    this.lock();
    try {
      const at = this.allocate(bytes, chunks, cold);
      if (!at) Atomics.add(this.counters, K_OVERFLOWS, 1n);
      return at;
    } finally {
      this.unlock();
    }
  }

  /**
   * Mark (key, tag) as loading at `at` (inside space this thread reserved and still pins), unless it
   * is there already (ready, or loading elsewhere): readers that ask for it meanwhile wait for this
   * thread's `publishLoaded` instead of loading it a second time. True when claimed.
   */
  claimLoading(key: Uint8Array, tag: number, at: ArenaLocation): boolean {
    this.lock();
    try {
      if (this.find(key, tag) >= 0) return false;
      if (this.segments[at.segment * SEGMENT_WORDS + S_ENTRIES] >= MAX_ENTRIES_PER_SEGMENT) return false;
      this.insert(key, tag, LOADING, at);
      return true;
    } finally {
      this.unlock();
    }
  }

  /**
   * The bytes of chunks claimed with `claimLoading` at `at[i]` are verified and in place: make them
   * ready, and wake waiters once for all of them. A slot is only touched while it is still the claim
   * at that location (one taken over as stale belongs to its new loader).
   */
  publishLoaded(keys: readonly Uint8Array[], tag: number, at: readonly ArenaLocation[]): void {
    this.settleLoading(keys, tag, at, true);
  }

  /** Chunks claimed with `claimLoading` will not be loaded after all: forget them and wake waiters. */
  abandonLoading(keys: readonly Uint8Array[], tag: number, at: readonly ArenaLocation[]): void {
    this.settleLoading(keys, tag, at, false);
  }

  private settleLoading(keys: readonly Uint8Array[], tag: number, at: readonly ArenaLocation[], ready: boolean): void {
    if (keys.length === 0) return;
    const s = this.slots;
    let bytes = 0;
    this.lock();
    try {
      for (let k = 0; k < keys.length; k++) {
        const i = this.find(keys[k], tag);
        if (i < 0) continue;
        const b = i * SLOT_WORDS;
        if (s[b + SLOT_STATE] !== LOADING || s[b + SLOT_SEG] !== at[k].segment || s[b + SLOT_OFFSET] !== at[k].offset) continue;
        if (ready) {
          s[b + SLOT_STATE] = READY;
          bytes += s[b + SLOT_LENGTH];
        } else this.remove(i);
      }
    } finally {
      this.unlock();
    }
    if (bytes > 0) Atomics.add(this.counters, K_INSERTED_BYTES, BigInt(bytes));
    this.notifyPublish();
  }

  private notifyPublish(): void {
    Atomics.add(this.control, C_PUBLISH, 1);
    Atomics.notify(this.control, C_PUBLISH);
  }

  /** The publish counter now: pass it to `waitForPublish` before looking again. */
  publishSeq(): number {
    return Atomics.load(this.control, C_PUBLISH);
  }

  /** Resolves when something was published or abandoned after `seq` (or after `timeoutMs`). */
  async waitForPublish(seq: number, timeoutMs = 1000): Promise<void> {
    const r = Atomics.waitAsync(this.control, C_PUBLISH, seq, timeoutMs);
    if (!r.async) return;
    // A pending waitAsync does not keep Node's event loop alive: a timer does, until either fires.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([r.value, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Stop filling the segments this thread owns (before it exits), so they can be evicted. */
  detach(): void {
    this.lock();
    try {
      for (const seg of this.open) if (seg >= 0 && this.segments[seg * SEGMENT_WORDS + S_OWNER] === this.thread) this.seal(seg);
      this.open = [-1, -1];
    } finally {
      this.unlock();
    }
  }

  /** Give back every pin and segment of thread `thread` (it died without detaching). */
  releaseThread(thread: number): void {
    this.lock();
    try {
      for (let s = 0; s < this.segmentCount; s++) {
        const n = Atomics.exchange(this.pins, thread * this.segmentCount + s, 0);
        if (n) Atomics.sub(this.segments, s * SEGMENT_WORDS + S_PINS, n);
        if (this.segments[s * SEGMENT_WORDS + S_OWNER] === thread) this.seal(s);
      }
    } finally {
      this.unlock();
    }
  }

  stats(): ArenaStats {
    let bytes = 0;
    let entries = 0;
    let pinnedSegments = 0;
    this.lock();
    try {
      for (let s = 0; s < this.segmentCount; s++) {
        const b = s * SEGMENT_WORDS;
        if (this.segments[b + S_USED]) bytes += this.segments[b + S_FILL];
        entries += this.segments[b + S_ENTRIES];
        if (Atomics.load(this.segments, b + S_PINS) > 0) pinnedSegments++;
      }
    } finally {
      this.unlock();
    }
    const c = this.counters;
    return {
      hits: Number(Atomics.load(c, K_HITS)),
      misses: Number(Atomics.load(c, K_MISSES)),
      evictions: Number(Atomics.load(c, K_EVICTIONS)),
      insertedBytes: Number(Atomics.load(c, K_INSERTED_BYTES)),
      overflows: Number(Atomics.load(c, K_OVERFLOWS)),
      bytes,
      capacity: this.segmentBytes * this.segmentCount,
      entries,
      pinnedSegments,
    };
  }
}
