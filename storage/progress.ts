/**
 * A progress timeout for one attempt of a read whose client has none of its own (the S3 SDK's socket
 * timeout is shared with uploads and far too long for reads; see S3Options.progressTimeoutMs): an abort
 * signal that fires when no progress was reported for `timeoutMs`, or when the caller's signal fires.
 * Aborting the request destroys its socket, so the retry runs on a fresh connection.
 */
export class ProgressWatch {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  private paused = false;
  private readonly onParentAbort = () => this.controller.abort(this.parent?.reason);
  /** Whether the attempt was aborted for want of progress (not by the caller). */
  stalled = false;
  /** What the attempt was waiting for, for messages: set by the reader as it goes. */
  phase = 'before the response headers';
  /** Called once on a stall, e.g. to destroy a body stream being read. */
  onStall?: () => void;

  constructor(
    readonly timeoutMs: number,
    private readonly parent?: AbortSignal,
  ) {
    this.timer = this.arm();
    if (parent?.aborted) this.controller.abort(parent.reason);
    else parent?.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Aborts the attempt: on a stall, or when the caller's signal fires. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private arm(): NodeJS.Timeout {
    return setTimeout(() => {
      this.stalled = true;
      this.controller.abort(new Error(`no progress for ${this.timeoutMs} ms ${this.phase}`));
      this.onStall?.();
    }, this.timeoutMs);
  }

  /** Progress was made (bytes arrived, or a new attempt was sent): the timeout starts again. */
  touch(): void {
    if (this.stalled) return;
    if (this.paused) {
      this.paused = false;
      this.timer = this.arm();
    } else this.timer.refresh();
  }

  /**
   * Nothing is expected until the next `touch()`: the client's own backoff between two of its attempts
   * (e.g. after a 503) is waiting by design, not a stalled origin.
   */
  pause(): void {
    if (this.stalled || this.paused) return;
    this.paused = true;
    clearTimeout(this.timer);
  }

  /** The attempt is over, whichever way: stop watching. */
  done(): void {
    this.paused = true;
    clearTimeout(this.timer);
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }
}
