/**
 * HTTP(S) objects read with Range GETs (docs/operations.md, "HTTP archives").
 *
 * Why node:http/https and not the global fetch (undici): we need the raw bytes exactly as stored
 * (fetch transparently decompresses a `Content-Encoding` it was sent anyway), the Node error codes of
 * a failed connection to decide what is worth a retry (ECONNRESET vs ENOTFOUND vs a TLS failure), an
 * inactivity timeout rather than a whole-request deadline (a 16 MiB coalesced read on a slow link is
 * legitimate), and the ability to hang up as soon as a server that ignores Range starts sending a
 * huge body. A shared keep-alive Agent per protocol gives the connection reuse fetch would give.
 *
 * Versions never mix: the first response pins the object's ETag and size; every later request sends
 * `If-Match` (strong ETags only, which is all `If-Match` can match) and every response is compared
 * again, because many servers and CDNs ignore `If-Match`. A difference is `ARCHIVE_CHANGED`.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { HexzError, throwIfAborted, type ErrorCode } from '../src/errors.js';
import type { HttpOptions } from './index.js';
import { checkRange, type ReadOptions, type Storage, type StorageStat } from './types.js';

/** Longest a server may stay silent (before the headers or between body bytes): 30 s rides out a slow origin without hanging forever. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
/** Retries after the first attempt: 3 (about 0.1 + 0.2 + 0.4 s of backoff) covers a restarting server or a dropped keep-alive socket. */
export const DEFAULT_HTTP_RETRIES = 3;
/** Redirect hops followed per request: 5, as browsers' "too many redirects" is far above what any sane setup needs. */
export const MAX_REDIRECTS = 5;
/** Largest whole body accepted from a server that ignores Range (8 MiB): small archives still work, big ones fail instead of downloading gigabytes per read. */
export const MAX_UNRANGED_BODY = 8 * 1024 * 1024;
/** First backoff step; doubled per retry, with full jitter so many clients do not retry in lockstep. */
const BACKOFF_BASE_MS = 100;
/** Cap of one backoff step (and of a server's Retry-After) so a retry loop never stalls for minutes. */
const BACKOFF_MAX_MS = 10_000;
/** Sockets per host and protocol: enough for the cache's parallel loads and readahead, few enough to be polite. */
const MAX_SOCKETS = 32;

/** Connection failures worth another attempt: the server or a middlebox dropped us, not a permanent error. */
const RETRYABLE_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'EAI_AGAIN', 'HPE_INVALID_CONSTANT']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** TLS failures that mean "this certificate is not trusted here" (as opposed to a broken handshake). */
const TLS_TRUST_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

let agents: { http: http.Agent; https: https.Agent } | undefined;

/** One keep-alive agent per protocol for the whole process, so every archive reuses connections. */
function agentFor(protocol: string): http.Agent {
  agents ??= {
    http: new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: 'lifo' }),
  };
  return protocol === 'https:' ? agents.https : agents.http;
}

/** The URL without credentials, for messages and error context. */
function redact(url: URL | string): string {
  const u = new URL(url);
  if (!u.username && !u.password) return u.href;
  u.username = '';
  u.password = '';
  return u.href;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body for 200/206; empty for other statuses. */
  body: Buffer;
  /** A 200 whose body was larger than the caller accepts: the connection was dropped unread. */
  tooLarge?: number;
}

/** `Content-Range: bytes a-b/total` (or `bytes * /total` on 416); total undefined when `*`. */
interface ContentRange {
  start?: number;
  end?: number;
  total?: number;
}

function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === '*' ? undefined : Number(m[3]),
  };
}

/** Milliseconds a `Retry-After` header asks for (seconds or an HTTP date), capped. */
function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(BACKOFF_MAX_MS, Math.max(0, ms)) : undefined;
}

/**
 * A failed attempt, carrying whether another one may help and what to call it if none does. `status`
 * is set only when the HTTP status itself was the failure (a cut body is not "status 206").
 */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code: ErrorCode,
    readonly status?: number,
    readonly waitMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface Pinned {
  etag?: string;
  size?: number;
  lastModified?: string;
}

