/**
 * The root: counts, chunking parameters, bases, metadata and the two page tables (docs/format.md,
 * section 5). It is the only index structure a reader must load to open an archive.
 */
import { HexzError, corrupt } from '../errors.js';
import type { ChunkingParams } from '../chunker/fastcdc.js';
import { ByteReader, ByteWriter, utf8 } from './bytes.js';
import { CHUNK_PAGE_ENTRY_SIZE, FORMAT_VERSION, MAX_METADATA_BYTES, MAX_REFS_PER_PAGE } from './constants.js';
import { normalizePath, sortKey } from './file-table.js';

/** An archive this one references chunks from (section 5, "Base entry"). */
export interface BaseEntry {
  uuid: Uint8Array;
  rootHash: Uint8Array;
  /** Logical bytes of this archive whose chunks that base holds. */
  logicalBytes: number;
  /** Named directly when packing (as opposed to an ancestor reached through another base). */
  direct: boolean;
  /** Location relative to this archive's URL, or absolute. */
  hint: string;
}

/** Root entry of one chunk-index page. */
export interface ChunkPageEntry {
  firstLogical: number;
  offset: number;
  length: number;
  count: number;
  hash: Uint8Array;
}

/** Root entry of one file-table page. */
export interface FilePageEntry {
  firstPath: string;
  offset: number;
  length: number;
  count: number;
  hash: Uint8Array;
  /**
   * Version 2: where the page's files begin in the logical space and the chunk index (the running
   * values before its first non-empty file), so a page's entries can be checked on their own.
   */
  firstLogical?: number;
  firstRef?: number;
}

/** Metadata JSON (section 5). Unknown keys are kept. */
export interface ArchiveMetadata {
  creator?: string;
  created?: string;
  source?: { name?: string; type?: 'directory' | 'file' };
  compression?: { codec?: string; level?: number };
  chunking?: Record<string, unknown>;
  user?: Record<string, string>;
  [key: string]: unknown;
}

export interface Root {
  logicalSize: number;
  fileCount: number;
  refCount: number;
  storedChunkCount: number;
  storedChunkBytes: number;
  selfLogicalBytes: number;
  holeBytes: number;
  chunking: ChunkingParams;
  defaultCodec: number;
  defaultLevel: number;
  bases: BaseEntry[];
  metadata: ArchiveMetadata;
  chunkPages: ChunkPageEntry[];
  filePages: FilePageEntry[];
}

function writeChunking(w: ByteWriter, c: ChunkingParams): void {
  w.u8(c.algorithm).u8(c.normalization).zeros(2).u32(c.min).u32(c.avg).u32(c.max).bytes(Buffer.from(c.seed, 'hex'));
}

function readChunking(r: ByteReader): ChunkingParams {
  const algorithm = r.u8();
  if (algorithm !== 1) throw corrupt('root', `unknown chunking algorithm ${algorithm}`);
  const normalization = r.u8();
  r.reserved(2);
  const min = r.u32();
  const avg = r.u32();
  const max = r.u32();
  const seed = Buffer.from(r.bytesView(8)).toString('hex');
  if (!(min <= avg && avg <= max && normalization <= 3)) throw corrupt('root', 'inconsistent chunking parameters');
  return { algorithm, normalization, min, avg, max, seed };
}

/** Encode a root body (before framing) in the layout of format `version`. */
export function encodeRoot(root: Root, version = FORMAT_VERSION): Uint8Array {
  const w = new ByteWriter(4096 + root.chunkPages.length * CHUNK_PAGE_ENTRY_SIZE + root.filePages.length * 128);
  w.u32(0).u64(root.logicalSize).u64(root.fileCount).u64(root.refCount);
  w.u64(root.storedChunkCount).u64(root.storedChunkBytes).u64(root.selfLogicalBytes).u64(root.holeBytes);
  writeChunking(w, root.chunking);
  w.u8(root.defaultCodec).i8(root.defaultLevel).zeros(2);
  w.u16(root.bases.length);
  for (const b of root.bases) {
    const hint = utf8(b.hint);
    w.bytes(b.uuid).bytes(b.rootHash).u64(b.logicalBytes).u8(b.direct ? 1 : 0).u16(hint.byteLength).bytes(hint);
  }
  const meta = utf8(JSON.stringify(root.metadata));
  // Readers refuse more (section 5); never write an archive nobody can open.
  if (meta.byteLength > MAX_METADATA_BYTES) {
    throw new HexzError('INVALID_ARGUMENT', `metadata of ${meta.byteLength} bytes exceeds the format's 1 MiB limit`);
  }
  w.u32(meta.byteLength).bytes(meta);
  w.u32(root.chunkPages.length);
  for (const p of root.chunkPages) w.u64(p.firstLogical).u64(p.offset).u32(p.length).u32(p.count).bytes(p.hash);
  w.u32(root.filePages.length);
  for (const p of root.filePages) {
    const path = utf8(p.firstPath);
    w.u16(path.byteLength).bytes(path).u64(p.offset).u32(p.length).u32(p.count).bytes(p.hash);
    if (version >= 2) w.u64(p.firstLogical ?? 0).u64(p.firstRef ?? 0);
  }
  return w.finish().slice();
}

