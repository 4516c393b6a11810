/**
 * The file table (docs/format.md, section 7.2): entries sorted by `parent ‖ 0x00 ‖ name`, so a
 * directory's children are contiguous, stored in front-coded pages.
 */
import { HexzError, corrupt, type ErrorContext } from '../errors.js';
import { ByteReader, ByteWriter, compareBytes, utf8 } from './bytes.js';
import { CONTENT_DIGEST_BYTES, FORMAT_VERSION, MAX_PATH_BYTES, MAX_SYMLINK_TARGET_BYTES } from './constants.js';

export type EntryType = 'file' | 'directory' | 'symlink';

const TYPE_CODES: Record<EntryType, number> = { file: 1, directory: 2, symlink: 3 };
const TYPE_NAMES: Record<number, EntryType> = { 1: 'file', 2: 'directory', 3: 'symlink' };

/** One entry of the file table. */
export interface FileEntry {
  /** Relative, `/`-separated path (no leading slash). */
  path: string;
  type: EntryType;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Modification time in nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** File: bytes; symlink: target length; directory: 0. */
  size: number;
  /** Offset of the file's first byte in the logical space (files only). */
  logical: number;
  /** Index of the file's first chunk reference (files only). */
  firstRef: number;
  /** Number of chunk references (files only). */
  refCount: number;
  /** Symlink target (symlinks only). */
  target?: string;
  /**
   * Content digest of a regular file (section 7.3), recorded by version-2 writers; undefined when the
   * archive does not record it (version 1, or all zero) — readers then compute it from the references.
   */
  digest?: Uint8Array;
}

const NO_DIGEST = new Uint8Array(CONTENT_DIGEST_BYTES);

/**
 * Validate and normalise a path given by a user or found in an archive: relative, no empty, `.` or
 * `..` components, no NUL, at most 4,096 bytes. Leading/trailing slashes are dropped; `""` is the root.
 * Throws `UNSAFE_PATH`, so hostile names never reach the filesystem or a storage key.
 */
export function normalizePath(input: string): string {
  if (input.includes('\0')) throw new HexzError('UNSAFE_PATH', 'path contains NUL', { path: input.replace(/\0/g, '\\0') });
  const trimmed = input.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed === '.') return '';
  const parts = trimmed.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') {
      throw new HexzError('UNSAFE_PATH', `path "${input}" has an empty, "." or ".." component`, { path: input });
    }
  }
  if (Buffer.byteLength(trimmed) > MAX_PATH_BYTES) throw new HexzError('UNSAFE_PATH', 'path longer than 4096 bytes', { path: input });
  return trimmed;
}

/** Split a path into its parent directory ("" at top level) and last component. */
export function splitPath(path: string): [parent: string, name: string] {
  const i = path.lastIndexOf('/');
  return i < 0 ? ['', path] : [path.slice(0, i), path.slice(i + 1)];
}

/** Code units from which UTF-16 order (JavaScript's `<`) and UTF-8 byte order may disagree. */
const SURROGATE_OR_ABOVE = /[\ud800-\uffff]/;

/**
 * Order of two strings as UTF-8 bytes, the order of the file table's names and parent paths, without
 * encoding them. JavaScript compares UTF-16 code units, which gives the same order unless a surrogate
 * meets a code unit of U+E000–U+FFFF: only then are the bytes compared.
 */
