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
