/**
 * S3 and S3-compatible stores (`s3://bucket/key`), through `@aws-sdk/client-s3` (docs/operations.md,
 * "S3 configuration"): range reads and storage roots. The client, URL parsing and error mapping are in
 * ./s3-client.ts; the multipart writer is ./s3-writer.ts.
 *
 * - Reads are ranged GetObjects pinned to the first ETag (sent as `If-Match` and compared on every
 *   response, because some S3-compatible servers ignore `If-Match`): never bytes of two versions.
 * - Every read attempt has a progress timeout (S3Options.progressTimeoutMs): no byte for that long,
 *   before the headers or in the body, aborts the attempt, which drops its connection, and the read is
 *   tried again. The SDK retries failed requests (503s, resets) by itself, but neither a body stream
 *   that breaks after the headers nor a request aborted here, so those are retried here, S3_READ_RETRIES
 *   times.
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { HexzError, isHexzError, throwIfAborted } from '../src/errors.js';
import { parseContentRange, spanOf, type Span } from './content-range.js';
import { normalizeKey } from './keys.js';
import { progressTimeoutMs, type S3Options } from './options.js';
import type { Version } from './pinning.js';
import { ProgressWatch } from './progress.js';
import { RangedStorage, type RangeReply } from './ranged.js';
import { clientFor, encodeKey, parseS3Url, s3Error, sdk } from './s3-client.js';
import type { ReadOptions, Storage, StorageObject, StorageRoot } from './types.js';

export { DEFAULT_S3_REGION, S3_CONNECT_TIMEOUT_MS, S3_MAX_ATTEMPTS, S3_SOCKET_TIMEOUT_MS } from './s3-client.js';

/** Extra attempts of a read whose previous attempt stalled or whose body broke: 2, so a dead origin fails after about 3 progress timeouts. */
export const S3_READ_RETRIES = 2;

/** The part of an SDK command this module touches: its middleware stack. */
interface Watchable {
  middlewareStack: { add(middleware: (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>, options: { step: 'deserialize'; name: string }): void };
}

/**
 * `command`, with `watch` restarted when each of the SDK's own attempts is sent and when its response
 * arrives, and paused after an attempt that failed: the progress timeout then bounds the silence of one
 * attempt, never the SDK's backoff between attempts (the deserialize step runs once per attempt,
 * inside the retry middleware). A 503 storm thus ends as the SDK's STORAGE_IO, not as a TIMEOUT (it
 * did before: a 300 ms timeout fired in the SDK's backoff after the second 503).
 */
function watched<C>(command: C, watch: ProgressWatch): C {
  (command as unknown as Watchable).middlewareStack.add(
    (next) => async (args) => {
      watch.touch();
      try {
        // This runs inside the SDK's deserializer: `out` is the raw HTTP response, an error status included.
        const out = (await next(args)) as { response?: { statusCode?: number } };
        // An error status is an attempt the SDK may retry after a backoff; else the body's bytes come next.
        if ((out.response?.statusCode ?? 200) >= 300) watch.pause();
        else watch.touch();
        return out;
      } catch (err) {
        watch.pause(); // a network error: the SDK may back off before its next attempt
        throw err;
      }
    },
    { step: 'deserialize', name: 'hexzProgressWatch' },
  );
  return command;
}

/** A body that broke after the headers: worth another attempt (the request itself succeeded). */
class BodyFailure extends Error {
  constructor(readonly failure: unknown) {
    super('body failed');
  }
}

/** Every byte of `body`, reporting progress to `watch`; one copy to make it contiguous, none for a single chunk. */
async function readBody(body: Readable, watch: ProgressWatch): Promise<Uint8Array> {
  watch.onStall = () => body.destroy();
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    watch.touch();
    chunks.push(chunk);
    received += chunk.byteLength;
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
}

class S3Storage extends RangedStorage {
  constructor(
    url: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly progressTimeoutMs: number,
  ) {
    super(url, 's3');
  }

