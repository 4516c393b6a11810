/**
 * The archive reader: open with ≤ 2 reads (docs/format.md, section 1), then answer stat/list/read
 * from lazily loaded, cached index pages and chunks. It never knows which storage backend it reads
 * from. The work is split along the format's seams:
 *
 * - ./open.ts     trailer, root, keys (the opening reads);
 * - ./pages.ts    chunk-index and file-table pages, checked against this archive's root;
 * - ./paths.ts    lookups, the one symlink resolver, listings, walks;
 * - ./content.ts  the one content plan and every way of reading bytes;
 * - ./info.ts     the summary `hexz info` and the gateway show.
 *
 * Bytes returned by reads and streams are read-only views into cached chunks: do not modify them.
 *
 * Why this file is long: it is the reader's whole public API, one documented method per way of
 * reading; each method delegates to the modules above in a few lines.
 */
import { Readable } from 'node:stream';
import { BlockCache, sharedCache } from '../../cache/block-cache.js';
import { coalesceReads } from '../../cache/coalesce.js';
import { openStorage, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageStat } from '../../storage/types.js';
import type { ArchiveKeys, KeySource } from '../crypto/keys.js';
import { checkSignature, requireTrusted, type SignatureCheck, type TrustedKeys } from '../crypto/signatures.js';
import { HexzError, type ErrorContext } from '../errors.js';
import type { ChunkRef } from '../format/chunk-index.js';
import type { FileEntry } from '../format/file-table.js';
import { formatUuid, type Trailer } from '../format/header.js';
import { hash } from '../hash.js';
import type { Root } from '../format/root.js';
import { ArchiveBases, type BaseResolution, type FoundBase } from './bases.js';
import { watchChanges } from './changes.js';
import { ArchiveContent, type BulkReadOptions, type ContentPiece, type LeasedPiece, type ReadRangeOptions, type ReadSpan } from './content.js';
import { archiveInfo, type ArchiveInfo } from './info.js';
import { defaultDecodeThreads } from './decode-pool.js';
import { readRoot, readTrailer, trailerBytesOf, unlock } from './open.js';
import type { OpenedArchive } from './opened.js';
import { IndexPages } from './pages.js';
import { ArchivePaths, type ListOptions } from './paths.js';

export type { ArchiveInfo } from './info.js';
export type { BulkReadOptions, ContentPiece, LeasedPiece, ReadRangeOptions, ReadSpan } from './content.js';
export type { ListOptions } from './paths.js';

export interface OpenArchiveOptions extends BaseResolution {
  /** Settings for the storage backends (S3 endpoint, HTTP timeouts…). */
  storage?: StorageOptions;
  /** Block cache; the process-wide shared cache by default. */
  cache?: BlockCache;
  /** Key of an encrypted archive. */
  key?: KeySource;
  /**
   * Require a valid signature by one of these keys on the archive and on every base of its chain
   * (docs/format.md, section 3.1): `UNSIGNED`, `UNTRUSTED_SIGNER` or `BAD_SIGNATURE` otherwise, naming
   * the archive of the chain at fault. The archive's own is checked before its key is derived or its
   * root read; with trusted keys required, the open also finds every base (one trailer read each)
   * and checks its signature, before anything is served. Without it, signatures are not checked
   * (`Archive.signatures` reports them) and bases are found when first needed.
   */
  trustedKeys?: TrustedKeys;
  /** Wrap every storage this archive opens (metering); applied before coalescing. */
  wrapStorage?: (s: Storage) => Storage;
  /**
   * Worker threads that decode bulk reads (streams, cat, extract, verify, readahead); 0 decodes on
   * the reading thread. Default: one per core. The pool belongs to the cache, so one per process.
   */
  decodeThreads?: number;
  signal?: AbortSignal;
}

/** One archive of a chain (the archive itself, or a base) and its signature check. */
export interface ChainSignature extends SignatureCheck {
  /** Where it was read from. */
  url: string;
  uuid: string;
  /** 0 for the archive itself, else the base's owner slot. */
  slot: number;
}

/** A trailer read while opening: the archive's own (slot 0) or a base's. */

