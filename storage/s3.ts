/**
 * S3 and S3-compatible stores (`s3://bucket/key`), through `@aws-sdk/client-s3` (docs/operations.md,
 * "S3 configuration").
 *
 * - The SDK is imported lazily, on the first S3 call: commands that never touch S3 never load it.
 * - One client per (endpoint, region, path style) in the process, so connections are reused.
 * - Reads are ranged GetObjects pinned to the first ETag (sent as `If-Match` and compared on every
 *   response, because some S3-compatible servers ignore `If-Match`): never bytes of two versions.
 * - Writes stream into a multipart upload with bounded memory. Nothing is visible before
 *   CompleteMultipartUpload, and every failure or `abort()` ends in AbortMultipartUpload, so no partial
 *   object is ever seen. Objects smaller than one part go up with a single PutObject on commit.
 * - Without `overwrite`, an existing object is refused up front (HeadObject) and the final
 *   PutObject/CompleteMultipartUpload is conditional (`If-None-Match: *`), so an object that appears
 *   meanwhile is not replaced either (on stores that honour conditional writes).
 */
import type { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { HexzError, throwIfAborted, type ErrorContext } from '../src/errors.js';
import { normalizePath } from '../src/format/file-table.js';
import type { S3Options } from './index.js';
import { checkRange, type ReadOptions, type Storage, type StorageObject, type StorageRoot, type StorageStat, type StorageWriter } from './types.js';

/** Region when neither the options nor the AWS chain (AWS_REGION, profile) name one: where S3-compatible servers expect it. */
export const DEFAULT_S3_REGION = 'us-east-1';
/** SDK attempts per request (standard retry mode: throttling, 5xx, timeouts), 4 = 3 retries with backoff. */
export const S3_MAX_ATTEMPTS = 4;
/** Connect timeout: 10 s notices an unreachable endpoint quickly but tolerates a slow TLS handshake. */
export const S3_CONNECT_TIMEOUT_MS = 10_000;
/** Socket inactivity timeout: 60 s, since S3 may take a while to answer CompleteMultipartUpload of a big object. */
export const S3_SOCKET_TIMEOUT_MS = 60_000;
/** Sockets per client: the cache's parallel loads plus the parallel part uploads of a writer. */
const S3_MAX_SOCKETS = 64;
/** Multipart part size: 8 MiB is above S3's 5 MiB minimum and small enough to keep memory bounded. */
export const S3_PART_SIZE = 8 * 1024 * 1024;
/** Parts uploaded at once: 4 keep a link busy; memory stays ≤ (4 + 1) × part size. */
export const S3_PARTS_IN_FLIGHT = 4;
/** Parts per size step: the part size doubles every 1,000 parts so 10,000 parts reach ~8 TB. */
const PARTS_PER_SIZE_STEP = 1000;
/** S3's limit on the number of parts of one upload. */
const MAX_PARTS = 10_000;
/** Extra attempts when a GetObject body is cut short (the SDK retries requests, not body streams). */
const BODY_RETRIES = 2;

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkPromise: Promise<Sdk> | undefined;

/** The SDK module, imported on first use only. */
function sdk(): Promise<Sdk> {
  sdkPromise ??= import('@aws-sdk/client-s3');
  return sdkPromise;
}

const clients = new Map<string, Promise<S3Client>>();

/** Region from the standard chain (env, shared config), or the default when it names none. */
async function chainRegion(S3: Sdk['S3Client']): Promise<string> {
  const probe = new S3({});
  try {
    return await probe.config.region();
  } catch {
    return DEFAULT_S3_REGION;
  } finally {
    probe.destroy();
  }
}

/** The shared client for these options (created on first use). */
function clientFor(opts: S3Options = {}): Promise<S3Client> {
  if (opts.endpoint !== undefined) {
    try {
      new URL(opts.endpoint);
    } catch {
      throw new HexzError('INVALID_ARGUMENT', `invalid S3 endpoint ${opts.endpoint} (give a URL such as http://localhost:9000)`, { url: opts.endpoint, backend: 's3' });
    }
  }
  const pathStyle = opts.forcePathStyle ?? opts.endpoint !== undefined;
  const key = JSON.stringify([opts.endpoint ?? '', opts.region ?? '', pathStyle]);
  let client = clients.get(key);
  if (!client) {
    client = (async () => {
      const { S3Client } = await sdk();
      const config: S3ClientConfig = {
        region: opts.region ?? (await chainRegion(S3Client)),
        endpoint: opts.endpoint,
        forcePathStyle: pathStyle,
        // Checksums only where S3 requires them: S3-compatible servers reject or mangle the newer
        // default CRC trailers, and every archive structure carries its own hash anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        retryMode: 'standard',
        maxAttempts: S3_MAX_ATTEMPTS,
        // On AWS a bucket in another region than configured still works (one extra round trip).
        followRegionRedirects: opts.endpoint === undefined,
        requestHandler: {
          connectionTimeout: S3_CONNECT_TIMEOUT_MS,
          socketTimeout: S3_SOCKET_TIMEOUT_MS,
          httpAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
          httpsAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
        },
      };
      return new S3Client(config);
    })();
    client.catch(() => clients.delete(key));
    clients.set(key, client);
  }
  return client;
}

/** Percent-decode one key segment; a segment that is not valid escaping is taken literally. */
function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

/** Key as it appears in a URL: each segment escaped, like `relativeLocation` does. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** `s3://bucket/key` → bucket and (decoded) key. */
function parseS3Url(url: string, what: 'object' | 'prefix'): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/i.exec(url);
  if (!m) throw new HexzError('INVALID_ARGUMENT', `invalid S3 URL ${url} (expected s3://bucket/${what === 'object' ? 'key' : 'prefix/'})`, { url, backend: 's3' });
  const key = (m[2] ?? '').split('/').map(decodeSegment).join('/');
  if (what === 'object' && (key === '' || key.endsWith('/'))) {
    throw new HexzError('INVALID_ARGUMENT', `S3 URL ${url} names no object (expected s3://bucket/key)`, { url, backend: 's3' });
  }
  return { bucket: m[1], key };
}

