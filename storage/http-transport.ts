/**
 * The HTTP(S) client of the http backend: one exchange, redirects, retries with backoff, the progress
 * timeout, TLS hints and the process-wide keep-alive pool. storage/http.ts builds the Storage behaviour
 * (ranges, suffix reads, stat) on top of `HttpTransport.request` (docs/operations.md, "HTTP archives").
 *
 * Why undici's `request` (undici 7, whose engines match ours) and not node:http: measured on this machine
 * in the same runs (bench/http-transport.mjs: loopback range server, medians of 5 repetitions, three
 * runs), undici was never slower and mostly faster: 64 KiB ranges 1.06–1.52× the requests/s of
 * node:http one at a time and 1.19–1.51× with 8 in flight; 4 MiB ranges 1.01–1.30× the throughput
 * (numbers in docs/operations.md). It also keeps what the node:http client was chosen for:
 * - raw bytes: `request` (unlike `fetch`) never decodes a `Content-Encoding`; we ask for identity and
 *   refuse anything else, so archives are read as stored;
 * - error codes to decide retries: connection errors keep their errno (ECONNRESET, ECONNREFUSED,
 *   EAI_AGAIN …) or carry undici's own (UND_ERR_SOCKET, UND_ERR_HEADERS_TIMEOUT …), TLS failures their
 *   OpenSSL code;
 * - a progress timeout, not a deadline: `headersTimeout` and `bodyTimeout` bound the silence before the
 *   headers and between body bytes, and destroy the socket, so a retry runs on a fresh connection;
 * - hanging up early: destroying the body of a 200 that ignored Range drops the connection unread;
 * - a shared keep-alive pool (one Agent for the process, MAX_SOCKETS per origin).
 * undici's redirect and retry interceptors are not used: the redirect one cannot tell which hops were
 * permanent (301/308 targets are remembered here), and the retry one would resume bodies on its own
 * terms, bypassing the version pinning of the caller; the loops below are short and tested.
 */
import { Agent, request } from 'undici';
import { HexzError, throwIfAborted, type ErrorCode } from '../src/errors.js';

/** Retries after the first attempt: 3 (about 0.1 + 0.2 + 0.4 s of backoff) covers a restarting server or a dropped keep-alive socket. */
export const DEFAULT_HTTP_RETRIES = 3;
/** Redirect hops followed per request: 5, as browsers' "too many redirects" is far above what any sane setup needs. */
export const MAX_REDIRECTS = 5;
/** First backoff step; doubled per retry, with full jitter so many clients do not retry in lockstep. */
const BACKOFF_BASE_MS = 100;
/** Cap of one backoff step (and of a server's Retry-After) so a retry loop never stalls for minutes. */
const BACKOFF_MAX_MS = 10_000;
/** Sockets per origin: enough for the cache's parallel loads and readahead, few enough to be polite. */
const MAX_SOCKETS = 32;
/** Connect timeout: 10 s notices an unreachable host quickly but tolerates a slow TLS handshake (the progress timeout starts once connected). */
const CONNECT_TIMEOUT_MS = 10_000;

/** Connection failures worth another attempt: the server or a middlebox dropped us, not a permanent error. */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'HPE_INVALID_CONSTANT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
/** undici's timeouts: the server stayed silent (progress timeout) or never accepted the connection. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
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
const EMPTY = Buffer.alloc(0);
const BEFORE_HEADERS = 'before the response headers';

let pool: Agent | undefined;

/** One keep-alive pool for the whole process, so every archive reuses connections. */
function dispatcher(): Agent {
  pool ??= new Agent({ connections: MAX_SOCKETS, connect: { timeout: CONNECT_TIMEOUT_MS } });
  return pool;
}

/** Response headers, names lower-case. */
export type ReplyHeaders = Record<string, string | string[] | undefined>;

export interface Reply {
  status: number;
  headers: ReplyHeaders;
  /** The body for 200/206; empty for other statuses. */
  body: Buffer;
  /** A 200 whose body was larger than the caller accepts: the connection was dropped unread. */
  tooLarge?: number;
}

/** One header's value (the first, if repeated). */
export function header(reply: Reply, name: string): string | undefined {
  const v = reply.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The URL without credentials, for messages and error context. */
export function redact(url: URL | string): string {
  const u = new URL(url);
  if (!u.username && !u.password) return u.href;
  u.username = '';
  u.password = '';
  return u.href;
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

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return Boolean(signal?.aborted) || (err as Error)?.name === 'AbortError';
}

/** The error code of a failed request: its own, or that of its cause (undici wraps some socket errors). */
function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  return String(e?.code ?? e?.cause?.code ?? '');
}

