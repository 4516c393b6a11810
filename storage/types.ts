/**
 * The storage contract: a byte-range source of one object, and a sequential writer of one object.
 * Every backend implements it in one file; only `openStorage` (storage/index.ts) names backends. The
 * reader, gateway and FUSE client see nothing else, so a new backend needs no change elsewhere.
 */
import { HexzError } from '../src/errors.js';

export interface StorageStat {
  size: number;
  /** Strong validator of the object's version, when the backend has one (HTTP/S3 ETag, file mtime+size+ino). */
  etag?: string;
  lastModified?: Date;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

/** A readable object: stat, exact range reads, and a suffix read that also reports the size. */
export interface Storage {
  /** Canonical URL (`file:///abs/a.hxz`, `https://…`, `s3://bucket/key`, `memory://name`). */
  readonly url: string;
  /** Backend name for metrics and errors: file, http, s3, memory. */
  readonly backend: string;
  /** Size and version of the object. Cached after the first call or read. */
  stat(opts?: ReadOptions): Promise<StorageStat>;
  /**
   * Exactly `length` bytes at `offset`, or a typed error: `OUT_OF_RANGE` past the end, `ARCHIVE_CHANGED`
   * when the object's version changed since it was first seen, `STORAGE_IO`/`TIMEOUT`/`ABORTED` …
   * Never zero-fills and never returns fewer bytes.
   */
  read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array>;
  /**
   * Optional: the same bytes as `read`, written into `dst` (exactly `dst.byteLength` bytes at
   * `offset`), for backends that can read into the caller's memory without a copy (local files: a
   * positional read straight into shared memory a decode worker reads). Use `readInto(storage, …)`
   * below, which falls back to `read` and one copy.
   */
  readInto?(offset: number, dst: Uint8Array, opts?: ReadOptions): Promise<void>;
  /**
   * The last `min(length, size)` bytes plus the object's stat, in one request where the backend allows
   * it (HTTP/S3 suffix ranges). Opening an archive is one `readTail`.
   */
  readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }>;
  close(): Promise<void>;
}

/** A sequential writer of one object that becomes visible only on `commit`. */
export interface StorageWriter {
  readonly url: string;
  readonly backend: string;
  /** Bytes accepted so far. */
  readonly bytesWritten: number;
  /** Append bytes. The caller may reuse `bytes` once the promise resolves. */
  write(bytes: Uint8Array): Promise<void>;
  /** Make the object visible atomically (rename / complete multipart upload). */
  commit(): Promise<StorageStat>;
  /** Discard everything; nothing is left behind. Safe to call more than once or after a failure. */
  abort(reason?: unknown): Promise<void>;
}

/** One object found when listing a storage root. */
export interface StorageObject {
  /** Key relative to the root, `/`-separated. */
  key: string;
  size: number;
  etag?: string;
  lastModified?: Date;
}

/** A directory or prefix holding many objects: the gateway's archive store. */
export interface StorageRoot {
  readonly url: string;
  readonly backend: string;
  /**
   * Objects whose key starts with `prefix`, in key order, at most `limit`, starting after `cursor`
   * (an opaque string from the previous page).
   */
  list(opts?: { prefix?: string; cursor?: string; limit?: number; signal?: AbortSignal }): Promise<{ objects: StorageObject[]; cursor?: string }>;
  /** URL of a key under this root (the key is validated: no `..`, no absolute paths). */
  urlOf(key: string): string;
  /** Reachability check for readiness probes. */
  check(opts?: ReadOptions): Promise<void>;
}

/** `dst.byteLength` bytes of `storage` at `offset` into `dst`: without a copy where the backend can. */
export async function readInto(storage: Storage, offset: number, dst: Uint8Array, opts?: ReadOptions): Promise<void> {
  if (storage.readInto) return storage.readInto(offset, dst, opts);
  dst.set(await storage.read(offset, dst.byteLength, opts));
}

/** Validate `offset`/`length` against a known size; shared by every backend. */
export function checkRange(offset: number, length: number, size: number, url: string): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new HexzError('OUT_OF_RANGE', `read of ${length} bytes at ${offset} is outside ${url} (${size} bytes)`, { url, offset, length, size });
  }
}