interface AwsError {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Map an SDK error to the one error table; `op` and `url` name what failed. */
function s3Error(err: unknown, op: string, url: string, signal?: AbortSignal, extra: ErrorContext = {}): HexzError {
  if (err instanceof HexzError) return err;
  const e = (err ?? {}) as AwsError;
  const name = e.name ?? e.Code ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const ctx: ErrorContext = { url, backend: 's3', ...(status ? { status } : {}), ...extra };
  const detail = e.message && e.message !== 'UnknownError' ? e.message : name || `HTTP ${status ?? '?'}`;
  if (signal?.aborted || name === 'AbortError') return new HexzError('ABORTED', 'aborted', ctx, { cause: err });
  if (name === 'NoSuchBucket') return new HexzError('ARCHIVE_NOT_FOUND', `${op} ${url}: the bucket does not exist`, ctx, { cause: err });
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return new HexzError('ARCHIVE_NOT_FOUND', `${url} not found`, ctx, { cause: err });
  if (name === 'CredentialsProviderError' || name === 'ProviderError') {
    return new HexzError(
      'STORAGE_DENIED',
      `${op} ${url}: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance/pod role)`,
      ctx,
      { cause: err },
    );
  }
  if (['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled'].includes(name) || status === 401 || status === 403) {
    return new HexzError('STORAGE_DENIED', `${op} ${url}: access denied (${detail})`, ctx, { cause: err });
  }
  if (name === 'InvalidRange' || status === 416) return new HexzError('OUT_OF_RANGE', `${op} ${url}: range not satisfiable`, ctx, { cause: err });
  if (name === 'PreconditionFailed' || status === 412) return new HexzError('ARCHIVE_CHANGED', `${url} changed while it was being read (If-Match failed)`, ctx, { cause: err });
  if (name === 'TimeoutError' || name === 'RequestTimeout' || name === 'RequestTimeoutException') return new HexzError('TIMEOUT', `${op} ${url} timed out (${detail})`, ctx, { cause: err });
  return new HexzError('STORAGE_IO', `${op} ${url} failed: ${detail}`, ctx, { cause: err });
}

interface ContentRange {
  start: number;
  end: number;
  total: number;
}

/** `bytes a-b/total` (a `*` total, which S3 never sends, gives undefined). */
function parseContentRange(value: string | undefined): ContentRange | undefined {
  const m = value ? /^bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(value) : null;
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : undefined;
}

interface Pinned {
  etag?: string;
  size: number;
  lastModified?: Date;
}

class S3Storage implements Storage {
  readonly backend = 's3';
  private pinned?: Pinned;