/** Told when a read found that the archive (or one of its bases) was replaced under the reader. */
export type ChangeListener = (err: HexzError) => void;

/**
 * An open archive. Create with `openArchive`.
 *
 * Paths are relative to the archive's top (`""` or `/` is the top directory), `/`-separated. Every
 * method works on entries as stored: symlinks are not followed (a symlink is its own entry; `read` of
 * one is `NOT_A_FILE`) unless a method says so (`resolve`, `stat` with `followSymlinks`).
 *
 * - `entries()` / `walk()`: every entry in table order; `list(dir, {recursive, limit, cursor})`: one
 *   page of a directory.
 * - `stat(path)`: the entry at a path (type, mode, mtime, size, symlink target).
 * - `read(path, offset, length)`, `readInto`, `createReadStream(path, {start, end})`, `pieces(path)`:
 *   content.
 * - `info()`: format, sizes, ratios, chunking, bases; `storageStat`: size and etag of the archive
 *   object itself.
 * - `onChange(listener)`: told when the archive was replaced while being read (`ARCHIVE_CHANGED`).
 */
export class Archive {
  private readonly opened: OpenedArchive;
  private readonly pages: IndexPages;
  private readonly paths: ArchivePaths;
  private readonly content: ArchiveContent;
  private readonly listeners = new Set<ChangeListener>();
  private closed = false;

  readonly url: string;
  readonly storage: Storage;
  /** Size (and etag) of the archive object in its storage, as found when it was opened. */
  readonly storageStat: StorageStat;
  readonly trailer: Trailer;
  readonly root: Root;
  readonly cache: BlockCache;
  readonly keys: ArchiveKeys | undefined;
  /** The bases of a thin archive, each opened when first needed (./bases.ts). */
  readonly bases: ArchiveBases;
  private readonly trailerBytes: Uint8Array;

  /** @internal use `openArchive` */
  constructor(
    init: Omit<OpenedArchive, 'ctx' | 'chunkTag'> & { trailerBytes: Uint8Array },
    private readonly ownsStorage: boolean,
  ) {
    ({ url: this.url, storage: this.storage, storageStat: this.storageStat, trailer: this.trailer, root: this.root, cache: this.cache, keys: this.keys, bases: this.bases, trailerBytes: this.trailerBytes } = init);
    const url = init.url;
    this.opened = { ...init, chunkTag: chunkTagOf(init.keys), ctx: (extra: ErrorContext = {}) => ({ archive: url, ...extra }) };
    this.pages = new IndexPages(this.opened);
    this.paths = new ArchivePaths(this.opened, this.pages);
    this.content = new ArchiveContent(this.opened, this.pages);
  }

  get uuid(): string {
    return formatUuid(this.trailer.uuid);
  }

  get encrypted(): boolean {
    return this.keys !== undefined;
  }

  /** The index hash that deltas of this archive record (the root hash). */
  get rootHash(): Uint8Array {
    return this.trailer.rootHash;
  }

  /** True for a single-file archive (one entry, `disk`). */
  get isSingleFile(): boolean {
    return this.root.metadata.source?.type === 'file';
  }

  /**
   * Find every base (`BASE_MISSING`, `BASE_MISMATCH` or a signature refusal for the first that fails):
   * where each was found, by owner slot − 1. Reads never need this; verify, info and packing on top do.
   */
  findBases(): Promise<FoundBase[]> {
    return this.bases.findAll();
  }

  /** Size of each base archive by owner slot − 1, undefined where it cannot be found or stat'ed (info pages). */
  async baseSizes(): Promise<Array<number | undefined>> {
    const out: Array<number | undefined> = [];
    for (let slot = 1; slot <= this.bases.count; slot++) {
      out.push(await this.bases.use(slot, (s) => s.stat()).then((st) => st.size, () => undefined));
    }
    return out;
  }

  info(): ArchiveInfo {
    return archiveInfo(this.opened);
  }