export interface TransportOptions {
  /** Progress timeout per attempt (before the headers and between body bytes), in milliseconds. */
  progressTimeoutMs: number;
  /** Retries after the first attempt (default DEFAULT_HTTP_RETRIES). */
  retries?: number;
  /** Sent on every request to the origin of the URL (never to another origin after a redirect). */
  headers?: Record<string, string>;
}

/** What a request may add: a Range, and the pinned ETag to send as If-Match. */
export interface RequestParts {
  range?: string;
  ifMatch?: string;
}

/**
 * Requests to one URL: redirects (remembering permanent ones), retries with backoff, credentials kept to
 * the named origin, statuses mapped to the one error table.
 */
export class HttpTransport {
  /** The URL without credentials: it travels into error messages, logs and base-location hints. */
  readonly url: string;
  private readonly progressTimeoutMs: number;
  private readonly retries: number;
  private readonly headers: Record<string, string>;
  /** Where requests go: the URL, or the target of a permanent (301/308) redirect. */
  private target: URL;
  /** Origin of the URL the user named: the only one that receives `headers` (credentials). */
  private readonly origin: string;

  constructor(url: string, opts: TransportOptions) {
    this.url = redact(url);
    this.progressTimeoutMs = opts.progressTimeoutMs;
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

  /**
   * Send `method`, following redirects and retrying transient failures (connection errors, stalls, a
   * body cut short, 5xx, 429). Returns replies whose status is in `accept`; maps every other outcome to
   * a typed HexzError naming the URL: after the last attempt `TIMEOUT` when it stalled, else `STORAGE_IO`.
   * A 200 with a body over `maxUnranged` bytes is returned with `tooLarge` set and no body.
   */
  async request(method: 'GET' | 'HEAD', parts: RequestParts, accept: readonly number[], signal: AbortSignal | undefined, maxUnranged: number): Promise<Reply> {
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
        const reply = await this.followRedirects(method, parts, maxUnranged, signal);
        if (accept.includes(reply.status)) return reply;
        throw this.statusError(reply, method, parts);
      } catch (err) {
        if (err instanceof HexzError) throw err;
        if (isAbort(err, signal)) throw new HexzError('ABORTED', 'aborted', ctx, { cause: err });
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
  private async followRedirects(method: 'GET' | 'HEAD', parts: RequestParts, maxUnranged: number, signal: AbortSignal | undefined): Promise<Reply> {
    let target = this.target;
    let permanent = true;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { ...this.headers, 'accept-encoding': 'identity' };
      // Credentials are for the origin the user named: never forward them to another host.
      if (target.origin !== this.origin) {
        for (const name of Object.keys(headers)) if (/^(authorization|cookie)$/i.test(name)) delete headers[name];
      }
      if (parts.range) headers.range = parts.range;
      if (parts.ifMatch) headers['if-match'] = parts.ifMatch;
      const reply = await this.exchange(method, target, headers, maxUnranged, signal);
      if (!REDIRECTS.has(reply.status)) {
        if (permanent && target !== this.target) this.target = target;
        return reply;
      }
      const location = header(reply, 'location');
      if (!location) throw new AttemptError(`${redact(target)} answered ${reply.status} without a Location`, false, 'STORAGE_IO', reply.status);
      if (hop >= MAX_REDIRECTS) throw new AttemptError(`${this.url}: more than ${MAX_REDIRECTS} redirects`, false, 'STORAGE_IO', reply.status);
      permanent &&= reply.status === 301 || reply.status === 308;
      target = new URL(location, target);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new AttemptError(`${this.url} redirects to unsupported ${target.protocol} URL`, false, 'STORAGE_IO', reply.status);
      }
    }
  }

