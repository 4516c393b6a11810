/**
 * Read coalescing as a storage wrapper: reads issued in the same tick (the reader fires one per chunk
 * of a range) are sorted and merged into as few range requests as possible, then sliced back to each
 * caller without copying. A 1 MiB range of 16 chunks becomes one request instead of 16.
 *
 * Bounded: two reads merge only if the gap between them is at most `maxGap` bytes (fetched and thrown
 * away) and the merged request stays within `maxBytes`.
 */
import { HexzError } from '../src/errors.js';
import { readInto as readIntoAny, type ReadOptions, type Storage, type StorageStat } from '../storage/types.js';

export interface CoalesceOptions {
  /** Largest hole between two reads worth fetching to save a request (64 KiB: ~1 chunk, cheap next to a round trip). */
  maxGap?: number;
  /** Largest merged request (16 MiB keeps memory per request bounded). */
  maxBytes?: number;
}

export const DEFAULT_MAX_GAP = 64 * 1024;
export const DEFAULT_MAX_MERGED = 16 * 1024 * 1024;

interface Pending {
  offset: number;
  length: number;
  signal?: AbortSignal;
  resolve: (b: Uint8Array) => void;
  reject: (e: unknown) => void;
}

/** A pure plan: group sorted requests into merged ranges. Exported for table tests. */
export function planCoalesced(
  reads: ReadonlyArray<{ offset: number; length: number }>,
  maxGap = DEFAULT_MAX_GAP,
  maxBytes = DEFAULT_MAX_MERGED,
): Array<{ offset: number; length: number; members: number[] }> {
  const order = reads.map((_, i) => i).sort((a, b) => reads[a].offset - reads[b].offset);
  const groups: Array<{ offset: number; length: number; members: number[] }> = [];
  for (const i of order) {
    const r = reads[i];
    const g = groups[groups.length - 1];
    const end = r.offset + r.length;
    if (g && r.offset <= g.offset + g.length + maxGap && Math.max(end, g.offset + g.length) - g.offset <= maxBytes) {
      g.length = Math.max(end, g.offset + g.length) - g.offset;
      g.members.push(i);
    } else {
      groups.push({ offset: r.offset, length: r.length, members: [i] });
    }
  }
  return groups;
}

class CoalescingStorage implements Storage {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly inner: Storage,
    private readonly maxGap: number,
    private readonly maxBytes: number,
  ) {}

  get url(): string {
    return this.inner.url;
  }
  get backend(): string {
    return this.inner.backend;
  }
  stat(opts?: ReadOptions): Promise<StorageStat> {
    return this.inner.stat(opts);
  }
  readTail(length: number, opts?: ReadOptions) {
    return this.inner.readTail(length, opts);
  }
  /** Reads into the caller's memory are extent reads (megabytes): passed through, not merged. */
  readInto(offset: number, dst: Uint8Array, opts?: ReadOptions): Promise<void> {
    return readIntoAny(this.inner, offset, dst, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    if (length === 0 || length >= this.maxBytes) return this.inner.read(offset, length, opts);
    return new Promise((resolve, reject) => {
      this.queue.push({ offset, length, signal: opts?.signal, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: the reader issues a range's chunk loads across several
        // microtask turns (cache lookups are async), and they should all land in one batch.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    for (const g of planCoalesced(batch, this.maxGap, this.maxBytes)) {
      const members = g.members.map((i) => batch[i]);
      if (members.length === 1) {
        const m = members[0];
        this.inner.read(m.offset, m.length, { signal: m.signal }).then(m.resolve, m.reject);
        continue;
      }
      // A merged request is aborted only when every member has aborted; a member that aborts alone
      // is rejected on its own while the others still get their bytes.
      const signal = allAborted(members.map((m) => m.signal));
      this.inner.read(g.offset, g.length, { signal }).then(
        (bytes) => {
          for (const m of members) {
            if (m.signal?.aborted) m.reject(new HexzError('ABORTED', 'aborted', { url: this.url }));
            else m.resolve(bytes.subarray(m.offset - g.offset, m.offset - g.offset + m.length));
          }
        },
        (err) => {
          for (const m of members) m.reject(err);
        },
      );
    }
  }
}

/** A signal that fires once every given signal has fired; undefined if any member cannot abort. */
function allAborted(signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  if (signals.some((s) => !s)) return undefined;
  const controller = new AbortController();
  let remaining = signals.length;
  const onAbort = () => {
    if (--remaining === 0) controller.abort(signals[0]!.reason);
  };
  for (const s of signals as AbortSignal[]) {
    if (s.aborted) onAbort();
    else s.addEventListener('abort', onAbort, { once: true });
  }
  return controller.signal;
}

/** Wrap a storage so concurrent nearby reads become one request. */
export function coalesceReads(storage: Storage, opts: CoalesceOptions = {}): Storage {
  return new CoalescingStorage(storage, opts.maxGap ?? DEFAULT_MAX_GAP, opts.maxBytes ?? DEFAULT_MAX_MERGED);
}
