/**
 * Writes to S3 (`hexz pack … s3://…`): bytes stream into a multipart upload with bounded memory
 * (docs/operations.md, "S3 configuration", uploads).
 *
 * - Nothing is visible before CompleteMultipartUpload, and every failure or `abort()` ends in
 *   AbortMultipartUpload, so no partial object is ever seen. Objects smaller than one part go up with a
 *   single PutObject on commit.
 * - Without `overwrite`, an existing object is refused up front (HeadObject) and the final
 *   PutObject/CompleteMultipartUpload is conditional (`If-None-Match: *`), so an object that appears
 *   meanwhile is not replaced either (on stores that honour conditional writes).
 * Hand-written rather than @aws-sdk/lib-storage's `Upload` (no longer a dependency): `Upload` is fed a
 * whole stream and owns its completion, while this writer must make the completing request conditional
 * and abort the upload on every way out — a failed part surfacing on a later write, an abort signal, a
 * caller that stops writing and calls `abort()` — which `Upload` cannot be made to do exactly.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { HexzError, throwIfAborted, type ErrorContext } from '../src/errors.js';
import type { S3Options } from './options.js';
import { awsErrorName, clientFor, parseS3Url, s3Error, sdk, type AwsError } from './s3-client.js';
import type { StorageStat, StorageWriter } from './types.js';

/** Multipart part size: 8 MiB is above S3's 5 MiB minimum and small enough to keep memory bounded. */
export const S3_PART_SIZE = 8 * 1024 * 1024;
/** Parts uploaded at once: 4 keep a link busy; memory stays ≤ (4 + 1) × part size. */
export const S3_PARTS_IN_FLIGHT = 4;
/** Parts per size step: the part size doubles every 1,000 parts so 10,000 parts reach ~8 TB. */
const PARTS_PER_SIZE_STEP = 1000;
/** S3's limit on the number of parts of one upload. */
const MAX_PARTS = 10_000;

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
    const name = awsErrorName(err);
    const status = (err as AwsError | undefined)?.$metadata?.httpStatusCode;
    if (!this.opts.overwrite && !(err instanceof HexzError) && (name === 'PreconditionFailed' || status === 412 || name === 'ConditionalRequestConflict' || status === 409)) {
      return new HexzError('EXISTS', `${this.url} was created by someone else while this upload was running; it was not replaced`, { ...this.ctx(), remedy: 'overwrite' }, { cause: err });
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
        throw new HexzError('STORAGE_DENIED', `cannot check whether ${url} exists (${e.message})`, { ...e.context, remedy: 'unchecked-overwrite' }, { cause: err });
      } else throw e;
    }
    if (found) throw new HexzError('EXISTS', `${url} already exists`, { url, backend: 's3', remedy: 'overwrite' });
  }
  return new S3Writer(url, client, bucket, key, writer);
}
