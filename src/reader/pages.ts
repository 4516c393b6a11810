/**
 * The paged index of an open archive: chunk-index pages and file-table pages (docs/format.md, sections
 * 5 and 7), loaded lazily through the block cache and checked against this archive's root.
 *
 * Pages are cached by their hash, so versions of an archive share them; the cache is process-wide, so
 * a page parsed for one archive may be served to another whose root lists the same hash in another
 * place. What depends on *this* root (position, count, neighbours, base count) is therefore checked on
 * every use, from the cache or not (docs/format.md, section 10).
 */
import { HexzError, type ErrorContext } from '../errors.js';
import { compareBytes, toHex } from '../format/bytes.js';
import { ChunkIndexPage, type ChunkRef } from '../format/chunk-index.js';
import { CHUNK_REF_SIZE, FRAME_CHUNK_PAGE, FRAME_FILE_PAGE } from '../format/constants.js';
import { decodeFilePage, sortKey, type FileEntry } from '../format/file-table.js';
import { decodeFrame } from '../format/frame.js';
import { readStructure } from './open.js';
import type { OpenedArchive } from './opened.js';

/** A decoded file-table page: its entries and their sort keys, in table order. */
export interface FilePage {
  entries: FileEntry[];
  keys: Buffer[];
}

/** Bytes a decoded file-table entry costs in memory, for the cache budget (path, object, key). */
const FILE_ENTRY_MEMORY = 160;

export class IndexPages {
  /** Sort keys of the first path of every file-table page, for the binary search. */
  private readonly filePageKeys: Buffer[];
  /** Index of the first chunk reference of every chunk-index page (prefix sums of their counts). */
  private readonly firstRefOfPage: number[];

  constructor(private readonly a: OpenedArchive) {
    this.filePageKeys = a.root.filePages.map((p) => sortKey(p.firstPath));
    let n = 0;
    this.firstRefOfPage = a.root.chunkPages.map((p) => {
      const first = n;
      n += p.count;
      return first;
    });
  }

  /** Number of chunk-index pages. */
  get chunkPageCount(): number {
    return this.a.root.chunkPages.length;
  }

  /** Number of file-table pages. */
  get filePageCount(): number {
    return this.a.root.filePages.length;
  }

  /** Index (in the whole chunk index) of the first reference of chunk-index page `i`. */
  firstRefOf(i: number): number {
    return this.firstRefOfPage[i];
  }

  /** First logical offset of chunk-index page `i`. */
  firstLogicalOf(i: number): number {
    return this.a.root.chunkPages[i].firstLogical;
  }

  private cacheKey(hash: Uint8Array): string {
    return `p${toHex(hash)}`;
  }

  /**
   * Load a page through the cache: read it (from the tail when it is there), verify and decode the
   * frame, then `parse` the body. `check` runs on every use (see the module comment).
   */
  private async load<T>(
    kind: number,
    name: string,
    p: { offset: number; length: number; hash: Uint8Array },
    parse: (body: Uint8Array, ctx: ErrorContext) => T,
    check: (value: T, ctx: ErrorContext) => void,
    sizeOf: (v: T) => number,
    expectedRaw?: number,
  ): Promise<T> {
    const ctx = this.a.ctx({ structure: name, offset: p.offset });
    const value = await this.a.cache.getPage(
      this.cacheKey(p.hash),
      async () => {
        const stored = await readStructure(this.a.storage, this.a.tail, p.offset, p.length);
        return parse(decodeFrame(stored, kind, p.hash, { uuid: this.a.trailer.uuid, keys: this.a.keys }, ctx, expectedRaw), ctx);
      },
      sizeOf,
    );
    check(value, ctx);
    return value;
  }

  /** Chunk-index page `i`, loaded if needed. */
  chunkPage(i: number): Promise<ChunkIndexPage> {
    const p = this.a.root.chunkPages[i];
    const bases = this.a.root.bases.length;
    return this.load(
      FRAME_CHUNK_PAGE,
      `chunk-index page ${i}`,
      p,
      (body, ctx) => new ChunkIndexPage(body, p.firstLogical, p.count, bases, ctx),
      (page, ctx) => this.checkChunkPage(i, page, ctx),
      (page) => page.body.byteLength,
      p.count * CHUNK_REF_SIZE,
    );
  }

  /** Chunk-index page `i` if it is in the cache (checked like a loaded one), else undefined. Never loads. */
  cachedChunkPage(i: number): ChunkIndexPage | undefined {
    const p = this.a.root.chunkPages[i];
    const page = this.a.cache.cachedPage<ChunkIndexPage>(this.cacheKey(p.hash));
    if (page) this.checkChunkPage(i, page, this.a.ctx({ structure: `chunk-index page ${i}`, offset: p.offset }));
    return page;
  }

