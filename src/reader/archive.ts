/**
 * The archive reader: open with ≤ 2 reads, then answer stat/list/read from lazily loaded, cached index
 * pages and chunks. It never knows which storage backend it reads from.
 *
 * Reading a byte range: binary search the root for the chunk-index page, binary search the page for the
 * references, load each chunk through the shared block cache (coalesced into few requests, verified
 * once on entry), and slice — a range inside one chunk is returned without copying.
 *
 * Bytes returned by `read` and streams are read-only views into cached chunks: do not modify them.
 */
import { posix as posixPath } from 'node:path';
import { Readable } from 'node:stream';
import { BlockCache, sharedCache } from '../../cache/block-cache.js';
import { coalesceReads } from '../../cache/coalesce.js';
import { INITIAL_READAHEAD, MAX_READAHEAD, Readahead } from '../../cache/readahead.js';
import { openStorage, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageStat } from '../../storage/types.js';
import { HexzError, throwIfAborted, type ErrorContext } from '../errors.js';
import { compareBytes, toHex } from '../format/bytes.js';
import { ChunkIndexPage, type ChunkRef } from '../format/chunk-index.js';
import { chunkIdFunction, decodeChunk } from '../format/chunk.js';
import { FRAME_CHUNK_PAGE, FRAME_FILE_PAGE } from '../format/constants.js';
import { decodeFilePage, normalizePath, sortKey, type FileEntry } from '../format/file-table.js';
import { decodeFrame } from '../format/frame.js';
import { formatUuid, type Trailer } from '../format/header.js';
import type { Root } from '../format/root.js';
import type { ArchiveKeys, KeySource } from '../crypto/keys.js';
import { openBase, type BaseResolution } from './bases.js';
import { readRoot, readStructure, readTrailer, unlock, type Tail } from './open.js';

export interface OpenArchiveOptions extends BaseResolution {
  /** Settings for the storage backends (S3 endpoint, HTTP timeouts…). */
  storage?: StorageOptions;
  /** Block cache; the process-wide shared cache by default. */
  cache?: BlockCache;
  /** Key of an encrypted archive. */
  key?: KeySource;
  /** Wrap every storage this archive opens (metering); applied before coalescing. */
  wrapStorage?: (s: Storage) => Storage;
  signal?: AbortSignal;
}

export interface ReadRangeOptions {
  signal?: AbortSignal;
  /** Per-handle sequential detector: when given, sequential reads prefetch ahead. */
  readahead?: Readahead;
}

export interface ListOptions {
  recursive?: boolean;
  /** Opaque cursor from the previous page. */
  cursor?: string;
  limit?: number;
}

/** Summary of an archive for `hexz info` and the gateway. */
export interface ArchiveInfo {
  url: string;
  uuid: string;
  formatVersion: number;
  encrypted: boolean;
  keyDerivation: 'none' | 'key' | 'scrypt';
  archiveSize: number;
  etag?: string;
  created?: string;
  creator?: string;
  source: { name?: string; type: 'directory' | 'file' };
  compression: { codec?: string; level?: number };
  chunking: Root['chunking'];
  /**
   * Entries of the file table, of all types (files, directories and symlinks; the root's count). The
   * name is historical: `entryCounts()` splits it by type.
   */
  fileCount: number;
  logicalSize: number;
  chunkRefs: number;
  storedChunks: number;
  storedChunkBytes: number;
  uniqueRawBytes?: number;
  holeBytes: number;
  selfLogicalBytes: number;
  codecs?: Record<string, { chunks: number; rawBytes: number; storedBytes: number }>;
  /** Logical bytes per stored unique byte among this archive's own chunks. */
  dedupRatio?: number;
  /** Raw bytes per stored byte of this archive's own chunks. */
  compressionRatio?: number;
  bases: Array<{ uuid: string; hint: string; url?: string; direct: boolean; logicalBytes: number }>;
  user: Record<string, string>;
}

const ZEROS = Buffer.alloc(1024 * 1024);

