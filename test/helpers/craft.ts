/**
 * Crafting hostile or inconsistent archives for tests, with the real format encoders: take a valid
 * (plain) archive, decode its index, let the test edit the root, the file-table entries and the chunk
 * references, and append a new index (chunk-index pages when references changed, one file-table page,
 * root, trailer). The old index stays in the file as dead bytes; chunk data is untouched, so stored
 * offsets stay valid. Every structure hash is correct: only the *meaning* is hostile, which is what the
 * reader and verify must catch.
 */
import { ByteWriter } from '@hexz/src/format/bytes.js';
import { ChunkIndexPage, writeChunkRef, type ChunkRef } from '@hexz/src/format/chunk-index.js';
import { FRAME_CHUNK_PAGE, FRAME_FILE_PAGE, FRAME_ROOT } from '@hexz/src/format/constants.js';
import { comparePaths, decodeFilePage, encodeFilePage, type FileEntry } from '@hexz/src/format/file-table.js';
import { decodeFrame, encodeFrame } from '@hexz/src/format/frame.js';
import { decodeTrailer, encodeTrailer, trailerSize } from '@hexz/src/format/header.js';
import { decodeRoot, encodeRoot, type Root } from '@hexz/src/format/root.js';
import { hash } from '@hexz/src/hash.js';

export interface Decoded {
  root: Root;
  entries: FileEntry[];
  refs: ChunkRef[];
}

export interface CraftOptions {
  /** Re-encode the chunk index from `refs` (logical offsets recomputed contiguously). */
  rewriteRefs?: boolean;
  /** Sort entries into table order before encoding (default true). */
  sort?: boolean;
  /** Keep the original file-table pages (entries are then ignored). */
  keepFilePages?: boolean;
  /** References per chunk-index page when rewriting them (default 1024). */
  refsPerPage?: number;
  /** Entries per file-table page (default: all in one page). */
  entriesPerPage?: number;
  /**
   * Format version of the crafted index (default: the source's): 1 re-encodes pages, root and
   * trailer in the v1 layout (no content digests, no per-page start offsets), to test what readers of
   * v1 archives must check without the v2 fields' help.
   */
  version?: number;
  /**
   * Cut the old index off before appending the new one (only when it lies after all chunk data, as
   * in any archive small enough for one chunk-index page); requires rewriteRefs.
   */
  dropOldIndex?: boolean;
}

/** Decode every index structure of a plain archive. */
export function decodeArchive(bytes: Uint8Array): Decoded {
  const trailer = decodeTrailer(bytes, bytes.byteLength);
  const crypto = { uuid: trailer.uuid };
  const root = decodeRoot(decodeFrame(bytes.subarray(trailer.rootOffset, trailer.rootOffset + trailer.rootLength), FRAME_ROOT, trailer.rootHash, crypto), trailer.rootOffset, trailer.version);
  const entries: FileEntry[] = [];
  for (const p of root.filePages) {
    entries.push(...decodeFilePage(decodeFrame(bytes.subarray(p.offset, p.offset + p.length), FRAME_FILE_PAGE, p.hash, crypto), p.count, {}, trailer.version));
  }
  const refs: ChunkRef[] = [];
  for (const p of root.chunkPages) {
    const page = new ChunkIndexPage(decodeFrame(bytes.subarray(p.offset, p.offset + p.length), FRAME_CHUNK_PAGE, p.hash, crypto), p.firstLogical, p.count, root.bases.length);
    for (let i = 0; i < page.count; i++) refs.push({ ...page.ref(i), id: page.ref(i).id.slice() });
  }
  return { root, entries, refs };
}

/** A copy of `bytes` with a new index made from the edited decoding. */
export function craftArchive(bytes: Uint8Array, edit: (d: Decoded) => void, opts: CraftOptions = {}): Buffer {
  const trailer = decodeTrailer(bytes, bytes.byteLength);
  const crypto = { uuid: trailer.uuid };
  const d = decodeArchive(bytes);
  const version = opts.version ?? trailer.version;
  let keep = bytes.byteLength - trailerSize(trailer.version);
  if (opts.dropOldIndex) {
    if (!opts.rewriteRefs) throw new Error('dropOldIndex needs rewriteRefs');
    const indexStart = Math.min(trailer.rootOffset, ...d.root.chunkPages.map((p) => p.offset), ...d.root.filePages.map((p) => p.offset));
    const dataEnd = Math.max(64, ...d.refs.filter((r) => !r.hole && r.owner === 0).map((r) => r.offset + r.stored));
    if (dataEnd > indexStart) throw new Error('the old index is interleaved with chunk data');
    keep = indexStart;
  }
  edit(d);
  const parts: Buffer[] = [Buffer.from(bytes.subarray(0, keep))];
  let at = keep;
  const append = (b: Uint8Array) => {
    parts.push(Buffer.from(b));
    const offset = at;
    at += b.byteLength;
    return offset;
  };
  if (opts.rewriteRefs) {
    let logical = 0;
    const pages: Root['chunkPages'] = [];
    const PER_PAGE = opts.refsPerPage ?? 1024;
    for (let i = 0; i < d.refs.length; i += PER_PAGE) {
      const w = new ByteWriter();
      const first = logical;
      const slice = d.refs.slice(i, i + PER_PAGE);
      for (const r of slice) {
        writeChunkRef(w, { ...r, logical });
        logical += r.raw;
      }
      const stored = encodeFrame(FRAME_CHUNK_PAGE, w.finish(), crypto);
      pages.push({ firstLogical: first, offset: append(stored), length: stored.byteLength, count: slice.length, hash: hash(stored) });
    }
    d.root.chunkPages = pages;
    d.root.refCount = d.refs.length;
  }
  if (!opts.keepFilePages) {
    const entries = opts.sort === false ? d.entries : [...d.entries].sort((a, b) => comparePaths(a.path, b.path));
    d.root.filePages = [];
    const per = opts.entriesPerPage ?? Math.max(1, entries.length);
    // Where each page's files begin, as a writer computes it from the (edited) entries.
    let logical = 0;
    let ref = 0;
    for (let i = 0; i < entries.length; i += per) {
      const slice = entries.slice(i, i + per);
      const stored = encodeFrame(FRAME_FILE_PAGE, encodeFilePage(slice, version), crypto);
      d.root.filePages.push({ firstPath: slice[0].path, offset: append(stored), length: stored.byteLength, count: slice.length, hash: hash(stored), firstLogical: logical, firstRef: ref });
      for (const e of slice) {
        if (e.type === 'file' && e.size > 0) {
          logical = e.logical + e.size;
          ref = e.firstRef + e.refCount;
        }
      }
    }
    d.root.fileCount = entries.length;
  }
  if (version < 2) for (const p of d.root.filePages) delete p.firstLogical, delete p.firstRef;
  const rootStored = encodeFrame(FRAME_ROOT, encodeRoot(d.root, version), crypto);
  const rootOffset = append(rootStored);
  append(encodeTrailer({ ...trailer, version, rootOffset, rootLength: rootStored.byteLength, rootHash: hash(rootStored) }));
  return Buffer.concat(parts);
}

/** A file-table entry with defaults (a directory unless said otherwise). */
export function entry(path: string, fields: Partial<FileEntry> = {}): FileEntry {
  return { path, type: 'directory', mode: 0o755, mtimeNs: 0n, size: 0, logical: 0, firstRef: 0, refCount: 0, ...fields };
}