  /**
   * One request to one URL (no redirects, no retries). Resolves with the status, headers and, for
   * 200/206, the whole body; rejects with an AttemptError saying whether a retry may help.
   */
  private async exchange(method: 'GET' | 'HEAD', target: URL, headers: Record<string, string>, maxUnranged: number, signal: AbortSignal | undefined): Promise<Reply> {
    const where = redact(target);
    let res;
    try {
      res = await request(target, { method, headers, dispatcher: dispatcher(), signal, headersTimeout: this.progressTimeoutMs, bodyTimeout: this.progressTimeoutMs });
    } catch (err) {
      throw this.failure(err, method, where, signal, BEFORE_HEADERS);
    }
    const status = res.statusCode;
    const replyHeaders = res.headers as ReplyHeaders;
    if (method === 'HEAD' || (status !== 200 && status !== 206)) {
      // Read the (small) body so the connection goes back to the pool; its errors do not matter.
      await res.body.dump().catch(() => {});
      return { status, headers: replyHeaders, body: EMPTY };
    }
    const encoding = replyHeaders['content-encoding'];
    if (encoding && encoding !== 'identity') {
      res.body.destroy();
      throw new AttemptError(`${where} answered with Content-Encoding ${encoding} although identity was asked for; archives must be served as stored`, false, 'STORAGE_IO', status);
    }
    const lengthHeader = replyHeaders['content-length'];
    const announced = lengthHeader === undefined ? undefined : Number(lengthHeader);
    if (status === 200 && announced !== undefined && announced > maxUnranged) {
      res.body.destroy(); // hang up rather than download a whole object we cannot use
      return { status, headers: replyHeaders, body: EMPTY, tooLarge: announced };
    }
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        received += chunk.byteLength;
        if (status === 200 && received > maxUnranged) {
          res.body.destroy();
          return { status, headers: replyHeaders, body: EMPTY, tooLarge: received };
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw this.failure(err, method, where, signal, `after ${received}${announced === undefined ? '' : ` of ${announced}`} body bytes`);
    }
    if (announced !== undefined && received !== announced) {
      throw new AttemptError(`${where}: body cut short (${received} of ${announced} bytes)`, received < announced, 'STORAGE_IO');
    }
    // One copy to make the body contiguous; a single chunk is used as is.
    return { status, headers: replyHeaders, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received) };
  }

  /** An AttemptError for a request that failed `when` (an abort passes through as it is). */
  private failure(err: unknown, method: string, where: string, signal: AbortSignal | undefined, when: string): unknown {
    if (isAbort(err, signal)) return err;
    const code = codeOf(err);
    if (TIMEOUT_CODES.has(code)) {
      const what = code === 'UND_ERR_CONNECT_TIMEOUT' ? `could not connect to ${where} within ${CONNECT_TIMEOUT_MS} ms` : `no byte from ${where} for ${this.progressTimeoutMs} ms ${when}`;
      return new AttemptError(what, true, 'TIMEOUT', undefined, undefined, { cause: err });
    }
    const message = (err as Error)?.message ?? String(err);
    const retryable = RETRYABLE_CODES.has(code);
    // A certificate the client does not trust: say how to trust a private CA (docs/operations.md).
    const hint = TLS_TRUST_ERRORS.has(code) ? '; to trust a private or self-signed CA, set NODE_EXTRA_CA_CERTS=/path/to/ca.pem' : '';
    const detail = `${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
    const text = when === BEFORE_HEADERS ? `${method} ${where}: ${detail}${hint}` : `${where}: connection lost ${when} (${detail})`;
    return new AttemptError(text, retryable, 'STORAGE_IO', undefined, undefined, { cause: err });
  }

  /** Typed error (or a retryable AttemptError) for a status the caller did not accept. */
  private statusError(reply: Reply, method: string, parts: RequestParts): Error {
    const s = reply.status;
    const ctx = { url: this.url, backend: 'http', status: s };
    if (s === 404 || s === 410) return new HexzError('ARCHIVE_NOT_FOUND', `${this.url} not found (HTTP ${s})`, ctx);
    if (s === 401 || s === 403) return new HexzError('STORAGE_DENIED', `${this.url} refused access (HTTP ${s}); check HttpOptions.headers / credentials`, ctx);
    if (s === 412) {
      return new HexzError('ARCHIVE_CHANGED', `${this.url} changed while it was being read (If-Match ${parts.ifMatch} failed)`, { ...ctx, expected: parts.ifMatch });
    }
    if (s === 429 || s >= 500) return new AttemptError(`${method} ${this.url}: HTTP ${s}`, true, 'STORAGE_IO', s, retryAfterMs(header(reply, 'retry-after')));
    return new HexzError('STORAGE_IO', `${method} ${this.url}${parts.range ? ` (Range ${parts.range})` : ''}: unexpected HTTP ${s}`, ctx);
  }
}