class HttpStorage implements Storage {
  readonly backend = 'http';
  /** The URL without credentials: it travels into error messages, logs and base-location hints. */
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly headers: Record<string, string>;
  /** Where requests go: the URL, or the target of a permanent (301/308) redirect. */
  private target: URL;
  /** Origin of the URL the user named: the only one that receives `headers` (credentials). */
  private readonly origin: string;
  private pinned?: Pinned;

  constructor(url: string, opts: HttpOptions) {
    this.url = redact(url);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    this.retries = Math.max(0, opts.retries ?? DEFAULT_HTTP_RETRIES);
    const target = new URL(url);
    const headers: Record<string, string> = { ...opts.headers };
    if (target.username || target.password) {
      // Credentials in the URL become Basic auth and are kept out of messages.
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
      target.username = '';
      target.password = '';
    }
    this.target = target;
    this.origin = target.origin;
    this.headers = headers;
  }

  // ---- pinning ------------------------------------------------------------------------------------

  /** Record the first version seen, and refuse any other one afterwards. */
  private pin(reply: Reply, size: number | undefined): void {
    const etag = typeof reply.headers.etag === 'string' ? reply.headers.etag : undefined;
    const lastModified = reply.headers['last-modified'];
    const p = this.pinned;
    if (!p) {
      this.pinned = { etag, size, lastModified };
      return;
    }
    const changed =
      (p.etag !== undefined && etag !== undefined && etag !== p.etag) ||
      (p.size !== undefined && size !== undefined && size !== p.size) ||
      (p.etag === undefined && p.lastModified !== undefined && lastModified !== undefined && lastModified !== p.lastModified);
    if (changed) {
      throw new HexzError('ARCHIVE_CHANGED', `${this.url} changed while it was being read (ETag ${p.etag ?? '-'} → ${etag ?? '-'}, size ${p.size ?? '?'} → ${size ?? '?'})`, {
        url: this.url,
        backend: 'http',
        expected: p.etag,
        actual: etag,
      });
    }
    // A first reply without validators (a 416, a bare proxy) pins whatever later replies carry.
    p.size ??= size;
    p.etag ??= etag;
    p.lastModified ??= lastModified;
  }

  private statOf(p: Pinned & { size: number }): StorageStat {
    const lastModified = p.lastModified ? new Date(p.lastModified) : undefined;
    return { size: p.size, etag: p.etag, lastModified: lastModified && !Number.isNaN(lastModified.getTime()) ? lastModified : undefined };
  }

  private knownSize(): number | undefined {
    return this.pinned?.size;
  }

  // ---- one exchange ----------------------------------------------------------------------------