  /**
   * The signature of every archive of the chain — this one first, then each base by owner slot —
   * checked against `trusted` (without it, signed archives are `unchecked`). Finds every base (one
   * trailer read each, unless already open); `BASE_MISSING` when one cannot be found.
   */
  async signatures(trusted?: TrustedKeys): Promise<ChainSignature[]> {
    const bases = await this.bases.findAll();
    return [this.ownSignature(trusted), ...bases.map((c, i) => ({ url: c.url, uuid: formatUuid(c.trailer.uuid), slot: i + 1, ...checkSignature(c.trailerBytes, c.trailer, trusted) }))];
  }

  /** The signature of this archive alone (no base is contacted). */
  ownSignature(trusted?: TrustedKeys): ChainSignature {
    return { url: this.url, uuid: formatUuid(this.trailer.uuid), slot: 0, ...checkSignature(this.trailerBytes, this.trailer, trusted) };
  }

  // ---- change notification ----------------------------------------------------------------------

  /** Call `listener` whenever a read finds the archive replaced; returns a function that unsubscribes. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal the storage wrapper's hook (see ./changes.ts). */
  notifyChanged(err: HexzError): void {
    if (this.closed) return;
    for (const l of this.listeners) l(err);
  }

  // ---- paths ------------------------------------------------------------------------------------

  /** The entry at `path`, or undefined. `""` (or `/`) is the top directory. */
  lookup(path: string): Promise<FileEntry | undefined> {
    return this.paths.lookup(path);
  }

  /** The entry at `path`; `PATH_NOT_FOUND` if there is none. */
  entry(path: string): Promise<FileEntry> {
    return this.paths.entry(path);
  }

  /**
   * The entry at `path`: its type, mode, mtime (ns), size and, for symlinks, target. Like lstat(2) it
   * describes a symlink itself; with `followSymlinks` it resolves symlinks in every component like
   * stat(2) (see `resolve`). `PATH_NOT_FOUND` if there is no such entry.
   */
  stat(path: string, opts: { followSymlinks?: boolean } = {}): Promise<FileEntry> {
    return opts.followSymlinks ? this.resolve(path) : this.entry(path);
  }

  /**
   * The entry at `path` with symlinks followed in every component, like open(2) would: relative
   * targets resolve inside the archive; absolute targets and targets escaping the archive's top are
   * `PATH_NOT_FOUND` (they point outside it); more than 40 hops is `SYMLINK_LOOP`.
   */
  resolve(path: string): Promise<FileEntry> {
    return this.paths.resolve(path);
  }

  /**
   * One page of a directory listing, in table order (by name; recursive listings give the direct
   * children first, then deeper levels grouped by directory). `cursor` continues a previous page.
   */
  list(dir: string, opts: ListOptions = {}): Promise<{ entries: FileEntry[]; cursor?: string }> {
    return this.paths.list(dir, opts);
  }

  /** Entries of the file table by type (reads the whole file table: index pages only). */
  entryCounts(): Promise<{ entries: number; files: number; directories: number; symlinks: number }> {
    return this.paths.entryCounts();
  }

  /** Every entry of the file table, in table order (a directory before what it contains). */
  walk(): AsyncGenerator<FileEntry> {
    return this.paths.walk();
  }

  /** Every entry of the archive, in table order: the same as `walk()`. */
  entries(): AsyncGenerator<FileEntry> {
    return this.paths.walk();
  }

  // ---- content ----------------------------------------------------------------------------------

  private async fileEntry(target: string | FileEntry): Promise<FileEntry> {
    const e = typeof target === 'string' ? await this.entry(target) : target;
    if (e.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${e.path || '/'}`, this.opened.ctx({ path: e.path }));
    return e;
  }

  /**
   * `length` bytes of a file at `offset`. Exact or a typed error; never short. The result may be a
   * read-only view into the cache.
   */
  async read(target: string | FileEntry, offset: number, length: number, opts: ReadRangeOptions = {}): Promise<Uint8Array> {
    return this.content.read(await this.fileEntry(target), offset, length, opts);
  }

  /**
   * Copy `n` bytes of a file at `offset` into `dst`, loading what is missing; resolves false (nothing
   * written) when `dst` was detached meanwhile. With `readahead`, sequential readers prefetch ahead.
   */
  async readInto(target: string | FileEntry, offset: number, n: number, dst: Uint8Array, opts: ReadRangeOptions = {}): Promise<boolean> {
    return this.content.readInto(await this.fileEntry(target), offset, n, dst, opts);
  }

  /**
   * Copy `n` bytes of file `e` at `offset` into `dst` synchronously when everything they need is
   * cached: true when done, false when something must be loaded (nothing was written; use
   * `readInto`). The same checks as every other read apply.
   */
  readCachedInto(e: FileEntry, offset: number, n: number, dst: Uint8Array): boolean {
    if (e.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${e.path || '/'}`, this.opened.ctx({ path: e.path }));
    return this.content.readCachedInto(e, offset, n, dst);
  }

