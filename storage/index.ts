/**
 * The one place that names storage backends. Everything else calls `openStorage(url)`,
 * `createWriter(url)` or `openStorageRoot(url)` and sees only the interfaces in ./types.ts.
 * Backends are imported lazily: a local `hexz ls` never loads the AWS SDK.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HexzError } from '../src/errors.js';
import type { Storage, StorageRoot, StorageWriter } from './types.js';

export * from './types.js';

/** S3 settings, from flags/env at the edge (see docs/operations.md). */
export interface S3Options {
  /** Custom endpoint for S3-compatible stores (MinIO, Ceph, R2…); implies path-style addressing. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

/** HTTP settings. */
export interface HttpOptions {
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /** Retries on connection errors and 5xx. */
  retries?: number;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
}

export interface StorageOptions {
  s3?: S3Options;
  http?: HttpOptions;
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

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * Canonical URL of a user-given location: URLs pass through, local paths become absolute `file://`
 * URLs. `-` is not a location (stdin/stdout are handled by the CLI).
 */
export function toStorageUrl(location: string | URL): string {
  if (location instanceof URL) return location.href;
  if (SCHEME.test(location)) return location;
  return pathToFileURL(path.resolve(location)).href;
}

function schemeOf(url: string): string {
  return (SCHEME.exec(url)?.[1] ?? '').toLowerCase();
}

function unsupported(url: string): HexzError {
  return new HexzError('UNSUPPORTED', `unsupported storage URL ${url} (use a path, file://, https://, s3:// or memory://)`, { url });
}

/** Open an object for range reads. */
export async function openStorage(location: string | URL, opts: StorageOptions = {}): Promise<Storage> {
  const url = toStorageUrl(location);
  switch (schemeOf(url)) {
    case 'file':
      return (await import('./file.js')).openFileStorage(url);
    case 'memory':
      return (await import('./memory.js')).openMemoryStorage(url);
    case 'http':
    case 'https':
      return (await import('./http.js')).openHttpStorage(url, opts.http);
    case 's3':
      return (await import('./s3.js')).openS3Storage(url, opts.s3);
    default:
      throw unsupported(url);
  }
}

/** Writers created and neither committed nor aborted yet (see `abortOpenWriters`). */
const openWriters = new Set<StorageWriter>();

/** Track a writer until it commits or aborts. */
function tracked(w: StorageWriter): StorageWriter {
  openWriters.add(w);
  return {
    get url() {
      return w.url;
    },
    get backend() {
      return w.backend;
    },
    get bytesWritten() {
      return w.bytesWritten;
    },
    write: (bytes) => w.write(bytes),
    async commit() {
      try {
        return await w.commit();
      } finally {
        openWriters.delete(w); // committed, or failed (a failed commit cleans up after itself)
      }
    },
    async abort(reason) {
      try {
        await w.abort(reason);
      } finally {
        openWriters.delete(w);
      }
    },
  };
}

/**
 * Abort every writer of the process that is still open, at most `timeoutMs` long: the CLI's last
 * resort when the user insists on stopping (second Ctrl-C) before the normal abort path has run.
 * Concurrent aborts of one writer share the same work, so this also waits for one already under way.
 */
export async function abortOpenWriters(reason?: unknown, timeoutMs = 2000): Promise<void> {
  if (openWriters.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...openWriters].map((w) => w.abort(reason))),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/** Create a writer; the object becomes visible only when the writer commits. */
export async function createWriter(location: string | URL, opts: WriterOptions = {}): Promise<StorageWriter> {
  const url = toStorageUrl(location);
  switch (schemeOf(url)) {
    case 'file':
      return tracked(await (await import('./file.js')).createFileWriter(url, { overwrite: opts.overwrite, signal: opts.signal }));
    case 'memory':
      return (await import('./memory.js')).createMemoryWriter(url);
    case 's3':
      return tracked(await (await import('./s3.js')).createS3Writer(url, opts.s3, { overwrite: opts.overwrite, signal: opts.signal }));
    case 'http':
    case 'https':
      throw new HexzError('UNSUPPORTED', `cannot write to ${url}: HTTP storage is read-only (write to a path or s3://)`, { url });
    default:
      throw unsupported(url);
  }
}

/** Open a directory or prefix holding many archives (the gateway's store). */
export async function openStorageRoot(location: string | URL, opts: StorageOptions & { create?: boolean } = {}): Promise<StorageRoot> {
  const url = toStorageUrl(location);
  switch (schemeOf(url)) {
    case 'file':
      return (await import('./file.js')).openFileRoot(url, { create: opts.create });
    case 'memory':
      return (await import('./memory.js')).openMemoryRoot(url);
    case 's3':
      return (await import('./s3.js')).openS3Root(url, opts.s3);
    case 'http':
    case 'https':
      throw new HexzError('UNSUPPORTED', `cannot list ${url}: HTTP has no listing (serve from a directory or s3://)`, { url });
    default:
      throw unsupported(url);
  }
}

/**
 * One spelling per object: local paths absolute and normalised, `s3://bucket/key` with the key
 * decoded and re-escaped, http(s) URLs as WHATWG URLs normalise them (host case, default port).
 */
export function canonicalUrl(location: string | URL): string {
  const url = toStorageUrl(location);
  switch (schemeOf(url)) {
    case 'file':
      return pathToFileURL(path.resolve(fileURLToPath(url))).href;
    case 's3': {
      const m = /^s3:\/\/([^/?#]+)\/?([^?#]*)$/i.exec(url);
      if (!m) return url;
      const key = m[2]
        .split('/')
        .map((seg) => {
          try {
            return encodeURIComponent(decodeURIComponent(seg));
          } catch {
            return encodeURIComponent(seg);
          }
        })
        .join('/');
      return `s3://${m[1]}/${key}`;
    }
    case 'http':
    case 'https':
      try {
        return new URL(url).href;
      } catch {
        return url;
      }
    default:
      return url;
  }
}

/**
 * Whether two locations name the same object: the same canonical URL, or for local files the same
 * file once symlinks are resolved (realpath) or the same inode (hard links). Locations that do not
 * exist (yet) are compared by URL only.
 */
export async function sameObject(a: string | URL, b: string | URL): Promise<boolean> {
  const ca = canonicalUrl(a);
  const cb = canonicalUrl(b);
  if (ca === cb) return true;
  if (schemeOf(ca) === 'file' && schemeOf(cb) === 'file') return (await import('./file.js')).sameFile(ca, cb);
  return false;
}

/**
 * The location hint of `target` as seen from `from` (docs/format.md, "Base entry"): relative when both
 * share scheme and authority, absolute otherwise.
 */
export function relativeLocation(from: string, target: string): string {
  const a = new URL(from);
  const b = new URL(target);
  if (a.protocol !== b.protocol || a.host !== b.host || a.protocol === 'memory:') return target;
  const fromDir = a.pathname.replace(/[^/]*$/, '');
  const rel = path.posix.relative(fromDir, b.pathname);
  return rel
    .split('/')
    .map((seg) => (seg === '..' ? seg : encodeURIComponent(decodeURIComponent(seg))))
    .join('/');
}

/** Resolve a location hint against the URL of the archive that recorded it. */
export function resolveLocation(from: string, hint: string): string {
  if (SCHEME.test(hint)) return hint;
  const base = new URL(from);
  if (base.protocol === 'memory:') return hint;
  const dir = base.pathname.replace(/[^/]*$/, '');
  const resolved = path.posix.normalize(path.posix.join(dir, hint));
  return `${base.protocol}//${base.host}${resolved}`;
}
