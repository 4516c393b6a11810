/**
 * HTTP(S) objects read with Range GETs (docs/operations.md, "HTTP archives"): the Storage behaviour of
 * ./ranged.ts over the client of ./http-transport.ts (one exchange, redirects, retries, the progress
 * timeout, the keep-alive pool; why undici is at its top).
 *
 * Versions never mix: the first response pins the object's ETag and size; every later request sends
 * `If-Match` (strong ETags only, which is all `If-Match` can match) and every response is compared
 * again (./pinning.ts), because many servers and CDNs ignore `If-Match`. A difference is
 * `ARCHIVE_CHANGED`.
 */
import { HexzError } from '../src/errors.js';
import { parseContentRange, spanOf } from './content-range.js';
import { header, HttpTransport, type Reply } from './http-transport.js';
import { progressTimeoutMs, type HttpOptions } from './options.js';
import { httpDate, type Version } from './pinning.js';
import { RangedStorage, type RangeReply } from './ranged.js';
import type { Storage } from './types.js';

export { DEFAULT_HTTP_RETRIES, MAX_REDIRECTS } from './http-transport.js';

/** Largest whole body accepted from a server that ignores Range (8 MiB): small archives still work, big ones fail instead of downloading gigabytes per read. */
export const MAX_UNRANGED_BODY = 8 * 1024 * 1024;

/** Statuses a suffix request may get besides a range: 416 (empty object, or suffixes refused), 400/501 (suffixes not understood). */
const SUFFIX_ACCEPT = [200, 206, 416, 400, 501] as const;
const RANGE_ACCEPT = [200, 206, 416] as const;

function versionOf(reply: Reply): Version {
  return { etag: header(reply, 'etag'), lastModified: httpDate(header(reply, 'last-modified')) };
}

class HttpStorage extends RangedStorage {
  constructor(private readonly transport: HttpTransport) {
    super(transport.url, 'http');
  }

  /** The pinned ETag as `If-Match`, unless weak (`W/`), which `If-Match` can never match. */
  private ifMatch(): string | undefined {
    const etag = this.pin.etag;
    return etag && !etag.startsWith('W/') ? etag : undefined;
  }

  protected async fetchRange(range: string, suffix: boolean, signal: AbortSignal | undefined): Promise<RangeReply> {
    const reply = await this.transport.request('GET', { range, ifMatch: this.ifMatch() }, suffix ? SUFFIX_ACCEPT : RANGE_ACCEPT, signal, MAX_UNRANGED_BODY);
    const version = versionOf(reply);
    const cr = parseContentRange(header(reply, 'content-range'));
    if (reply.status === 416) return { kind: 'unsatisfiable', total: cr?.total, version };
    if (reply.status === 200) {
      if (reply.tooLarge === undefined) {
        // The server ignored Range and sent everything; small enough to slice.
        return { kind: 'bytes', span: { bytes: reply.body, start: 0, total: reply.body.byteLength }, version };
      }
      if (suffix) return { kind: 'unusable' }; // a HEAD and a plain range will tell
      throw this.unranged(reply.tooLarge);
    }
    if (reply.status === 206) {
      const span = spanOf(cr, reply.body);
      if (span) return { kind: 'bytes', span, version };
      if (suffix) return { kind: 'unusable' };
      throw new HexzError('STORAGE_IO', `${this.url}: 206 response for ${range} without a valid Content-Range (${header(reply, 'content-range') ?? 'none'}, ${reply.body.byteLength} bytes)`, {
        url: this.url,
        backend: 'http',
      });
    }
    return { kind: 'unusable' }; // suffix ranges refused (400, 501)
  }

  protected async fetchStat(signal: AbortSignal | undefined): Promise<Version & { size: number }> {
    // 403 too: a presigned URL is signed for GET only, and its HEAD is refused.
    const reply = await this.transport.request('HEAD', { ifMatch: this.ifMatch() }, [200, 403, 405, 501], signal, MAX_UNRANGED_BODY);
    const lengthHeader = header(reply, 'content-length');
    const length = Number(lengthHeader);
    if (reply.status === 200 && lengthHeader !== undefined && Number.isSafeInteger(length)) return { ...versionOf(reply), size: length };
    // No usable HEAD: a one-byte range tells the size through Content-Range (a real 403 fails here).
    const probe = await this.transport.request('GET', { range: 'bytes=0-0', ifMatch: this.ifMatch() }, RANGE_ACCEPT, signal, MAX_UNRANGED_BODY);
    const size = probe.status === 200 ? probe.body.byteLength : parseContentRange(header(probe, 'content-range'))?.total;
    if (size === undefined || probe.tooLarge !== undefined) {
      throw new HexzError('UNSUPPORTED', `cannot learn the size of ${this.url}: no Content-Length on HEAD and no Content-Range on GET`, { url: this.url, backend: 'http' });
    }
    return { ...versionOf(probe), size };
  }

  private unranged(size: number): HexzError {
    return new HexzError(
      'UNSUPPORTED',
      `${this.url} ignores HTTP Range requests (it answered 200 with the whole ${size}-byte object); serve archives from a server with Range support`,
      { url: this.url, backend: 'http', size },
    );
  }
}

/**
 * Open an `http://` or `https://` object for range reads. No request is made until the first read, so
 * opening an archive stays one suffix request (`readTail`), which also pins the object's version.
 * Options: `progressTimeoutMs` (silence allowed before the headers and between body bytes, default
 * DEFAULT_PROGRESS_TIMEOUT_MS), `retries` (default DEFAULT_HTTP_RETRIES) and `headers` sent on every
 * request to the named origin (e.g. Authorization). `user:password@` in the URL becomes Basic auth and
 * is dropped from the storage's `url`, so it never shows up in messages; it is therefore not passed on
 * to base archives found relative to this one.
 */
export async function openHttpStorage(url: string, opts: HttpOptions = {}): Promise<Storage> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new HexzError('INVALID_ARGUMENT', `invalid URL ${url}`, { url }, { cause: err });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new HexzError('UNSUPPORTED', `not an HTTP URL: ${url}`, { url });
  const transport = new HttpTransport(url, { progressTimeoutMs: progressTimeoutMs(opts.progressTimeoutMs, opts.timeoutMs), retries: opts.retries, headers: opts.headers });
  return new HttpStorage(transport);
}
