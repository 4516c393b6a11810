/**
 * The one place that names storage backends. Everything else calls `openStorage(url)`,
 * `createWriter(url)` or `openStorageRoot(url)` and sees only the interfaces in ./types.ts.
 * Each backend is one descriptor in BACKENDS (what it can do, keyed by URL scheme); its module is
 * imported lazily, so a local `hexz ls` never loads the AWS SDK.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HexzError } from '../src/errors.js';
import { httpOptionsOf, s3OptionsOf, type StorageOptions, type WriterOptions } from './options.js';
import type { Storage, StorageRoot, StorageWriter } from './types.js';

export * from './types.js';
export * from './options.js';

/** What one backend can do. Missing abilities are `UNSUPPORTED`, with the backend's reason. */
interface Backend {
  open(url: string, opts: StorageOptions): Promise<Storage>;
  createWriter?(url: string, opts: WriterOptions): Promise<StorageWriter>;
  /** Why it cannot write, when it cannot. */
  readOnly?: string;
  openRoot?(url: string, opts: StorageOptions & { create?: boolean }): Promise<StorageRoot>;
  /** Why it cannot list, when it cannot. */
  noListing?: string;
  /** The one spelling of a URL of this backend (see `canonicalUrl`); the URL itself when absent. */
  canonical?(url: string): string;
  /** Whether two canonical URLs of this backend name one object beyond equal spelling (links). */
  sameObject?(a: string, b: string): Promise<boolean>;
}

const file: Backend = {
  open: async (url) => (await import('./file.js')).openFileStorage(url),
  createWriter: async (url, opts) => (await import('./file.js')).createFileWriter(url, { overwrite: opts.overwrite, signal: opts.signal }),
  openRoot: async (url, opts) => (await import('./file.js')).openFileRoot(url, { create: opts.create }),
  canonical: (url) => pathToFileURL(path.resolve(fileURLToPath(url))).href,
  sameObject: async (a, b) => (await import('./file.js')).sameFile(a, b),
};

const http: Backend = {
  open: async (url, opts) => (await import('./http.js')).openHttpStorage(url, httpOptionsOf(opts)),
  readOnly: 'HTTP storage is read-only (write to a path or s3://)',
  noListing: 'HTTP has no listing (serve from a directory or s3://)',
  canonical: (url) => {
    try {
      return new URL(url).href;
    } catch {
      return url;
    }
  },
};

const s3: Backend = {
  open: async (url, opts) => (await import('./s3.js')).openS3Storage(url, s3OptionsOf(opts)),
  createWriter: async (url, opts) => (await import('./s3-writer.js')).createS3Writer(url, s3OptionsOf(opts), { overwrite: opts.overwrite, signal: opts.signal }),
  openRoot: async (url, opts) => (await import('./s3.js')).openS3Root(url, s3OptionsOf(opts)),
  canonical: (url) => {
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
  },
};

const memory: Backend = {
  open: async (url) => (await import('./memory.js')).openMemoryStorage(url),
  createWriter: async (url) => (await import('./memory.js')).createMemoryWriter(url),
  openRoot: async (url) => (await import('./memory.js')).openMemoryRoot(url),
};

/** Backends by URL scheme (lower case). */
const BACKENDS: Record<string, Backend> = { file, http, https: http, s3, memory };

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

/** The backend serving the scheme of `url`, if any. */
function backendFor(url: string): Backend | undefined {
  const scheme = schemeOf(url);
  return Object.hasOwn(BACKENDS, scheme) ? BACKENDS[scheme] : undefined;
}

/** The backend of `url`; `UNSUPPORTED` for a scheme no backend serves. */
function backendOf(url: string): Backend {
  const backend = backendFor(url);
  if (!backend) throw new HexzError('UNSUPPORTED', `unsupported storage URL ${url} (use a path, file://, https://, s3:// or memory://)`, { url });
  return backend;
}

/** Open an object for range reads. */
export async function openStorage(location: string | URL, opts: StorageOptions = {}): Promise<Storage> {
  const url = toStorageUrl(location);
  return backendOf(url).open(url, opts);
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
  const backend = backendOf(url);
  if (!backend.createWriter) throw new HexzError('UNSUPPORTED', `cannot write to ${url}: ${backend.readOnly ?? 'read-only storage'}`, { url });
  return tracked(await backend.createWriter(url, opts));
}

/** Open a directory or prefix holding many archives (the gateway's store). */
export async function openStorageRoot(location: string | URL, opts: StorageOptions & { create?: boolean } = {}): Promise<StorageRoot> {
  const url = toStorageUrl(location);
  const backend = backendOf(url);
  if (!backend.openRoot) throw new HexzError('UNSUPPORTED', `cannot list ${url}: ${backend.noListing ?? 'no listing'}`, { url });
  return backend.openRoot(url, opts);
}

/**
 * One spelling per object: local paths absolute and normalised, `s3://bucket/key` with the key
 * decoded and re-escaped, http(s) URLs as WHATWG URLs normalise them (host case, default port).
 */
export function canonicalUrl(location: string | URL): string {
  const url = toStorageUrl(location);
  const backend = backendFor(url);
  return backend?.canonical ? backend.canonical(url) : url;
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
  if (schemeOf(ca) !== schemeOf(cb)) return false;
  const backend = backendFor(ca);
  return backend?.sameObject ? backend.sameObject(ca, cb) : false;
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

/**
 * Resolve a location hint against the URL of the archive that recorded it: RFC 3986 reference
 * resolution (docs/format.md, section 5, "Base entry"), so `../v1.hxz` is a sibling folder's file and
 * `/data/v1.hxz` a path from the root of the archive's own host (bucket, or file system). `memory:`
 * URLs (tests) take the hint as it is.
 */
export function resolveLocation(from: string, hint: string): string {
  if (SCHEME.test(hint)) return hint;
  const base = new URL(from);
  if (base.protocol === 'memory:') return hint;
  return new URL(hint, base).href;
}
