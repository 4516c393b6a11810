/**
 * Sequential-read detection with a growing prefetch window, as mountpoint-s3 does it: each read that
 * starts where the previous one ended doubles the window (up to a maximum); a jump elsewhere resets
 * it. A reader keeps one `Readahead` per open file handle or stream and prefetches
 * `[end, end + window)` after serving each read.
 */

/** First window after two sequential reads: 1 MiB is about 16 chunks, one coalesced request. */
export const INITIAL_READAHEAD = 1024 * 1024;
/** Largest window: 32 MiB keeps a single stream from taking over a 256 MiB cache. */
export const MAX_READAHEAD = 32 * 1024 * 1024;

export class Readahead {
  private nextOffset = -1;
  private window = 0;
  private prefetchedUntil = 0;

  constructor(
    private readonly initial = INITIAL_READAHEAD,
    private readonly max = MAX_READAHEAD,
  ) {}

  /**
   * Record a read of `[offset, offset + length)`; returns the range to prefetch now, or undefined for
   * random access. Ranges already handed out are not handed out again, so a long sequential read
   * prefetches each byte once.
   */
  observe(offset: number, length: number): { start: number; end: number } | undefined {
    const end = offset + length;
    if (offset === this.nextOffset) {
      this.window = this.window === 0 ? this.initial : Math.min(this.max, this.window * 2);
    } else {
      this.window = 0;
      this.prefetchedUntil = 0;
    }
    this.nextOffset = end;
    if (this.window === 0) return undefined;
    const start = Math.max(end, this.prefetchedUntil);
    const until = end + this.window;
    if (until <= start) return undefined;
    this.prefetchedUntil = until;
    return { start, end: until };
  }

  /** Current window in bytes. */
  get size(): number {
    return this.window;
  }
}

/**
 * How far a read may land from the furthest byte read so far and still count as sequential. The
 * kernel keeps several reads of one file in flight on different FUSE threads, so a sequential reader's
 * requests reach us slightly out of order (measured: a quarter of them during a cold `dd`); 2 MiB
 * covers the kernel's readahead window even when an administrator raises read_ahead_kb.
 */
export const REORDER_SLACK = 2 * 1024 * 1024;

/**
 * Smallest prefetch issued once a sequential window is established: 4 MiB, one whole extent (one
 * storage read, one decode job). In 1 MiB steps each extent took a whole I/O buffer for a quarter of
 * its size and a cold pass waited on buffers (measured: 40 ms waits per step).
 */
export const PREFETCH_STEP = 4 * 1024 * 1024;

/**
 * A sequential detector that tolerates reordering: the kernel keeps several reads of one file in
 * flight on different FUSE threads, and an HTTP client reading a file over several connections gets
 * its ranges answered out of order.
 * A read within `REORDER_SLACK` of the furthest point is reported to the window logic as the next
 * sequential read; anything further is a jump and resets the window, as for any random reader.
 */
export class ReorderedReadahead extends Readahead {
  private furthest = -1;
  private sequentialEnd = -1;
  private pendingStart = 0;
  private pendingEnd = 0;

  /** Record a read; returns the range to prefetch now (at least PREFETCH_STEP long), if any. */
  override observe(offset: number, length: number): { start: number; end: number } | undefined {
    const end = offset + length;
    const near = this.furthest >= 0 && offset <= this.furthest + REORDER_SLACK && end >= this.furthest - REORDER_SLACK;
    const at = near ? this.sequentialEnd : offset;
    this.furthest = near ? Math.max(this.furthest, end) : end;
    this.sequentialEnd = at + length;
    const ahead = super.observe(at, length);
    if (!ahead) {
      this.pendingStart = this.pendingEnd = 0;
      return undefined;
    }
    // Once the window is at its maximum, each 128 KiB read extends it by 128 KiB; prefetching in
    // steps of PREFETCH_STEP instead turns ~8 small storage reads into one coalesced request.
    if (this.pendingEnd === ahead.start && this.pendingEnd > this.pendingStart) this.pendingEnd = ahead.end;
    else [this.pendingStart, this.pendingEnd] = [ahead.start, ahead.end];
    if (this.pendingEnd - this.pendingStart < PREFETCH_STEP) return undefined;
    const out = { start: this.pendingStart, end: this.pendingEnd };
    this.pendingStart = this.pendingEnd;
    return out;
  }
}