/** A piece of file content: `bytes` at file offset `offset`; `hole` when they are a view of zeros. */
export interface ContentPiece {
  offset: number;
  bytes: Uint8Array;
  hole: boolean;
}
const ROOT_DIR_MODE = 0o755;
/** Symlink hops before a path counts as a loop (Linux's limit). */
const MAX_SYMLINK_HOPS = 40;

/** Plaintext of a hole: a view of a shared zero page when it fits (read-only!). */
function zeros(n: number): Uint8Array {
  return n <= ZEROS.byteLength ? ZEROS.subarray(0, n) : Buffer.alloc(n);
}

interface FilePage {
  entries: FileEntry[];
  keys: Buffer[];
}

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
 * - `read(path, offset, length)`, `createReadStream(path, {start, end})`, `pieces(path)`: content.
 * - `info()`: format, sizes, ratios, chunking, bases; `storageStat`: size and etag of the archive
 *   object itself.
 */
export class Archive {
  private readonly filePageKeys: Buffer[];
  private readonly idOf: (plain: Uint8Array) => Uint8Array;
  private readonly baseStorages: Storage[];
  private closed = false;

  /** @internal use `openArchive` */
  constructor(
    readonly url: string,
    readonly storage: Storage,
    /** Size (and etag) of the archive object in its storage, as found when it was opened. */
    readonly storageStat: StorageStat,
    readonly trailer: Trailer,
    readonly root: Root,
    private readonly tail: Tail,
    readonly cache: BlockCache,
    readonly keys: ArchiveKeys | undefined,
    baseStorages: Storage[],
    private readonly ownsStorage: boolean,
  ) {
    this.filePageKeys = root.filePages.map((p) => sortKey(p.firstPath));
    this.idOf = chunkIdFunction(keys);
    this.baseStorages = baseStorages;
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

  /** Storages of the bases, by owner slot − 1. */
  get bases(): readonly Storage[] {
    return this.baseStorages;
  }

  private ctx(extra: ErrorContext = {}): ErrorContext {
    return { archive: this.url, ...extra };
  }

  info(): ArchiveInfo {
    const r = this.root;
    const m = r.metadata;
    const stats = (m.stats ?? {}) as { uniqueRawBytes?: number; codecs?: ArchiveInfo['codecs'] };
    const kdf = this.trailer.kdf.kind;
    return {
      url: this.url,
      uuid: this.uuid,
      formatVersion: this.trailer.version,
      encrypted: this.encrypted,
      keyDerivation: kdf === 0 ? 'none' : kdf === 1 ? 'key' : 'scrypt',
      archiveSize: this.storageStat.size,
      etag: this.storageStat.etag,
      created: m.created,
      creator: m.creator,
      source: { name: m.source?.name, type: m.source?.type === 'file' ? 'file' : 'directory' },
      compression: { codec: m.compression?.codec, level: m.compression?.level },
      chunking: r.chunking,
      fileCount: r.fileCount,
      logicalSize: r.logicalSize,
      chunkRefs: r.refCount,
      storedChunks: r.storedChunkCount,
      storedChunkBytes: r.storedChunkBytes,
      uniqueRawBytes: stats.uniqueRawBytes,
      holeBytes: r.holeBytes,
      selfLogicalBytes: r.selfLogicalBytes,
      codecs: stats.codecs,
      dedupRatio: stats.uniqueRawBytes ? r.selfLogicalBytes / stats.uniqueRawBytes : undefined,
      compressionRatio: stats.uniqueRawBytes && r.storedChunkBytes ? stats.uniqueRawBytes / r.storedChunkBytes : undefined,
      bases: r.bases.map((b, i) => ({
        uuid: formatUuid(b.uuid),
        hint: b.hint,
        url: this.baseStorages[i]?.url,
        direct: b.direct,
        logicalBytes: b.logicalBytes,
      })),
      user: m.user ?? {},
    };
  }

  // ---- index pages ------------------------------------------------------------------------------

  /**
   * Load a page through the cache (keyed by its hash, so versions share pages): read it (from the tail
   * when it is there), verify and decode the frame, then `parse` the body. The cache is shared by every
   * archive of the process, so a page parsed for one archive may be served to another whose root lists
   * the same hash in another place: `check` validates what depends on *this* archive's root (position,
   * count, neighbours, base count) on every use, from the cache or not.
   */
  private async page<T>(
    kind: number,
    name: string,
    p: { offset: number; length: number; hash: Uint8Array },
    parse: (body: Uint8Array, ctx: ErrorContext) => T,
    check: (value: T, ctx: ErrorContext) => void,
    sizeOf: (v: T) => number,
  ): Promise<T> {
    const ctx = this.ctx({ structure: name, offset: p.offset });
    const value = await this.cache.get(
      `p${toHex(p.hash)}`,
      async () => {
        const stored = await readStructure(this.storage, this.tail, p.offset, p.length);
        return parse(decodeFrame(stored, kind, p.hash, { uuid: this.trailer.uuid, keys: this.keys }, ctx), ctx);
      },
      sizeOf,
    );
    check(value, ctx);
    return value;
  }

  private chunkPage(i: number): Promise<ChunkIndexPage> {
    const p = this.root.chunkPages[i];
    const bases = this.root.bases.length;
    return this.page(
      FRAME_CHUNK_PAGE,
      `chunk-index page ${i}`,
      p,
      (body, ctx) => new ChunkIndexPage(body, p.firstLogical, p.count, bases, ctx),
      (page, ctx) => this.checkChunkPage(i, page, ctx),
      (page) => page.body.byteLength,
    );
  }

  /** What chunk-index page `i` must be for *this* archive's root (cached pages may come from another archive). */
  private checkChunkPage(i: number, page: ChunkIndexPage, ctx: ErrorContext): void {
    const p = this.root.chunkPages[i];
    const bases = this.root.bases.length;
    const fail = (msg: string) => new HexzError('CORRUPT', `corrupt chunk-index page ${i}: ${msg}`, ctx);
    if (page.firstLogical !== p.firstLogical) throw fail(`starts at ${page.firstLogical}, the root says ${p.firstLogical}`);
    if (page.count !== p.count) throw fail(`holds ${page.count} references, the root says ${p.count}`);
    if (page.maxOwner > bases) throw fail(`names owner ${page.maxOwner} but the archive has ${bases} bases`);
    const next = this.root.chunkPages[i + 1];
    const expectedEnd = next ? next.firstLogical : this.root.logicalSize;
    if (page.endLogical !== expectedEnd) throw fail(`ends at ${page.endLogical}, expected ${expectedEnd}`);
  }

  private filePage(i: number): Promise<FilePage> {
    const p = this.root.filePages[i];
    return this.page(
      FRAME_FILE_PAGE,
      `file-table page ${i}`,
      p,
      (body, ctx) => {
        const entries = decodeFilePage(body, p.count, ctx);
        return { entries, keys: entries.map((e) => sortKey(e.path)) };
      },
      (page, ctx) => {
        const fail = (msg: string) => new HexzError('CORRUPT', `corrupt file-table page ${i}: ${msg}`, ctx);
        if (page.entries.length !== p.count) throw fail(`holds ${page.entries.length} entries, the root says ${p.count}`);
        if (page.entries[0].path !== p.firstPath) throw fail('first path differs from the root');
        // Pages are slices of one sorted table: the last entry sorts before the next page's first.
        const next = this.filePageKeys[i + 1];
        if (next && compareBytes(page.keys[page.keys.length - 1], next) >= 0) throw fail('overlaps the next page');
      },
      (page) => page.entries.length * 160,
    );
  }

  /** Index of the last file page whose first key ≤ key, or -1. */
  private filePageFor(key: Buffer): number {
    let lo = 0;
    let hi = this.filePageKeys.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.filePageKeys[mid], key) <= 0) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** Index of the chunk page containing logical offset x. */
  private chunkPageFor(x: number): number {
    const pages = this.root.chunkPages;
    let lo = 0;
    let hi = pages.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (pages[mid].firstLogical <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // ---- file table -------------------------------------------------------------------------------

  /** The synthetic entry of the archive's top directory. */
  private rootEntry(): FileEntry {
    const created = Date.parse(this.root.metadata.created ?? '');
    return {
      path: '',
      type: 'directory',
      mode: ROOT_DIR_MODE,
      mtimeNs: BigInt(Number.isFinite(created) ? created : 0) * 1_000_000n,
      size: 0,
      logical: 0,
      firstRef: 0,
      refCount: 0,
    };
  }

  /** The entry at `path`, or undefined. `""` (or `/`) is the top directory. */
  async lookup(path: string): Promise<FileEntry | undefined> {
    const p = normalizePath(path);
    if (p === '') return this.rootEntry();
    const key = sortKey(p);
    const pi = this.filePageFor(key);
    if (pi < 0) return undefined;
    const page = await this.filePage(pi);
    let lo = 0;
    let hi = page.keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(page.keys[mid], key);
      if (c === 0) return page.entries[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** The entry at `path`; `PATH_NOT_FOUND` if there is none. */
  async entry(path: string): Promise<FileEntry> {
    const e = await this.lookup(path);
    if (!e) throw new HexzError('PATH_NOT_FOUND', `no such path in archive: ${path}`, this.ctx({ path }));
    return e;
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
   * The entry at `path` with symlinks followed (in every component), like open(2) would: relative
   * targets resolve inside the archive; absolute targets and targets escaping the archive's top are
   * `PATH_NOT_FOUND` (they point outside it); more than 40 hops is a loop (`INVALID_ARGUMENT`).
   */
  async resolve(path: string): Promise<FileEntry> {
    let pending = normalizePath(path).split('/').filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (pending.length) {
      const name = pending.shift()!;
      const here = [...done, name].join('/');
      const e = await this.lookup(here);
      if (!e) throw new HexzError('PATH_NOT_FOUND', `no such path in archive: ${path}${here !== normalizePath(path) ? ` (${here} does not exist)` : ''}`, this.ctx({ path }));
      if (e.type !== 'symlink') {
        done.push(name);
        continue;
      }
      if (++hops > MAX_SYMLINK_HOPS) throw new HexzError('INVALID_ARGUMENT', `too many levels of symbolic links resolving ${path}`, this.ctx({ path }));
      const target = e.target ?? '';
      const joined = posixPath.normalize(posixPath.join(done.join('/'), target));
      if (target.startsWith('/') || joined === '..' || joined.startsWith('../')) {
        throw new HexzError('PATH_NOT_FOUND', `${here} is a symlink to ${target}, outside the archive`, this.ctx({ path }));
      }
      pending = [...joined.split('/').filter((p) => p && p !== '.'), ...pending];
      done.length = 0;
    }
    return this.entry(done.join('/'));
  }

  /** Entries whose key is in [lo, hi) and greater than `after`, in table order. */
  private async *scan(lo: Buffer, hi: Buffer | undefined, after?: Buffer): AsyncGenerator<FileEntry> {
    const start = after && compareBytes(after, lo) >= 0 ? after : lo;
    let pi = Math.max(0, this.filePageFor(start));
    for (; pi < this.root.filePages.length; pi++) {
      if (hi && compareBytes(this.filePageKeys[pi], hi) >= 0) return;
      const page = await this.filePage(pi);
      for (let i = 0; i < page.entries.length; i++) {
        const k = page.keys[i];
        if (compareBytes(k, lo) < 0 || (after && compareBytes(k, after) <= 0)) continue;
        if (hi && compareBytes(k, hi) >= 0) return;
        yield page.entries[i];
      }
    }
  }

  /**
   * One page of a directory listing, in table order (by name; recursive listings give the direct
   * children first, then deeper levels grouped by directory). `cursor` continues a previous page.
   */
  async list(dir: string, opts: ListOptions = {}): Promise<{ entries: FileEntry[]; cursor?: string }> {
    const d = normalizePath(dir);
    const e = await this.entry(d);
    if (e.type !== 'directory') throw new HexzError('NOT_A_DIRECTORY', `not a directory: ${d}`, this.ctx({ path: d }));
    const limit = Math.max(1, opts.limit ?? Number.MAX_SAFE_INTEGER);
    const after = opts.cursor ? sortKey(decodeCursor(opts.cursor)) : undefined;
    const ranges: Array<[Buffer, Buffer | undefined]> = [];
    if (opts.recursive && d === '') ranges.push([Buffer.alloc(0), undefined]);
    else {
      ranges.push([Buffer.from(`${d}\0`), Buffer.from(`${d}\x01`)]);
      if (opts.recursive) ranges.push([Buffer.from(`${d}/`), Buffer.from(`${d}0`)]);
    }
    const entries: FileEntry[] = [];
    for (const [lo, hi] of ranges) {
      for await (const entry of this.scan(lo, hi, after)) {
        if (entries.length === limit) return { entries, cursor: encodeCursor(entries[entries.length - 1].path) };
        entries.push(entry);
      }
    }
    return { entries };
  }

  /**
   * Entries of the file table by type. The root records only the total, so this reads the whole file
   * table (index pages only, no chunk data; cached like any page).
   */
  async entryCounts(): Promise<{ entries: number; files: number; directories: number; symlinks: number }> {
    const n = { entries: 0, files: 0, directories: 0, symlinks: 0 };
    for await (const e of this.walk()) {
      n.entries++;
      if (e.type === 'file') n.files++;
      else if (e.type === 'directory') n.directories++;
      else n.symlinks++;
    }
    return n;
  }

  /**
   * Every entry of the file table, in table order (a directory before what it contains), loading one
   * file-table page at a time.
   */
  async *walk(): AsyncGenerator<FileEntry> {
    for (let pi = 0; pi < this.root.filePages.length; pi++) {
      yield* (await this.filePage(pi)).entries;
    }
  }

  /** Every entry of the archive, in table order: the same as `walk()`. */
  entries(): AsyncGenerator<FileEntry> {
    return this.walk();
  }

  // ---- chunks -----------------------------------------------------------------------------------

  /** Chunk references overlapping the logical range [start, end). */
  async *refsIn(start: number, end: number): AsyncGenerator<ChunkRef> {
    if (end <= start || this.root.chunkPages.length === 0) return;
    for (let pi = this.chunkPageFor(start); pi < this.root.chunkPages.length; pi++) {
      if (this.root.chunkPages[pi].firstLogical >= end) return;
      const page = await this.chunkPage(pi);
      for (let i = page.firstLogical <= start ? page.find(start) : 0; i < page.count; i++) {
        const ref = page.ref(i);
        if (ref.logical >= end) return;
        yield ref;
      }
    }
  }

  /** All chunk references of a file, in order. */
  fileRefs(entry: FileEntry): AsyncGenerator<ChunkRef> {
    return this.refsIn(entry.logical, entry.logical + entry.size);
  }

  private ownerStorage(owner: number): Storage {
    if (owner === 0) return this.storage;
    const s = this.baseStorages[owner - 1];
    if (!s) throw new HexzError('BASE_MISSING', `base ${owner} of ${this.url} is not open`, this.ctx());
    return s;
  }

  /** Read and verify a chunk from storage, bypassing the cache (verify). */
  async fetchChunk(ref: ChunkRef): Promise<Uint8Array> {
    if (ref.hole) return zeros(ref.raw);
    return (await this.fetchEncoded(ref)).plain;
  }

  /** A stored chunk's bytes as stored (compressed, sealed) and its verified plaintext (flatten copies the former). */
  async fetchEncoded(ref: ChunkRef): Promise<{ stored: Uint8Array; plain: Uint8Array }> {
    const storage = this.ownerStorage(ref.owner);
    const stored = await storage.read(ref.offset, ref.stored);
    // decodeChunk checks the id and that the plaintext is exactly ref.raw bytes.
    let plain = decodeChunk(stored, ref, this.idOf, this.keys, { archive: storage.url, offset: ref.offset });
    // A raw (codec none) chunk is a view into the read it came from, which coalescing may have made
    // 16 MiB long: copy it, or caching the chunk would keep the whole read alive outside the budget.
    if (plain.byteLength !== plain.buffer.byteLength) plain = Buffer.from(plain);
    return { stored, plain };
  }

  /**
   * The plaintext of a chunk, through the cache (verified once when it enters). The cache is keyed by
   * chunk id only, so an entry may have been loaded through another reference (of this archive or of
   * another one): the id proves the content, but the length must also be the one *this* reference
   * covers, or a hostile index could make readers return short pieces or uninitialised memory.
   */
  async loadChunk(ref: ChunkRef): Promise<Uint8Array> {
    if (ref.hole) return zeros(ref.raw);
    const plain = await this.cache.get(`c${toHex(ref.id)}`, () => this.fetchChunk(ref), (b) => b.byteLength);
    checkChunkLength(ref, plain, this.ctx());
    return plain;
  }

  // ---- content ----------------------------------------------------------------------------------

  private async fileEntry(target: string | FileEntry): Promise<FileEntry> {
    const e = typeof target === 'string' ? await this.entry(target) : target;
    if (e.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${e.path || '/'}`, this.ctx({ path: e.path }));
    return e;
  }

  private checkRange(e: FileEntry, offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > e.size) {
      throw new HexzError('OUT_OF_RANGE', `range ${offset}+${length} is outside ${e.path} (${e.size} bytes)`, this.ctx({ path: e.path, offset, length, size: e.size }));
    }
  }

  private uncovered(e: FileEntry, from: number, to: number): HexzError {
    return new HexzError('CORRUPT', `corrupt chunk index: the references do not cover bytes ${from}..${to} of ${e.path}`, this.ctx({ path: e.path, structure: 'chunk index' }));
  }

  /**
   * `length` bytes of a file at `offset`. Exact or a typed error; never short. The result may be a
   * read-only view into the cache.
   */
  async read(target: string | FileEntry, offset: number, length: number, opts: ReadRangeOptions = {}): Promise<Uint8Array> {
    const e = await this.fileEntry(target);
    this.checkRange(e, offset, length);
    if (length === 0) return new Uint8Array(0);
    const start = e.logical + offset;
    const end = start + length;
    const refs: ChunkRef[] = [];
    for await (const r of this.refsIn(start, end)) refs.push(r);
    const chunks = await Promise.all(refs.map((r) => this.loadChunk(r)));
    throwIfAborted(opts.signal, this.ctx({ path: e.path }));
    if (opts.readahead) {
      const ahead = opts.readahead.observe(offset, length);
      if (ahead) this.prefetch(e, ahead.start, Math.min(ahead.end, e.size));
    }
    // Every byte of `out` is written below only if the references cover [start, end) exactly and each
    // chunk is as long as its reference says (loadChunk checks the latter); check the former here.
    const covered = refs.length > 0 && refs[0].logical <= start && refs[refs.length - 1].logical + refs[refs.length - 1].raw >= end;
    if (!covered) throw this.uncovered(e, offset, offset + length);
    if (refs.length === 1) return chunks[0].subarray(start - refs[0].logical, end - refs[0].logical);
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i];
      checkChunkLength(r, chunks[i], this.ctx({ path: e.path }));
      const from = Math.max(start, r.logical);
      const to = Math.min(end, r.logical + r.raw);
      out.set(chunks[i].subarray(from - r.logical, to - r.logical), from - start);
    }
    return out;
  }

  /**
   * Copy `n` bytes of file `e` at `offset` into `dst` synchronously, straight from the cache: true
   * when the index page and every chunk were cached (the FUSE read path answers most reads this way,
   * without a promise), false when something must be loaded (nothing was written; use an async read).
   * The same checks as the async path apply: page against this archive's root, chunk lengths.
   */
  readCachedInto(e: FileEntry, offset: number, n: number, dst: Uint8Array): boolean {
    if (n === 0) return true;
    const pages = this.root.chunkPages;
    const start = e.logical + offset;
    const end = start + n;
    if (pages.length === 0 || end > e.logical + e.size) return false;
    const plan: Array<{ chunk: Uint8Array | undefined; from: number; to: number; at: number }> = [];
    let covered = start;
    for (let pi = this.chunkPageFor(start); pi < pages.length && pages[pi].firstLogical < end && covered < end; pi++) {
      const page = this.cache.getIfCached<ChunkIndexPage>(`p${toHex(pages[pi].hash)}`);
      if (!page) return false;
      const ctx = this.ctx({ structure: `chunk-index page ${pi}`, offset: pages[pi].offset });
      this.checkChunkPage(pi, page, ctx);
      for (let i = page.firstLogical <= start ? page.find(start) : 0; i < page.count; i++) {
        const ref = page.ref(i);
        if (ref.logical >= end) break;
        if (ref.logical > covered || ref.logical + ref.raw <= covered) return false; // a gap: let the async path report it
        const chunk = ref.hole ? undefined : this.cache.getIfCached<Uint8Array>(`c${toHex(ref.id)}`);
        if (!ref.hole && !chunk) return false;
        if (chunk) checkChunkLength(ref, chunk, this.ctx({ path: e.path }));
        const from = covered - ref.logical;
        const to = Math.min(end, ref.logical + ref.raw) - ref.logical;
        plan.push({ chunk, from, to, at: covered - start });
        covered = ref.logical + to;
      }
    }
    if (covered !== end) return false;
    for (const p of plan) {
      if (p.chunk) dst.set(p.chunk.subarray(p.from, p.to), p.at);
      else dst.fill(0, p.at, p.at + p.to - p.from);
    }
    return true;
  }

  /**
   * Warm the cache for [start, end) of a file, in the background, within the process-wide prefetch
   * allowance (it stops early when the allowance is used up); errors are left for real reads.
   */
  prefetch(e: FileEntry, start: number, end: number): void {
    if (end <= start) return;
    void (async () => {
      for await (const r of this.refsIn(e.logical + start, e.logical + end)) {
        if (this.closed) return;
        if (r.hole || this.cache.has(`c${toHex(r.id)}`)) continue;
        if (!this.cache.tryReservePrefetch(r.raw)) return;
        this.loadChunk(r)
          .catch(() => {})
          .finally(() => this.cache.releasePrefetch(r.raw));
      }
    })().catch(() => {});
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
   * of a shared zero page for holes (at most 1 MiB each, `hole: true`, so writers can leave them
   * sparse). Prefetches a window that grows from 1 MiB to 32 MiB ahead of the consumer; stops loading
   * when the consumer stops iterating.
   */
  async *pieces(target: string | FileEntry, opts: { start?: number; end?: number; signal?: AbortSignal } = {}): AsyncGenerator<ContentPiece> {
    const e = await this.fileEntry(target);
    const first = opts.start ?? 0;
    const stop = opts.end ?? e.size;
    this.checkRange(e, first, stop - first);
    if (stop === first) return;
    const start = e.logical + first;
    const end = e.logical + stop;
    const refs = this.refsIn(start, end);
    const queue: Array<{ ref: ChunkRef; data: Promise<Uint8Array> }> = [];
    let queued = 0;
    let reserved = 0; // bytes of the cache's prefetch allowance held by this stream
    let nextRaw = 64 * 1024;
    let window = INITIAL_READAHEAD;
    let exhausted = false;
    let pos = start; // next logical byte to yield
    try {
      for (;;) {
        // Fill the window: the first chunk in the queue is always allowed (progress is guaranteed);
        // more only within the process-wide prefetch allowance.
        while (!exhausted && queued < window && (queue.length === 0 || this.cache.tryReservePrefetch(nextRaw))) {
          if (queue.length > 0) reserved += nextRaw;
          const n = await refs.next();
          if (n.done) {
            exhausted = true;
            break;
          }
          // Holes need no load; a large one would otherwise allocate its whole size.
          const data = n.value.hole ? Promise.resolve(ZEROS) : this.loadChunk(n.value);
          data.catch(() => {}); // awaited below; this only silences rejections of abandoned loads
          queue.push({ ref: n.value, data });
          queued += n.value.hole ? 0 : n.value.raw;
          nextRaw = n.value.hole ? 0 : n.value.raw; // the next chunk is usually the same size
        }
        const item = queue.shift();
        if (!item) {
          // A file entry pointing past the references (a hostile table) must not end the stream short.
          if (pos < end) throw this.uncovered(e, pos - e.logical, stop);
          return;
        }
        const { ref } = item;
        if (!ref.hole) queued -= ref.raw;
        // Give back what this item held of the allowance (never more than was reserved).
        const giveBack = Math.min(reserved, ref.hole ? 0 : ref.raw);
        reserved -= giveBack;
        this.cache.releasePrefetch(giveBack);
        const bytes = await item.data;
        throwIfAborted(opts.signal, this.ctx({ path: e.path }));
        const from = Math.max(start, ref.logical);
        const to = Math.min(end, ref.logical + ref.raw);
        if (from !== pos) throw this.uncovered(e, pos - e.logical, stop);
        pos = to;
        if (ref.hole) {
          for (let at = from; at < to; at += ZEROS.byteLength) {
            const n = Math.min(ZEROS.byteLength, to - at);
            yield { offset: at - e.logical, bytes: ZEROS.subarray(0, n), hole: true };
          }
        } else {
          yield { offset: from - e.logical, bytes: bytes.subarray(from - ref.logical, to - ref.logical), hole: false };
        }
        window = Math.min(MAX_READAHEAD, window * 2);
      }
    } finally {
      this.cache.releasePrefetch(reserved);
      await refs.return(undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...(this.ownsStorage ? [this.storage.close()] : []), ...this.baseStorages.map((s) => s.close())]);
  }
}

/** A chunk's plaintext must be exactly as long as the reference using it says. */
function checkChunkLength(ref: ChunkRef, plain: Uint8Array, ctx: ErrorContext): void {
  if (!ref.hole && plain.byteLength !== ref.raw) {
    throw new HexzError('CORRUPT', `corrupt chunk index: chunk ${toHex(ref.id).slice(0, 16)}… is ${plain.byteLength} bytes, but the reference at logical offset ${ref.logical} says ${ref.raw}`, {
      ...ctx,
      structure: 'chunk index',
      chunk: toHex(ref.id),
      offset: ref.logical,
    });
  }
}

function encodeCursor(path: string): string {
  return Buffer.from(path, 'utf8').toString('base64url');
}

/**
 * The path a cursor continues after. Only the canonical encoding of a normalized path is a cursor:
 * base64url decoding is lenient (it skips junk characters and accepts padding), so anything that does
 * not encode back to exactly the same string is refused rather than guessed at.
 */
function decodeCursor(cursor: string): string {
  const invalid = () => new HexzError('INVALID_ARGUMENT', 'invalid listing cursor', { cursor: cursor.slice(0, 200) });
  const path = Buffer.from(cursor, 'base64url').toString('utf8');
  let normalized: string;
  try {
    normalized = normalizePath(path);
  } catch {
    throw invalid();
  }
  if (normalized === '' || encodeCursor(normalized) !== cursor) throw invalid();
  return normalized;
}

/**
 * Open an archive from a path, URL or an already-open storage. Costs one suffix read (two for large
 * roots), plus one trailer read per base of a thin archive. Bases are found relative to the archive's
 * own URL unless `baseDir`/`baseMap`/`resolveBase` say otherwise.
 */
export async function openArchive(source: string | URL | Storage, opts: OpenArchiveOptions = {}): Promise<Archive> {
  const owns = typeof source === 'string' || source instanceof URL;
  let raw = owns ? await openStorage(source as string | URL, opts.storage) : (source as Storage);
  if (owns && opts.wrapStorage) raw = opts.wrapStorage(raw);
  const storage = coalesceReads(raw);
  const baseStorages: Storage[] = [];
  try {
    const { trailer, tail, stat } = await readTrailer(storage, undefined, { signal: opts.signal });
    const keys = await unlock(trailer, opts.key, storage.url);
    const root = await readRoot(storage, trailer, tail, keys, { signal: opts.signal });
    for (let i = 0; i < root.bases.length; i++) {
      const base = await openBase(storage.url, root.bases[i], i + 1, {
        ...opts,
        encrypted: keys !== undefined,
        keyCheck: keys ? trailer.keyCheck : undefined,
      });
      baseStorages.push(coalesceReads(base));
    }
    return new Archive(storage.url, storage, stat, trailer, root, tail, opts.cache ?? sharedCache(), keys, baseStorages, owns);
  } catch (err) {
    await Promise.all(baseStorages.map((s) => s.close()));
    if (owns) await storage.close();
    throw err;
  }
}