/**
 * Decode and validate a root body. `rootOffset` bounds every page location (pages precede the root).
 */
export function decodeRoot(body: Uint8Array, rootOffset: number, version = FORMAT_VERSION): Root {
  const r = new ByteReader(body, 'root');
  r.reserved(4);
  const logicalSize = r.u64();
  const fileCount = r.u64();
  const refCount = r.u64();
  const storedChunkCount = r.u64();
  const storedChunkBytes = r.u64();
  const selfLogicalBytes = r.u64();
  const holeBytes = r.u64();
  const chunking = readChunking(r);
  const defaultCodec = r.u8();
  const defaultLevel = r.i8();
  r.reserved(2);
  const baseCount = r.u16();
  const bases: BaseEntry[] = [];
  for (let i = 0; i < baseCount; i++) {
    const uuid = r.bytesView(16).slice();
    const rootHash = r.bytesView(32).slice();
    const logicalBytes = r.u64();
    const flags = r.u8();
    if (flags & ~1) throw corrupt('root', `base ${i + 1}: unknown flags`);
    const hint = r.utf8(r.u16());
    bases.push({ uuid, rootHash, logicalBytes, direct: (flags & 1) !== 0, hint });
  }
  const metaLen = r.u32();
  if (metaLen > MAX_METADATA_BYTES) throw corrupt('root', `metadata of ${metaLen} bytes exceeds 1 MiB`);
  let metadata: ArchiveMetadata;
  try {
    metadata = JSON.parse(r.utf8(metaLen)) as ArchiveMetadata;
  } catch (err) {
    throw corrupt('root', `metadata is not JSON: ${(err as Error).message}`);
  }
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw corrupt('root', 'metadata is not a JSON object');

  const checkLocation = (what: string, offset: number, length: number) => {
    if (offset < 64 || length < 8 || offset + length > rootOffset) {
      throw corrupt('root', `${what} at ${offset}+${length} lies outside the archive body`);
    }
  };

  const chunkPageCount = r.u32();
  if (chunkPageCount * CHUNK_PAGE_ENTRY_SIZE > r.remaining) throw corrupt('root', 'chunk page table longer than the root');
  const chunkPages: ChunkPageEntry[] = [];
  let refs = 0;
  for (let i = 0; i < chunkPageCount; i++) {
    const p: ChunkPageEntry = { firstLogical: r.u64(), offset: r.u64(), length: r.u32(), count: r.u32(), hash: r.bytesView(32).slice() };
    checkLocation(`chunk-index page ${i}`, p.offset, p.length);
    if (p.count === 0) throw corrupt('root', `chunk-index page ${i} is empty`);
    if (p.count > MAX_REFS_PER_PAGE) throw corrupt('root', `chunk-index page ${i} holds ${p.count} references, more than the format's ${MAX_REFS_PER_PAGE}`);
    const prev = chunkPages[i - 1];
    if (i === 0 ? p.firstLogical !== 0 : p.firstLogical <= prev.firstLogical) throw corrupt('root', `chunk-index page ${i} out of order`);
    refs += p.count;
    chunkPages.push(p);
  }
  if (refs !== refCount) throw corrupt('root', `page tables hold ${refs} references, header says ${refCount}`);

  const filePageCount = r.u32();
  const filePages: FilePageEntry[] = [];
  let files = 0;
  let prevKey: Buffer | undefined;
  for (let i = 0; i < filePageCount; i++) {
    const firstPath = r.utf8(r.u16());
    const p: FilePageEntry = { firstPath, offset: r.u64(), length: r.u32(), count: r.u32(), hash: r.bytesView(32).slice() };
    if (version >= 2) {
      p.firstLogical = r.u64();
      p.firstRef = r.u64();
      const prev = filePages[i - 1];
      if (i === 0 ? p.firstLogical !== 0 || p.firstRef !== 0 : p.firstLogical < prev.firstLogical! || p.firstRef < prev.firstRef!) {
        throw corrupt('root', `file-table page ${i} starts at logical ${p.firstLogical}, reference ${p.firstRef}: before the previous page`);
      }
      if (p.firstLogical > logicalSize || p.firstRef > refCount) throw corrupt('root', `file-table page ${i} starts past the end of the chunk index`);
    }
    checkLocation(`file-table page ${i}`, p.offset, p.length);
    try {
      if (normalizePath(firstPath) !== firstPath || firstPath === '') throw new Error();
    } catch {
      throw corrupt('root', `file-table page ${i} has an unsafe first path`);
    }
    const key = sortKey(firstPath);
    if (p.count === 0 || (prevKey && Buffer.compare(prevKey, key) >= 0)) throw corrupt('root', `file-table page ${i} out of order or empty`);
    prevKey = key;
    files += p.count;
    filePages.push(p);
  }
  if (files !== fileCount) throw corrupt('root', `file pages hold ${files} entries, header says ${fileCount}`);
  r.end();
  return {
    logicalSize,
    fileCount,
    refCount,
    storedChunkCount,
    storedChunkBytes,
    selfLogicalBytes,
    holeBytes,
    chunking,
    defaultCodec,
    defaultLevel,
    bases,
    metadata,
    chunkPages,
    filePages,
  };
}
