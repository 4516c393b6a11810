/**
 * Options of the storage layer, read once at the edge (CLI flags, environment, the gateway's config) and
 * handed down as one typed object (docs/operations.md, "Storage timeouts", "S3 configuration", "HTTP
 * archives"). A module of its own so that backends import their options without importing
 * `openStorage` (storage/index.ts), which imports them: no import cycle in storage/.
 */

/**
 * Longest a storage read may go without receiving a byte, before the response headers or between body
 * bytes: 5 s. A healthy origin, even a busy one, sends something well within that, while a stalled one
 * (a half-dead connection, a slow-loris proxy, NAT state dropped) never recovers on the same connection;
 * mountpoint-s3 and the AWS SDKs give up on such a read after a few seconds and retry it on a fresh
 * connection, and so does Hexz. It bounds silence, not the transfer: a large read on a slow link that
 * keeps moving is never cut off.
 */
export const DEFAULT_PROGRESS_TIMEOUT_MS = 5_000;

/** S3 settings (see docs/operations.md, "S3 configuration"). */
export interface S3Options {
  /** Custom endpoint for S3-compatible stores (MinIO, Ceph, R2…); implies path-style addressing. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /**
   * Progress timeout of GetObject/HeadObject in milliseconds (default: StorageOptions.progressTimeoutMs,
   * else DEFAULT_PROGRESS_TIMEOUT_MS): an attempt that receives nothing for this long is aborted, its
   * connection dropped, and retried.
   */
  progressTimeoutMs?: number;
}

/** HTTP(S) settings (see docs/operations.md, "HTTP archives"). */
export interface HttpOptions {
  /**
   * Progress timeout in milliseconds (default: StorageOptions.progressTimeoutMs, else
   * DEFAULT_PROGRESS_TIMEOUT_MS): the longest the server may stay silent before the headers or between
   * body bytes; the attempt is then dropped with its connection and retried.
   */
  progressTimeoutMs?: number;
  /** The former name of `progressTimeoutMs` (what `--http-timeout` sets); `progressTimeoutMs` wins. */
  timeoutMs?: number;
  /** Retries on connection errors, stalls, 5xx and 429. */
  retries?: number;
  /** Extra request headers (e.g. Authorization), sent only to the origin of the URL. */
  headers?: Record<string, string>;
}

export interface StorageOptions {
  s3?: S3Options;
  http?: HttpOptions;
  /**
   * Progress timeout of every remote backend in milliseconds, the one setting a front end exposes as
   * `--storage-timeout` / `HEXZ_STORAGE_TIMEOUT`; a backend's own `progressTimeoutMs` wins over it.
   */
  progressTimeoutMs?: number;
}

export interface WriterOptions extends StorageOptions {
  /** Replace an existing object; without it an existing one is `EXISTS` (local files and S3 alike). */
  overwrite?: boolean;
  /**
   * Interrupts the writer: once it fires, writes fail, nothing is committed (a commit that has not
   * started yet does not start), and S3 part uploads in flight are cancelled. The caller still calls
   * `abort()` to clean up.
   */
  signal?: AbortSignal;
}

/** The progress timeout in force: the first of the given settings that is set, else the default. */
export function progressTimeoutMs(...settings: Array<number | undefined>): number {
  const ms = settings.find((s) => s !== undefined);
  return ms === undefined || !(ms > 0) ? DEFAULT_PROGRESS_TIMEOUT_MS : ms;
}

/** The HTTP options of `opts`, with the storage-wide progress timeout folded in. */
export function httpOptionsOf(opts: StorageOptions): HttpOptions {
  const http = opts.http ?? {};
  return { ...http, progressTimeoutMs: progressTimeoutMs(http.progressTimeoutMs, http.timeoutMs, opts.progressTimeoutMs) };
}

/** The S3 options of `opts`, with the storage-wide progress timeout folded in. */
export function s3OptionsOf(opts: StorageOptions): S3Options {
  const s3 = opts.s3 ?? {};
  return { ...s3, progressTimeoutMs: progressTimeoutMs(s3.progressTimeoutMs, opts.progressTimeoutMs) };
}