  /**
   * Views of `n` bytes of regular file `e` at `offset` straight from the cache, synchronously, when
   * everything they need is cached; undefined otherwise (nothing held). Call `release()` once the
   * views are no longer used (e.g. when the socket has sent them).
   */
  cachedViews(e: FileEntry, offset: number, n: number): { views: Uint8Array[]; release(): void } | undefined {
    if (e.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${e.path || '/'}`, this.opened.ctx({ path: e.path }));
    return this.content.cachedViews(e, offset, n);
  }

  /**
   * Warm the cache for `[start, end)` of a file in the background, within the process-wide prefetch
   * allowance; errors are left for real reads.
   */
  prefetch(e: FileEntry, start: number, end: number): void {
    if (this.closed || e.type !== 'file') return;
    this.content.prefetch(e, start, Math.min(end, e.size));
  }

  /**
   * A stream of a file's bytes `[start, end]` (inclusive, like fs.createReadStream). It prefetches a
   * window that grows from 1 MiB to 32 MiB, applies backpressure, and stops loading when destroyed.
   */
  createReadStream(target: string | FileEntry, opts: { start?: number; end?: number; signal?: AbortSignal; highWaterMark?: number } = {}): Readable {
    const pieces = this.pieces(target, { start: opts.start, end: opts.end === undefined ? undefined : opts.end + 1, signal: opts.signal });
    async function* bytes() {
      for await (const p of pieces) yield p.bytes;
    }
    return Readable.from(bytes(), { objectMode: false, highWaterMark: opts.highWaterMark ?? 1024 * 1024 });
  }

  /**
   * The content of a file's range `[start, end)` as pieces in order: views of cached chunks, or views
   * of a shared zero page for holes (`hole: true`, so writers can leave them sparse).
   */
  async *pieces(target: string | FileEntry, opts: { start?: number; end?: number; signal?: AbortSignal; cold?: boolean } = {}): AsyncGenerator<ContentPiece> {
    yield* this.content.pieces(await this.fileEntry(target), opts);
  }

  /**
   * The content of `spans` (byte ranges of regular files, in order: one file, or many files of an
   * extract) as pieces whose bytes are views into cache memory, valid until each piece's `release()`,
   * which the consumer must call. The bulk readers' path: chunks stored together are fetched with one
   * request and decoded together on the decode threads; with `cold`, a one-pass reader's chunks are
   * the first to be evicted.
   */
  leasedPieces(spans: readonly ReadSpan[], opts: BulkReadOptions = {}): AsyncGenerator<LeasedPiece> {
    for (const s of spans) {
      if (s.entry.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${s.entry.path || '/'}`, this.opened.ctx({ path: s.entry.path }));
    }
    return this.content.leasedPieces(spans, opts);
  }

  /**
   * The content digest of a regular file (src/format/content-digest.ts): equal exactly when the bytes
   * are, and the same in every version of the archive that shares the file's chunks.
   */
  async contentDigest(target: string | FileEntry): Promise<Uint8Array> {
    return this.content.contentDigest(await this.fileEntry(target));
  }

  // ---- chunks (the library's own tools: verify, diff, flatten, the packer, workspaces) ------------

  /** Chunk references overlapping the logical range [start, end), in order. */
  refsIn(start: number, end: number): AsyncGenerator<ChunkRef> {
    return this.pages.refsIn(start, end);
  }

  /** All chunk references of a file, in order. */
  fileRefs(entry: FileEntry): AsyncGenerator<ChunkRef> {
    return this.pages.refsIn(entry.logical, entry.logical + entry.size);
  }

  /** Read and verify a chunk from storage, bypassing the cache (verify). */
  fetchChunk(ref: ChunkRef): Promise<Uint8Array> {
    return this.content.fetchChunk(ref);
  }

  /** A stored chunk's bytes as stored (compressed, sealed) and its verified plaintext (flatten copies the former). */
  fetchEncoded(ref: ChunkRef): Promise<{ stored: Uint8Array; plain: Uint8Array }> {
    return this.content.fetchEncoded(ref);
  }

  /** Decode and verify stored chunks, bypassing the cache (verify); resolves with those that failed. */
  verifyChunks(refs: readonly ChunkRef[]): Promise<Array<{ ref: ChunkRef; error: unknown }>> {
    return this.content.verifyChunks(refs);
  }

  /** The plaintext of a chunk, through the cache (verified once when it enters). */
  loadChunk(ref: ChunkRef): Promise<Uint8Array> {
    return this.content.loadChunk(ref);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.content.close();
    this.listeners.clear();
    await Promise.all([...(this.ownsStorage ? [this.storage.close()] : []), this.bases.close()]);
  }
}