  constructor(
    readonly url: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
  ) {}

  /** Record the first version seen; afterwards any other ETag or size is `ARCHIVE_CHANGED`. */
  private pin(etag: string | undefined, size: number, lastModified: Date | undefined): Pinned {
    const p = this.pinned;
    if (!p) return (this.pinned = { etag, size, lastModified });
    if ((p.etag !== undefined && etag !== undefined && etag !== p.etag) || size !== p.size) {
      throw new HexzError('ARCHIVE_CHANGED', `${this.url} changed while it was being read (ETag ${p.etag ?? '-'} → ${etag ?? '-'}, size ${p.size} → ${size})`, {
        url: this.url,
        backend: 's3',
        expected: p.etag,
        actual: etag,
      });
    }
    p.etag ??= etag;
    return p;
  }

  private statOf(p: Pinned): StorageStat {
    return { size: p.size, etag: p.etag, lastModified: p.lastModified };
  }

  /**
   * One ranged GetObject, body included, retried when the body is cut short. Resolves with the bytes
   * and the Content-Range the server claims (s3rver, for one, answers `bytes=-N` with other bytes).
   */
  private async get(range: string, signal: AbortSignal | undefined): Promise<{ bytes: Uint8Array; cr?: ContentRange; etag?: string; lastModified?: Date }> {
    const { GetObjectCommand } = await sdk();
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal, { url: this.url, backend: 's3' });
      let out;
      try {
        out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: range, IfMatch: this.pinned?.etag }), { abortSignal: signal });
      } catch (err) {
        throw s3Error(err, 'GetObject', this.url, signal);
      }
      const body = out.Body as (Readable & { transformToByteArray(): Promise<Uint8Array> }) | undefined;
      const cr = parseContentRange(out.ContentRange);
      if (cr?.total === 0) {
        // An empty object has no bytes to send, whatever Content-Length claims (s3rver says 1 and
        // then sends nothing, which would hang until the socket times out).
        body?.destroy();
        return { bytes: new Uint8Array(0), cr: { start: 0, end: -1, total: 0 }, etag: out.ETag, lastModified: out.LastModified };
      }
      const onAbort = () => body?.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const bytes = body ? await body.transformToByteArray() : new Uint8Array(0);
        if (out.ContentLength !== undefined && bytes.byteLength !== out.ContentLength) {
          throw Object.assign(new Error(`body cut short (${bytes.byteLength} of ${out.ContentLength} bytes)`), { name: 'ShortBody' });
        }
        return { bytes, cr, etag: out.ETag, lastModified: out.LastModified };
      } catch (err) {
        if (signal?.aborted || attempt >= BODY_RETRIES) throw s3Error(err, 'GetObject', this.url, signal);
        // The connection dropped mid-body: the request itself succeeded, so the SDK will not retry it.
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    }
  }

  async stat(opts?: ReadOptions): Promise<StorageStat> {
    if (this.pinned) return this.statOf(this.pinned);
    const { HeadObjectCommand } = await sdk();
    let out;
    try {
      out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal: opts?.signal });
    } catch (err) {
      throw s3Error(err, 'HeadObject', this.url, opts?.signal);
    }
    return this.statOf(this.pin(out.ETag, out.ContentLength ?? 0, out.LastModified));
  }

  async read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) checkRange(offset, length, 0, this.url);
    if (this.pinned) checkRange(offset, length, this.pinned.size, this.url);
    if (length === 0) {
      // Nothing to fetch, but a zero-length read past the end is still out of range.
      if (!this.pinned) checkRange(offset, 0, (await this.stat(opts)).size, this.url);
      return new Uint8Array(0);
    }
    const last = offset + length - 1;
    let got;
    try {
      got = await this.get(`bytes=${offset}-${last}`, opts?.signal);
    } catch (err) {
      if (isHexz(err, 'OUT_OF_RANGE')) checkRange(offset, length, (await this.stat(opts)).size, this.url);
      throw err;
    }
    const { bytes, cr } = got;
    const size = cr?.total ?? bytes.byteLength; // no Content-Range: the whole object came back
    this.pin(got.etag, size, got.lastModified);
    checkRange(offset, length, size, this.url); // a range clipped at the end of the object
    const start = cr?.start ?? 0;
    if (start > offset || start + bytes.byteLength < offset + length) {
      throw new HexzError('STORAGE_IO', `${this.url} answered bytes ${start}-${start + bytes.byteLength - 1} for range ${offset}-${last}`, { url: this.url, backend: 's3', offset, length });
    }
    return bytes.subarray(offset - start, offset - start + length);
  }

  async readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    if (!Number.isInteger(length) || length < 0) checkRange(0, length, 0, this.url);
    if (!this.pinned && length > 0) {
      // One suffix request gives both the bytes and, via Content-Range, the size.
      let got;
      try {
        got = await this.get(`bytes=-${length}`, opts?.signal);
      } catch (err) {
        // An empty object has no satisfiable range; HeadObject below tells.
        if (!isHexz(err, 'OUT_OF_RANGE')) throw err;
      }
      if (got) {
        const size = got.cr?.total ?? got.bytes.byteLength;
        const p = this.pin(got.etag, size, got.lastModified);
        const start = got.cr?.start ?? 0;
        const want = Math.max(0, size - length);
        // Trust Content-Range, not the request: slice when the bytes cover the tail, else ask again.
        if (start <= want && start + got.bytes.byteLength === size) {
          return { bytes: got.bytes.subarray(want - start), stat: this.statOf(p) };
        }
      }
    }
    const stat = await this.stat(opts);
    const n = Math.min(length, stat.size);
    return { bytes: await this.read(stat.size - n, n, opts), stat };
  }

  async close(): Promise<void> {
    // The client is shared by every S3 object of the process; nothing to release per object.
  }
}