export function compareUtf8(a: string, b: string): number {
  if (SURROGATE_OR_ABOVE.test(a) || SURROGATE_OR_ABOVE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The byte-wise sort key of a path: `parent ‖ 0x00 ‖ name`. */
export function sortKey(path: string): Buffer {
  const [parent, name] = splitPath(path);
  return Buffer.from(`${parent}\0${name}`, 'utf8');
}

/** Order of two paths in the file table. */
export function comparePaths(a: string, b: string): number {
  return compareBytes(sortKey(a), sortKey(b));
}

/** Encode a page of entries (already in table order) in the layout of format `version`. */
export function encodeFilePage(entries: readonly FileEntry[], version = FORMAT_VERSION): Uint8Array {
  const w = new ByteWriter(64 * 1024);
  let prev: Uint8Array = new Uint8Array(0);
  for (const e of entries) {
    const path = utf8(e.path);
    let shared = 0;
    const limit = Math.min(prev.byteLength, path.byteLength, 0xffff);
    while (shared < limit && prev[shared] === path[shared]) shared++;
    const suffix = path.subarray(shared);
    w.u16(shared).u16(suffix.byteLength).bytes(suffix);
    w.u8(TYPE_CODES[e.type]).zeros(3).u32(e.mode & 0o7777).i64(e.mtimeNs);
    w.u64(e.size).u64(e.logical).u64(e.firstRef).u32(e.refCount);
    if (version >= 2) w.bytes(e.type === 'file' && e.digest ? e.digest : NO_DIGEST);
    const target = e.type === 'symlink' ? utf8(e.target ?? '') : new Uint8Array(0);
    w.u16(target.byteLength).bytes(target);
    prev = path;
  }
  return w.finish().slice();
}

/** Approximate encoded size of an entry (version 2), for page sizing. */
export function entryEncodedSize(e: FileEntry): number {
  return 52 + CONTENT_DIGEST_BYTES + Buffer.byteLength(e.path) + (e.target ? Buffer.byteLength(e.target) : 0);
}

const pathDecoder = new TextDecoder('utf-8', { fatal: true });

/** Decode and validate a page body of format `version`; entries must be in strictly increasing table order. */
export function decodeFilePage(body: Uint8Array, expectedCount: number, context: ErrorContext = {}, version = FORMAT_VERSION): FileEntry[] {
  const r = new ByteReader(body, 'file-table page');
  const entries: FileEntry[] = [];
  let prev = Buffer.alloc(0);
  let prevKey: Buffer | undefined;
  for (let i = 0; i < expectedCount; i++) {
    const fail = (msg: string) => corrupt('file-table page', `entry ${i}: ${msg}`, context);
    const shared = r.u16();
    const suffixLen = r.u16();
    if (shared > prev.byteLength) throw fail('shared prefix longer than the previous path');
    const pathBytes = Buffer.concat([prev.subarray(0, shared), r.bytesView(suffixLen)]);
    let path: string;
    try {
      path = pathDecoder.decode(pathBytes);
    } catch {
      throw fail('path is not UTF-8');
    }
    try {
      if (normalizePath(path) !== path || path === '') throw new Error();
    } catch {
      throw fail(`unsafe path ${JSON.stringify(path)}`);
    }
    const typeCode = r.u8();
    const type = TYPE_NAMES[typeCode];
    if (!type) throw fail(`unknown type ${typeCode}`);
    r.reserved(3);
    const mode = r.u32();
    if (mode & ~0o7777) throw fail('mode has bits beyond 0o7777');
    const mtimeNs = r.i64();
    const size = r.u64();
    const logical = r.u64();
    const firstRef = r.u64();
    const refCount = r.u32();
    let digest: Uint8Array | undefined;
    if (version >= 2) {
      const d = r.bytesView(CONTENT_DIGEST_BYTES);
      const recorded = d.some((b) => b !== 0);
      if (recorded && type !== 'file') throw fail('content digest on a non-file');
      if (recorded) digest = d.slice();
    }
    const targetLen = r.u16();
    const entry: FileEntry = { path, type, mode, mtimeNs, size, logical, firstRef, refCount };
    if (digest) entry.digest = digest;
    if (type === 'symlink') {
      entry.target = r.utf8(targetLen);
      if (Buffer.byteLength(entry.target) !== size) throw fail('symlink size differs from target length');
      // Section 7.2: what a file system can hold (no NUL, not empty, at most PATH_MAX − 1 bytes).
      if (size === 0) throw fail('empty symlink target');
      if (size > MAX_SYMLINK_TARGET_BYTES) throw fail(`symlink target of ${size} bytes exceeds ${MAX_SYMLINK_TARGET_BYTES}`);
      if (entry.target.includes('\0')) throw fail('symlink target contains a NUL byte');
    } else if (targetLen !== 0) {
      throw fail('target on a non-symlink');
    }
    if (type !== 'file' && (logical !== 0 || firstRef !== 0 || refCount !== 0)) throw fail('chunk range on a non-file');
    if (type === 'directory' && size !== 0) throw fail('directory with a size');
    if (type === 'file' && (size === 0) !== (refCount === 0)) throw fail('size and chunk count disagree');
    // Section 7.2: an empty file owns no range; its offsets are 0 wherever it sorts.
    if (type === 'file' && size === 0 && (logical !== 0 || firstRef !== 0)) throw fail('empty file with a chunk range');
    const key = sortKey(path);
    if (prevKey && compareBytes(prevKey, key) >= 0) throw fail('entries out of order');
    prevKey = key;
    prev = pathBytes;
    entries.push(entry);
  }
  r.end();
  return entries;
}