  /**
   * One request to one URL (no redirects, no retries). Resolves with the status, headers and, for
   * 200/206, the whole body; rejects with an AttemptError saying whether a retry may help.
   */
  private exchange(method: 'GET' | 'HEAD', target: URL, headers: Record<string, string>, maxUnranged: number, signal?: AbortSignal): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const mod = target.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (err: unknown, reply?: Reply) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(reply!);
      };
      const onAbort = () => {
        req.destroy();
        finish(signal!.reason ?? new DOMException('aborted', 'AbortError'));
      };
      const req = mod.request(target, { method, headers, agent: agentFor(target.protocol) });
      req.setTimeout(this.timeoutMs, () => {
        req.destroy();
        finish(new AttemptError(`no response from ${redact(target)} for ${this.timeoutMs} ms`, true, 'TIMEOUT'));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? '';
        const retryable = RETRYABLE_ERRNO.has(code) || /socket hang up/i.test(err.message);
        // A certificate the client does not trust: say how to trust a private CA (docs/operations.md).
        const hint = TLS_TRUST_ERRORS.has(code) ? '; to trust a private or self-signed CA, set NODE_EXTRA_CA_CERTS=/path/to/ca.pem' : '';
        finish(new AttemptError(`${method} ${redact(target)}: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}${hint}`, retryable, 'STORAGE_IO', undefined, undefined, { cause: err }));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (method === 'HEAD' || (status !== 200 && status !== 206)) {
          res.resume(); // drain so the socket goes back to the pool
          res.on('end', () => finish(null, { status, headers: res.headers, body: Buffer.alloc(0) }));
          res.on('error', () => finish(null, { status, headers: res.headers, body: Buffer.alloc(0) }));
          return;
        }
        const encoding = res.headers['content-encoding'];
        if (encoding && encoding !== 'identity') {
          req.destroy();
          finish(new AttemptError(`${redact(target)} answered with Content-Encoding ${encoding} although identity was asked for; archives must be served as stored`, false, 'STORAGE_IO', status));
          return;
        }
        const lengthHeader = res.headers['content-length'];
        const announced = lengthHeader === undefined ? undefined : Number(lengthHeader);
        if (status === 200 && announced !== undefined && announced > maxUnranged) {
          req.destroy(); // hang up rather than download a whole object we cannot use
          finish(null, { status, headers: res.headers, body: Buffer.alloc(0), tooLarge: announced });
          return;
        }
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.byteLength;
          if (status === 200 && received > maxUnranged) {
            req.destroy();
            finish(null, { status, headers: res.headers, body: Buffer.alloc(0), tooLarge: received });
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (announced !== undefined && received !== announced) {
            finish(new AttemptError(`${redact(target)}: body cut short (${received} of ${announced} bytes)`, received < announced, 'STORAGE_IO'));
            return;
          }
          // One copy to make the body contiguous; a single chunk is used as is.
          finish(null, { status, headers: res.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received) });
        });
        const cut = (err?: Error) => finish(new AttemptError(`${redact(target)}: connection lost after ${received}${announced === undefined ? '' : ` of ${announced}`} body bytes${err ? ` (${err.message})` : ''}`, true, 'STORAGE_IO', undefined, undefined, { cause: err }));
        res.on('error', cut);
        res.on('close', () => {
          if (!res.complete) cut();
        });
      });
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      req.end();
    });
  }

  // ---- one logical request: redirects + retries + status mapping ---------------------------------

  /**
   * Send `method` with an optional Range, following redirects and retrying transient failures. Returns
   * replies whose status is in `accept`; maps every other outcome to a typed HexzError.
   */
  private async request(method: 'GET' | 'HEAD', range: string | undefined, accept: readonly number[], signal: AbortSignal | undefined, maxUnranged = MAX_UNRANGED_BODY): Promise<Reply> {
    const ctx = { url: this.url, backend: 'http' };
    let last: AttemptError | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      throwIfAborted(signal, ctx);
      if (attempt > 0) {
        const backoff = Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
        try {
          await sleep(Math.max(backoff, last?.waitMs ?? 0), signal);
        } catch (err) {
          throw new HexzError('ABORTED', 'aborted', ctx, { cause: err });
        }
      }
      try {
        const reply = await this.followRedirects(method, range, maxUnranged, signal);
        if (accept.includes(reply.status)) return reply;
        throw this.statusError(reply, method, range);
      } catch (err) {
        if (err instanceof HexzError) throw err;
        if (signal?.aborted || (err as Error)?.name === 'AbortError') throw new HexzError('ABORTED', 'aborted', ctx, { cause: err });
        if (!(err instanceof AttemptError)) throw new HexzError('STORAGE_IO', `${method} ${this.url}: ${(err as Error)?.message ?? err}`, ctx, { cause: err });
        last = err;
        if (!err.retryable) break;
      }
    }
    const attempts = `${this.retries + 1} attempt${this.retries === 0 ? '' : 's'}`;
    const what = last?.status ? `last status ${last.status}` : (last?.message ?? 'unknown error');
    const message = last?.retryable ? `${method} ${this.url} failed after ${attempts} (${what})` : (last?.message ?? `${method} ${this.url} failed`);
    throw new HexzError(last?.code ?? 'STORAGE_IO', message, { ...ctx, status: last?.status, attempts: this.retries + 1 }, { cause: last });
  }

  /** Follow up to MAX_REDIRECTS hops; 301/308 targets are remembered for later requests. */
  private async followRedirects(method: 'GET' | 'HEAD', range: string | undefined, maxUnranged: number, signal: AbortSignal | undefined): Promise<Reply> {
    let target = this.target;
    let permanent = true;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { ...this.headers, 'accept-encoding': 'identity' };
      // Credentials are for the origin the user named: never forward them to another host.
      if (target.origin !== this.origin) {
        for (const name of Object.keys(headers)) if (/^(authorization|cookie)$/i.test(name)) delete headers[name];
      }
      if (range) headers.range = range;
      const etag = this.pinned?.etag;
      if (etag && !etag.startsWith('W/')) headers['if-match'] = etag;
      const reply = await this.exchange(method, target, headers, maxUnranged, signal);
      if (!REDIRECTS.has(reply.status)) {
        if (permanent && target !== this.target) this.target = target;
        return reply;
      }
      const location = reply.headers.location;
      if (!location) throw new AttemptError(`${redact(target)} answered ${reply.status} without a Location`, false, 'STORAGE_IO', reply.status);
      if (hop >= MAX_REDIRECTS) throw new AttemptError(`${this.url}: more than ${MAX_REDIRECTS} redirects`, false, 'STORAGE_IO', reply.status);
      permanent &&= reply.status === 301 || reply.status === 308;
      target = new URL(location, target);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new AttemptError(`${this.url} redirects to unsupported ${target.protocol} URL`, false, 'STORAGE_IO', reply.status);
      }
    }
  }

  /** Typed error (or a retryable AttemptError) for a status the caller did not accept. */
  private statusError(reply: Reply, method: string, range: string | undefined): Error {
    const s = reply.status;
    const ctx = { url: this.url, backend: 'http', status: s };
    if (s === 404 || s === 410) return new HexzError('ARCHIVE_NOT_FOUND', `${this.url} not found (HTTP ${s})`, ctx);
    if (s === 401 || s === 403) return new HexzError('STORAGE_DENIED', `${this.url} refused access (HTTP ${s}); check HttpOptions.headers / credentials`, ctx);
    if (s === 412) {
      return new HexzError('ARCHIVE_CHANGED', `${this.url} changed while it was being read (If-Match ${this.pinned?.etag} failed)`, { ...ctx, expected: this.pinned?.etag });
    }
    if (s === 429 || s >= 500) return new AttemptError(`${method} ${this.url}: HTTP ${s}`, true, 'STORAGE_IO', s, retryAfterMs(reply.headers['retry-after'] as string | undefined));
    return new HexzError('STORAGE_IO', `${method} ${this.url}${range ? ` (Range ${range})` : ''}: unexpected HTTP ${s}`, ctx);
  }

  private unranged(reply: Reply): HexzError {
    return new HexzError(
      'UNSUPPORTED',
      `${this.url} ignores HTTP Range requests (it answered 200 with the whole ${reply.tooLarge}-byte object); serve archives from a server with Range support`,
      { url: this.url, backend: 'http', size: reply.tooLarge },
    );
  }

  // ---- Storage ---------------------------------------------------------------------------------

  async stat(opts?: ReadOptions): Promise<StorageStat> {
    const p = this.pinned;
    if (p?.size !== undefined) return this.statOf(p as Pinned & { size: number });
    // 403 too: a presigned URL is signed for GET only, and its HEAD is refused.
    const reply = await this.request('HEAD', undefined, [200, 403, 405, 501], opts?.signal);
    const length = Number(reply.headers['content-length']);
    if (reply.status === 200 && reply.headers['content-length'] !== undefined && Number.isSafeInteger(length)) {
      this.pin(reply, length);
    } else {
      // No usable HEAD: a one-byte range tells the size through Content-Range (a real 403 fails here).
      const probe = await this.request('GET', 'bytes=0-0', [200, 206, 416], opts?.signal);
      const cr = parseContentRange(probe.headers['content-range'] as string | undefined);
      const size = probe.status === 200 ? probe.body.byteLength : cr?.total;
      if (size === undefined || probe.tooLarge !== undefined) {
        throw new HexzError('UNSUPPORTED', `cannot learn the size of ${this.url}: no Content-Length on HEAD and no Content-Range on GET`, { url: this.url, backend: 'http' });
      }
      this.pin(probe, size);
    }
    return this.statOf(this.pinned as Pinned & { size: number });
  }

  async read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) checkRange(offset, length, 0, this.url);
    const known = this.knownSize();
    if (known !== undefined) checkRange(offset, length, known, this.url);
    if (length === 0) {
      // Nothing to fetch, but a zero-length read past the end is still out of range.
      if (known === undefined) checkRange(offset, 0, (await this.stat(opts)).size, this.url);
      return new Uint8Array(0);
    }
    const last = offset + length - 1;
    const reply = await this.request('GET', `bytes=${offset}-${last}`, [200, 206, 416], opts?.signal);
    const cr = parseContentRange(reply.headers['content-range'] as string | undefined);
    if (reply.status === 416) {
      if (cr?.total !== undefined) this.pin(reply, cr.total);
      checkRange(offset, length, cr?.total ?? (await this.stat(opts)).size, this.url);
      throw new HexzError('STORAGE_IO', `${this.url} refused range ${offset}-${last} although it lies inside the object`, { url: this.url, backend: 'http', offset, length, status: 416 });
    }
    if (reply.status === 200) {
      if (reply.tooLarge !== undefined) throw this.unranged(reply);
      // The server ignored Range and sent everything; small enough to slice.
      this.pin(reply, reply.body.byteLength);
      checkRange(offset, length, reply.body.byteLength, this.url);
      return reply.body.subarray(offset, offset + length);
    }
    if (!cr || cr.start === undefined || cr.end === undefined) {
      throw new HexzError('STORAGE_IO', `${this.url}: 206 response without a valid Content-Range`, { url: this.url, backend: 'http', offset, length });
    }
    this.pin(reply, cr.total);
    if (cr.total !== undefined) checkRange(offset, length, cr.total, this.url); // range clipped at EOF
    if (cr.start > offset || cr.end < last || reply.body.byteLength !== cr.end - cr.start + 1) {
      throw new HexzError('STORAGE_IO', `${this.url} answered bytes ${cr.start}-${cr.end} (${reply.body.byteLength} bytes) for range ${offset}-${last}`, { url: this.url, backend: 'http', offset, length });
    }
    return reply.body.subarray(offset - cr.start, offset - cr.start + length);
  }

  async readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    if (!Number.isInteger(length) || length < 0) checkRange(0, length, 0, this.url);
    let size = this.knownSize();
    if (size === undefined && length > 0) {
      // One suffix request gives both the bytes and, via Content-Range, the size.
      const reply = await this.request('GET', `bytes=-${length}`, [200, 206, 416, 400, 501], opts?.signal);
      const cr = parseContentRange(reply.headers['content-range'] as string | undefined);
      if (reply.status === 200 && reply.tooLarge === undefined) {
        this.pin(reply, reply.body.byteLength);
        const body = reply.body;
        return { bytes: body.subarray(Math.max(0, body.byteLength - length)), stat: this.statOf(this.pinned as Pinned & { size: number }) };
      }
      if (reply.status === 206 && cr?.start !== undefined && cr.end !== undefined && cr.total !== undefined && reply.body.byteLength === cr.end - cr.start + 1) {
        this.pin(reply, cr.total);
        const want = Math.max(0, cr.total - length);
        // Trust Content-Range, not the request: some servers (s3rver) answer a suffix range with
        // other bytes than asked. Slice when they cover the tail, else ask again explicitly below.
        if (cr.start <= want && cr.end === cr.total - 1) {
          return { bytes: reply.body.subarray(want - cr.start), stat: this.statOf(this.pinned as Pinned & { size: number }) };
        }
      } else if (reply.status === 416 && cr?.total !== undefined) {
        this.pin(reply, cr.total); // an empty object, or suffix ranges refused: either way the size is known
      }
      // Anything else (suffix ranges rejected, a too-large 200, an odd 206): HEAD, then a plain range.
    }
    const stat = await this.stat(opts);
    size = stat.size;
    const n = Math.min(length, size);
    return { bytes: await this.read(size - n, n, opts), stat };
  }

  async close(): Promise<void> {
    // Connections belong to the shared keep-alive agent; idle ones time out on their own.
  }
}

/**
 * Open an `http://` or `https://` object for range reads. No request is made until the first read, so
 * opening an archive stays one suffix request (`readTail`), which also pins the object's version.
 * Options: `timeoutMs` (inactivity timeout, default DEFAULT_HTTP_TIMEOUT_MS), `retries` (default
 * DEFAULT_HTTP_RETRIES) and `headers` sent on every request to the named origin (e.g. Authorization).
 * `user:password@` in the URL becomes Basic auth and is dropped from the storage's `url`, so it never
 * shows up in messages; it is therefore not passed on to base archives found relative to this one.
 */
export async function openHttpStorage(url: string, opts: HttpOptions = {}): Promise<Storage> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new HexzError('INVALID_ARGUMENT', `invalid URL ${url}`, { url }, { cause: err });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new HexzError('UNSUPPORTED', `not an HTTP URL: ${url}`, { url });
  return new HttpStorage(url, opts);
}