function isHexz(err: unknown, code: HexzError['code']): boolean {
  return err instanceof HexzError && err.code === code;
}

/**
 * Open `s3://bucket/key` for range reads. No request is made until the first read, so opening an
 * archive stays one suffix GetObject (`readTail`), which also pins the object's ETag. Options name a
 * custom endpoint (MinIO, Ceph, R2…; path-style addressing by default then) and the region; credentials
 * come from the default AWS chain.
 */
export async function openS3Storage(url: string, opts: S3Options = {}): Promise<Storage> {
  const { bucket, key } = parseS3Url(url, 'object');
  return new S3Storage(url, await clientFor(opts), bucket, key);
}

// ---- writer ---------------------------------------------------------------------------------------

/** Size of part `n` (1-based): S3_PART_SIZE, doubled every PARTS_PER_SIZE_STEP parts. */
function partSizeFor(n: number): number {
  return S3_PART_SIZE * 2 ** Math.floor((n - 1) / PARTS_PER_SIZE_STEP);
}

class S3Writer implements StorageWriter {
  readonly backend = 's3';
  bytesWritten = 0;
  private state: 'open' | 'committing' | 'done' | 'aborted' = 'open';
  /** The part being filled, and how much of it is. */
  private part?: Buffer;
  private filled = 0;
  private uploadId?: string;
  private creating?: Promise<void>;
  private nextPart = 1;
  private readonly done: Array<{ PartNumber: number; ETag: string }> = [];
  private readonly inflight = new Set<Promise<void>>();
  /** Part buffers whose upload finished, reused for later parts of the same size. */
  private spare: Buffer[] = [];
  private failure?: HexzError;
  /** The one abort of the multipart upload (shared by every caller, so all of them can wait for it). */
  private aborting?: Promise<void>;

  constructor(
    readonly url: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly opts: S3WriterOptions,
  ) {}

  private ctx(): ErrorContext {
    return { url: this.url, backend: 's3', ...(this.uploadId ? { uploadId: this.uploadId } : {}) };
  }

