/**
 * Re-open once when the archive changed: the one implementation of "the object was replaced while it
 * was being read (`ARCHIVE_CHANGED`): open it again and redo the work on the new version, once". The
 * CLI (whole commands) and the gateway (one response) use it; the FUSE mount, which lives for hours,
 * learns of a change through `Archive.onChange` instead (fuse/reopen.ts).
 */
import { isHexzError, type HexzError } from '../errors.js';

export interface FreshArchiveOptions<H, T> {
  /** Open the archive (or take a lease on it): a new version after a change. */
  open: () => Promise<H>;
  /** The work. A handle whose work succeeded is the caller's to release (a response may still be streaming from it). */
  run: (h: H) => Promise<T>;
  /** Release a handle whose work failed, before any retry; `changed` says the failure was ARCHIVE_CHANGED. */
  release: (h: H, changed: boolean) => void | Promise<void>;
  /** Whether a retry is still possible (e.g. nothing was written to stdout yet). Default: yes. */
  canRetry?: (err: HexzError) => boolean;
  /** Told before the retry. */
  onRetry?: (err: HexzError) => void;
}

/** `run(open())`, and once more on a fresh `open()` when it failed with `ARCHIVE_CHANGED`. */
export async function withFreshArchive<H, T>(opts: FreshArchiveOptions<H, T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const h = await opts.open();
    try {
      return await opts.run(h);
    } catch (err) {
      const changed = isHexzError(err, 'ARCHIVE_CHANGED');
      await opts.release(h, changed);
      if (!changed || attempt > 0 || !(opts.canRetry?.(err) ?? true)) throw err;
      opts.onRetry?.(err);
    }
  }
}