/**
 * The cache namespace of an archive's chunk ids: 1 for plain BLAKE3 ids; for keyed ids a value from
 * the id key (never 0 or 1), so an archive under one key can never be served another key's plaintext.
 */
function chunkTagOf(keys: ArchiveKeys | undefined): number {
  if (!keys) return 1;
  return 2 + (hash(keys.idKey).readUInt32LE(0) & 0x3fff_ffff);
}

/**
 * Open an archive from a path, URL or an already-open storage. Costs one suffix read (two for large
 * roots). The bases of a thin archive are found when first needed, relative to the archive's own URL
 * and never off its scheme and host, unless `baseDir`/`baseMap`/`resolveBase` say otherwise.
 */
export async function openArchive(source: string | URL | Storage, opts: OpenArchiveOptions = {}): Promise<Archive> {
  const owns = typeof source === 'string' || source instanceof URL;
  let raw = owns ? await openStorage(source as string | URL, opts.storage) : (source as Storage);
  if (owns && opts.wrapStorage) raw = opts.wrapStorage(raw);
  // The archive does not exist yet when its storages are wrapped: changes are routed to it once it does.
  let archive: Archive | undefined;
  const onChanged = (err: HexzError) => archive?.notifyChanged(err);
  const storage = coalesceReads(watchChanges(raw, onChanged));
  try {
    const { trailer, tail, stat } = await readTrailer(storage, undefined, { signal: opts.signal });
    const trailerBytes = trailerBytesOf(tail, trailer);
    // Before the key is derived (scrypt) or the root read: an untrusted archive costs nothing more.
    if (opts.trustedKeys) requireTrusted(checkSignature(trailerBytes, trailer, opts.trustedKeys), { archive: storage.url, url: storage.url });
    const keys = await unlock(trailer, opts.key, storage.url);
    const root = await readRoot(storage, trailer, tail, keys, { signal: opts.signal });
    // Bases are found when first needed (a chunk they own is read, or verify): nothing is sent to
    // their hints now, however many the root lists.
    const bases = new ArchiveBases(
      storage.url,
      root.bases,
      { ...opts, encrypted: keys !== undefined, keyCheck: keys ? trailer.keyCheck : undefined },
      (s) => coalesceReads(watchChanges(s, onChanged)),
    );
    archive = new Archive(
      { url: storage.url, storage, storageStat: stat, trailer, trailerBytes, root, tail, cache: opts.cache ?? sharedCache(), keys, bases, decodeThreads: opts.decodeThreads ?? defaultDecodeThreads() },
      owns,
    );
    // Trust is a property of the whole chain: with trusted keys required, every base is found and its
    // signature checked now, before anything of the archive is served.
    if (opts.trustedKeys) await bases.findAll();
    return archive;
  } catch (err) {
    if (archive) await archive.close();
    else if (owns) await storage.close();
    throw err;
  }
}