  /**
   * Throw unless the writer can take more: a failure recorded by a background part upload, or an
   * abort signal that fired, aborts the multipart upload before it is reported (so it is never left
   * pending when the failure surfaces on the next write or on commit).
   */
  private async ensureOpen(op: string): Promise<void> {
    if (!this.failure && this.opts.signal?.aborted && this.state === 'open') {
      this.failure = new HexzError('ABORTED', `upload of ${this.url} was interrupted`, this.ctx(), { cause: this.opts.signal.reason });
    }
    if (this.failure) throw await this.failWith(this.failure, op);
    if (this.state !== 'open') throw new HexzError(this.state === 'aborted' ? 'ABORTED' : 'INVALID_ARGUMENT', `writer of ${this.url} is ${this.state === 'aborted' ? 'aborted' : 'already committed'}`, this.ctx());
  }

  async write(bytes: Uint8Array): Promise<void> {
    await this.ensureOpen('write');
    try {
      let off = 0;
      while (off < bytes.byteLength) {
        this.part ??= this.takeBuffer(partSizeFor(this.nextPart));
        const n = Math.min(bytes.byteLength - off, this.part.byteLength - this.filled);
        this.part.set(bytes.subarray(off, off + n), this.filled); // copy: the caller may reuse `bytes`
        this.filled += n;
        off += n;
        this.bytesWritten += n;
        if (this.filled === this.part.byteLength) await this.sendPart();
      }
    } catch (err) {
      throw await this.failWith(err, 'write');
    }
  }

  private takeBuffer(size: number): Buffer {
    const b = this.spare.pop();
    if (b && b.byteLength === size) return b;
    this.spare = []; // sizes grew: older buffers are of no further use
    return Buffer.allocUnsafe(size);
  }