  /**
   * Run one request up to 1 + S3_READ_RETRIES times while it stalls (`watch` fired) or its body breaks
   * (`BodyFailure`); anything else is mapped and thrown at once. After the last attempt: `TIMEOUT` if it
   * stalled, else the body's failure, naming the URL either way.
   */
  private async attempts<T>(op: string, signal: AbortSignal | undefined, run: (watch: ProgressWatch) => Promise<T>): Promise<T> {
    let last: HexzError | undefined;
    for (let attempt = 0; attempt <= S3_READ_RETRIES; attempt++) {
      throwIfAborted(signal, { url: this.url, backend: 's3' });
      const watch = new ProgressWatch(this.progressTimeoutMs, signal);
      try {
        return await run(watch);
      } catch (err) {
        const cause = err instanceof BodyFailure ? err.failure : err;
        if (signal?.aborted) throw s3Error(cause, op, this.url, signal);
        if (watch.stalled) {
          last = new HexzError('TIMEOUT', `${op} ${this.url} timed out: no byte for ${this.progressTimeoutMs} ms ${watch.phase}`, { url: this.url, backend: 's3' }, { cause });
        } else if (err instanceof BodyFailure) {
          last = s3Error(cause, op, this.url, signal);
        } else throw s3Error(cause, op, this.url, signal);
      } finally {
        watch.done();
      }
    }
    last!.context.attempts = S3_READ_RETRIES + 1;
    if (last!.code === 'TIMEOUT') last!.message += ` (${S3_READ_RETRIES + 1} attempts)`;
    throw last!;
  }

  /**
   * One ranged GetObject, body included, retried when it stalls or the body is cut short. Resolves with
   * the bytes and where they lie by the Content-Range the server claims (s3rver, for one, answers
   * `bytes=-N` with other bytes); undefined when that claim does not match the body.
   */
  private async get(range: string, signal: AbortSignal | undefined): Promise<{ span?: Span; version: Version }> {
    const { GetObjectCommand } = await sdk();
    return this.attempts('GetObject', signal, async (watch) => {
      const command = watched(new GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: range, IfMatch: this.pin.etag }), watch);
      const out = await this.client.send(command, { abortSignal: watch.signal });
      watch.phase = 'in the middle of the body';
      const version = { etag: out.ETag, lastModified: out.LastModified };
      const body = out.Body as Readable | undefined;
      const cr = parseContentRange(out.ContentRange);
      if (cr?.total === 0) {
        // An empty object has no bytes to send, whatever Content-Length claims (s3rver says 1 and
        // then sends nothing, which would hang until the socket times out).
        body?.destroy();
        return { span: { bytes: new Uint8Array(0), start: 0, total: 0 }, version };
      }
      let bytes: Uint8Array;
      try {
        bytes = body ? await readBody(body, watch) : new Uint8Array(0);
        if (out.ContentLength !== undefined && bytes.byteLength !== out.ContentLength) {
          throw Object.assign(new Error(`body cut short (${bytes.byteLength} of ${out.ContentLength} bytes)`), { name: 'ShortBody' });
        }
      } catch (err) {
        body?.destroy();
        throw new BodyFailure(err);
      }
      // No Content-Range: the whole object came back.
      return { span: cr ? spanOf(cr, bytes) : { bytes, start: 0, total: bytes.byteLength }, version };
    });
  }

  protected async fetchRange(range: string, suffix: boolean, signal: AbortSignal | undefined): Promise<RangeReply> {
    let got;
    try {
      got = await this.get(range, signal);
    } catch (err) {
      // An empty object has no satisfiable range (HeadObject tells the size), nor has one past the end.
      if (isHexzError(err, 'OUT_OF_RANGE')) return { kind: 'unsatisfiable', version: {} };
      throw err;
    }
    if (got.span) return { kind: 'bytes', span: got.span, version: got.version };
    if (suffix) return { kind: 'unusable' };
    throw new HexzError('STORAGE_IO', `${this.url} answered ${range} with a Content-Range that does not match its body`, { url: this.url, backend: 's3' });
  }

  protected async fetchStat(signal: AbortSignal | undefined): Promise<Version & { size: number }> {
    const { HeadObjectCommand } = await sdk();
    const out = await this.attempts('HeadObject', signal, (watch) => this.client.send(watched(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), watch), { abortSignal: watch.signal }));
    return { etag: out.ETag, size: out.ContentLength ?? 0, lastModified: out.LastModified };
  }
}

/**
 * Open `s3://bucket/key` for range reads. No request is made until the first read, so opening an
 * archive stays one suffix GetObject (`readTail`), which also pins the object's ETag. Options name a
 * custom endpoint (MinIO, Ceph, R2…; path-style addressing by default then), the region and the
 * progress timeout of reads; credentials come from the default AWS chain.
 */
export async function openS3Storage(url: string, opts: S3Options = {}): Promise<Storage> {
  const { bucket, key } = parseS3Url(url, 'object');
  return new S3Storage(url, await clientFor(opts), bucket, key, progressTimeoutMs(opts.progressTimeoutMs));
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
    const clean = normalizeKey(key);
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