  /** What chunk-index page `i` must be for *this* archive's root. */
  private checkChunkPage(i: number, page: ChunkIndexPage, ctx: ErrorContext): void {
    const { root } = this.a;
    const p = root.chunkPages[i];
    const fail = (msg: string) => new HexzError('CORRUPT', `corrupt chunk-index page ${i}: ${msg}`, ctx);
    if (page.firstLogical !== p.firstLogical) throw fail(`starts at ${page.firstLogical}, the root says ${p.firstLogical}`);
    if (page.count !== p.count) throw fail(`holds ${page.count} references, the root says ${p.count}`);
    if (page.maxOwner > root.bases.length) throw fail(`names owner ${page.maxOwner} but the archive has ${root.bases.length} bases`);
    // Section 10, "Limits": no chunk of this archive is longer than its chunking maximum, and all of
    // them lie in its body (before the root): a reference past the end is corruption, not a bad range.
    if (page.maxOwnRaw > root.chunking.max) throw fail(`holds a chunk of ${page.maxOwnRaw} bytes, above the archive's chunking maximum of ${root.chunking.max}`);
    if (page.maxOwnEnd > this.a.trailer.rootOffset) throw fail(`places chunk bytes up to offset ${page.maxOwnEnd}, past the archive body (${this.a.trailer.rootOffset} bytes)`);
    const next = root.chunkPages[i + 1];
    const expectedEnd = next ? next.firstLogical : root.logicalSize;
    if (page.endLogical !== expectedEnd) throw fail(`ends at ${page.endLogical}, expected ${expectedEnd}`);
  }

  /** Index of the chunk-index page containing logical offset `x` (binary search in the root). */
  chunkPageFor(x: number): number {
    const pages = this.a.root.chunkPages;
    let lo = 0;
    let hi = pages.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (pages[mid].firstLogical <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** File-table page `i`, loaded if needed. */
  filePage(i: number): Promise<FilePage> {
    const p = this.a.root.filePages[i];
    return this.load(
      FRAME_FILE_PAGE,
      `file-table page ${i}`,
      p,
      (body, ctx) => {
        const entries = decodeFilePage(body, p.count, ctx, this.a.trailer.version);
        return { entries, keys: entries.map((e) => sortKey(e.path)) };
      },
      (page, ctx) => this.checkFilePage(i, page, ctx),
      (page) => page.entries.length * FILE_ENTRY_MEMORY,
    );
  }

  /**
   * What file-table page `i` must be for *this* archive's root: the count and first path the root
   * says, sorted before the next page's first path, and its files laid out back to back in the
   * logical space and the chunk index (files are concatenated in table order, section 7.1), so no
   * entry's bytes overlap another's. Version 2 roots also say where each page's files begin, which
   * checks the page's first and last files against its neighbours without loading them.
   */
  private checkFilePage(i: number, page: FilePage, ctx: ErrorContext): void {
    const { root } = this.a;
    const p = root.filePages[i];
    const fail = (msg: string) => new HexzError('CORRUPT', `corrupt file-table page ${i}: ${msg}`, ctx);
    if (page.entries.length !== p.count) throw fail(`holds ${page.entries.length} entries, the root says ${p.count}`);
    if (page.entries[0].path !== p.firstPath) throw fail('first path differs from the root');
    // Pages are slices of one sorted table: the last entry sorts before the next page's first.
    const next = this.filePageKeys[i + 1];
    if (next && compareBytes(page.keys[page.keys.length - 1], next) >= 0) throw fail('overlaps the next page');
    let logical = p.firstLogical;
    let ref = p.firstRef;
    for (const e of page.entries) {
      if (e.type !== 'file' || e.size === 0) continue;
      if (logical === undefined || ref === undefined) {
        // Version 1: the first file of the page sets where the page's files begin.
        logical = e.logical;
        ref = e.firstRef;
      }
      if (e.logical !== logical || e.firstRef !== ref) throw fail(`${e.path} starts at logical ${e.logical}, reference ${e.firstRef}; the files before it end at ${logical}, ${ref}`);
      logical += e.size;
      ref += e.refCount;
      if (logical > root.logicalSize || ref > root.refCount) throw fail(`${e.path} ends past the chunk index`);
    }
    if (p.firstLogical !== undefined) {
      const n = root.filePages[i + 1];
      const endLogical = n ? n.firstLogical : root.logicalSize;
      const endRef = n ? n.firstRef : root.refCount;
      if (logical !== endLogical || ref !== endRef) throw fail(`its files end at logical ${logical}, reference ${ref}; the next page (or the root) says ${endLogical}, ${endRef}`);
    }
  }

  /** Index of the last file-table page whose first key ≤ `key`, or -1. */
  filePageFor(key: Buffer): number {
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

  /** Sort key of the first path of file-table page `i` (undefined past the last page). */
  filePageKey(i: number): Buffer | undefined {
    return this.filePageKeys[i];
  }

  /**
   * Indices of the chunk-index pages that hold references overlapping the logical range
   * [start, end), from the root alone (no page is loaded): `[first, last]`, or undefined when the
   * range is empty or the archive has no chunk index.
   */
  chunkPagesFor(start: number, end: number): [first: number, last: number] | undefined {
    if (end <= start || this.chunkPageCount === 0) return undefined;
    return [this.chunkPageFor(start), this.chunkPageFor(end - 1)];
  }

  /** Chunk references overlapping the logical range [start, end), in order, loading pages as needed. */
  async *refsIn(start: number, end: number): AsyncGenerator<ChunkRef> {
    const span = this.chunkPagesFor(start, end);
    if (!span) return;
    for (let pi = span[0]; pi <= span[1]; pi++) {
      const page = await this.chunkPage(pi);
      for (let i = page.firstLogical <= start ? page.find(start) : 0; i < page.count; i++) {
        const ref = page.ref(i);
        if (ref.logical >= end) return;
        yield ref;
      }
    }
  }
}