  private async createUpload(): Promise<void> {
    const { CreateMultipartUploadCommand } = await sdk();
    const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key }));
    if (!out.UploadId) throw new HexzError('STORAGE_IO', `CreateMultipartUpload of ${this.url} returned no upload id`, this.ctx());
    this.uploadId = out.UploadId;
  }

  /**
   * Hand the filled part to an upload in the background; waits first while S3_PARTS_IN_FLIGHT parts
   * are uploading, which is the backpressure `write` applies to the caller.
   */
  private async sendPart(): Promise<void> {
    const buf = this.part!;
    const len = this.filled;
    this.part = undefined;
    this.filled = 0;
    const stopped = () => {
      if (this.failure) throw this.failure;
      if (this.state === 'aborted') throw new HexzError('ABORTED', `upload of ${this.url} was aborted`, this.ctx());
      throwIfAborted(this.opts.signal, this.ctx());
    };
    stopped(); // never start an upload (or a part) for a writer already aborted
    if (!this.uploadId) {
      this.creating ??= this.createUpload();
      await this.creating;
    }
    while (this.inflight.size >= S3_PARTS_IN_FLIGHT) await Promise.race(this.inflight);
    stopped();
    const n = this.nextPart++;
    if (n > MAX_PARTS) throw new HexzError('UNSUPPORTED', `${this.url}: more than ${MAX_PARTS} parts; the object is too large for one S3 upload`, this.ctx());
    const { UploadPartCommand } = await sdk();
    const signal = this.opts.signal;
    const task: Promise<void> = this.client
      // The abort signal cancels parts in flight: Ctrl-C must not wait for megabytes still uploading.
      .send(new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: n, Body: buf.subarray(0, len), ContentLength: len }), { abortSignal: signal })
      .then(
        (out) => {
          if (!out.ETag) throw new HexzError('STORAGE_IO', `UploadPart ${n} of ${this.url} returned no ETag`, this.ctx());
          this.done.push({ PartNumber: n, ETag: out.ETag });
          this.spare.push(buf);
        },
      )
      .catch((err) => {
        this.failure ??= s3Error(err, `UploadPart ${n} of`, this.url, signal, this.ctx());
      })
      .finally(() => this.inflight.delete(task));
    this.inflight.add(task);
  }

  async commit(): Promise<StorageStat> {
    await this.ensureOpen('commit');
    this.state = 'committing';
    // Past this check the object may become visible: an abort that fired earlier must win.
    const lastCall = () => {
      if (this.failure) throw this.failure;
      throwIfAborted(this.opts.signal, this.ctx());
    };
    // Without overwrite, the write is conditional: S3 answers 412 if the key exists by then.
    const ifNoneMatch = this.opts.overwrite ? undefined : '*';
    try {
      const sdkModule = await sdk();
      let etag: string | undefined;
      if (!this.uploadId && !this.creating) {
        // Smaller than one part: a single PutObject, atomic by itself.
        const body = this.part ? this.part.subarray(0, this.filled) : Buffer.alloc(0);
        lastCall();
        const out = await this.client.send(new sdkModule.PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentLength: body.byteLength, IfNoneMatch: ifNoneMatch }));
        etag = out.ETag;
      } else {
        if (this.filled > 0) await this.sendPart();
        await Promise.all(this.inflight);
        lastCall();
        const parts = [...this.done].sort((a, b) => a.PartNumber - b.PartNumber);
        const out = await this.client.send(
          new sdkModule.CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: ifNoneMatch }),
        );
        etag = out.ETag;
      }
      this.state = 'done';
      this.part = undefined;
      this.spare = [];
      return { size: this.bytesWritten, etag };
    } catch (err) {
      throw await this.failWith(err, 'commit');
    }
  }

  /** Record a failure, abort the upload, and return the error to throw (with any abort trouble noted). */
  private async failWith(err: unknown, op: string): Promise<HexzError> {
    const e = this.failure ?? this.writeError(err, op);
    this.failure = e;
    try {
      await this.abortUpload();
    } catch (abortErr) {
      e.context.abortError = (abortErr as Error).message;
    }
    return e;
  }

  /** Map a failed write/commit request; a refused conditional write means the key exists. */
  private writeError(err: unknown, op: string): HexzError {
    const e = (err ?? {}) as AwsError;
    const name = e.name ?? e.Code ?? e.code ?? '';
    const status = e.$metadata?.httpStatusCode;
    if (!this.opts.overwrite && !(err instanceof HexzError) && (name === 'PreconditionFailed' || status === 412 || name === 'ConditionalRequestConflict' || status === 409)) {
      return new HexzError('EXISTS', `${this.url} was created by someone else while this upload was running; it was not replaced (use --force to replace it)`, this.ctx(), { cause: err });
    }
    return s3Error(err, `${op} of`, this.url, this.opts.signal, this.ctx());
  }

  async abort(_reason?: unknown): Promise<void> {
    await this.abortUpload();
  }

  /**
   * Abort once (every later call waits for the same abort): wait for part uploads in flight (aborting
   * while a part is still arriving can leave that part stored; an abort signal has cancelled them
   * already), then AbortMultipartUpload. An upload S3 no longer knows is already gone.
   */
  private abortUpload(): Promise<void> {
    if (this.state === 'done') return Promise.resolve();
    this.aborting ??= this.doAbort();
    return this.aborting;
  }

  private async doAbort(): Promise<void> {
    this.state = 'aborted';
    this.part = undefined;
    this.spare = [];
    await this.creating?.catch(() => {});
    await Promise.all(this.inflight);
    if (!this.uploadId) return;
    const { AbortMultipartUploadCommand } = await sdk();
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId }));
    } catch (err) {
      const e = err as AwsError;
      if (e.name === 'NoSuchUpload' || e.$metadata?.httpStatusCode === 404) return;
      throw new HexzError(
        'STORAGE_IO',
        `could not abort multipart upload ${this.uploadId} of ${this.url}: ${e.message ?? e.name}; no object was created, but the upload's parts stay billed until it is aborted (an AbortIncompleteMultipartUpload lifecycle rule cleans them up)`,
        this.ctx(),
        { cause: err },
      );
    }
  }
}

export interface S3WriterOptions {
  /** Replace an existing object. Without it the key must not exist (checked up front and on commit). */
  overwrite?: boolean;
  /** Cancels part uploads in flight; once fired, nothing is committed and the upload is aborted. */
  signal?: AbortSignal;
}

/**
 * Create a writer for `s3://bucket/key`. Bytes stream into a multipart upload (S3_PART_SIZE parts, at
 * most S3_PARTS_IN_FLIGHT uploading at once; `write` waits when they are busy), and the object appears
 * only when `commit` completes the upload. A failure, the abort signal or `abort()` aborts the
 * multipart upload, so no partial object and no orphan upload is left.
 *
 * Without `overwrite` an existing object is `EXISTS` (HeadObject, before anything is uploaded), and
 * the final request carries `If-None-Match: *`, so an object created under the key meanwhile is not
 * replaced either (`EXISTS` again) where the store honours conditional writes (AWS S3 does).
 */
export async function createS3Writer(url: string, opts: S3Options = {}, writer: S3WriterOptions = {}): Promise<StorageWriter> {
  const { bucket, key } = parseS3Url(url, 'object');
  const client = await clientFor(opts);
  if (!writer.overwrite) {
    const { HeadObjectCommand } = await sdk();
    let found = true;
    try {
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: writer.signal });
    } catch (err) {
      const e = s3Error(err, 'HeadObject', url, writer.signal);
      if (e.code === 'ARCHIVE_NOT_FOUND' && (err as AwsError).name !== 'NoSuchBucket') found = false;
      else if (e.code === 'STORAGE_DENIED') {
        throw new HexzError('STORAGE_DENIED', `cannot check whether ${url} exists (${e.message}); give --force to write without checking`, e.context, { cause: err });
      } else throw e;
    }
    if (found) throw new HexzError('EXISTS', `${url} already exists (use --force to replace it)`, { url, backend: 's3' });
  }
  return new S3Writer(url, client, bucket, key, writer);
}

// ---- root -----------------------------------------------------------------------------------------

/** Most keys S3 returns per ListObjectsV2 page. */
const MAX_LIST_KEYS = 1000;

class S3Root implements StorageRoot {
  readonly backend = 's3';

  constructor(
    readonly url: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    /** Key prefix of the root, empty or ending in `/`. */
    private readonly prefix: string,
  ) {}

  urlOf(key: string): string {
    const clean = normalizePath(key);
    if (clean === '') throw new HexzError('UNSAFE_PATH', `empty key under ${this.url}`, { path: key, url: this.url });
    return `s3://${this.bucket}/${encodeKey(this.prefix + clean)}`;
  }

  async check(opts?: ReadOptions): Promise<void> {
    // A one-key listing needs exactly the permission the gateway needs to list archives.
    await this.list({ limit: 1, signal: opts?.signal });
  }

  async list(opts: { prefix?: string; cursor?: string; limit?: number; signal?: AbortSignal } = {}): Promise<{ objects: StorageObject[]; cursor?: string }> {
    const { ListObjectsV2Command } = await sdk();
    const limit = Math.max(1, Math.min(MAX_LIST_KEYS, opts.limit ?? MAX_LIST_KEYS));
    let out;
    try {
      out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + (opts.prefix ?? ''), ContinuationToken: opts.cursor || undefined, MaxKeys: limit }),
        { abortSignal: opts.signal },
      );
    } catch (err) {
      throw s3Error(err, 'ListObjectsV2', this.url, opts.signal);
    }
    const objects: StorageObject[] = [];
    for (const o of out.Contents ?? []) {
      // Folder markers (`dir/`) made by consoles are not objects of the root.
      if (!o.Key || o.Key.endsWith('/') || !o.Key.startsWith(this.prefix)) continue;
      objects.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
    }
    return { objects, cursor: out.IsTruncated && out.NextContinuationToken ? out.NextContinuationToken : undefined };
  }
}

/**
 * Open `s3://bucket/prefix/` as a storage root: listing is ListObjectsV2 (the cursor is S3's
 * continuation token), and `urlOf` validates keys so a hostile name never escapes the prefix.
 */
export async function openS3Root(url: string, opts: S3Options = {}): Promise<StorageRoot> {
  const { bucket, key } = parseS3Url(url, 'prefix');
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  return new S3Root(`s3://${bucket}/${encodeKey(prefix)}`, await clientFor(opts), bucket, prefix);
}
