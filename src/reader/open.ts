/**
 * Opening an archive: one suffix read for the trailer (and, for small archives, the whole index), one
 * more for the root only if it starts before that tail. docs/format.md, section 1 ("Opening in one
 * read") and section 3.
 */
import { HexzError, type ErrorContext } from '../errors.js';
import { FRAME_ROOT, HEADER_SIZE, OPEN_TAIL_BYTES, TRAILER_SIZE_V1 } from '../format/constants.js';
import { decodeFrame } from '../format/frame.js';
import { decodeTrailer, hasHeaderMagic, hasTrailerMagic, trailerSize, type Trailer } from '../format/header.js';
import { decodeRoot, type Root } from '../format/root.js';
import { checkKey, deriveArchiveKeys, masterKey, type ArchiveKeys, type KeySource } from '../crypto/keys.js';
import type { ReadOptions, Storage, StorageStat } from '../../storage/types.js';

/** The last bytes of the archive, kept after opening: page reads inside it cost no request. */
export interface Tail {
  offset: number;
  bytes: Uint8Array;
}

/** Read the tail and decode the trailer, telling "not an archive" from "truncated". */
export async function readTrailer(storage: Storage, tailBytes = OPEN_TAIL_BYTES, opts: ReadOptions = {}): Promise<{ trailer: Trailer; tail: Tail; stat: StorageStat }> {
  const { bytes, stat } = await storage.readTail(tailBytes, opts);
  const ctx: ErrorContext = { archive: storage.url, size: stat.size };
  if (stat.size === 0) throw new HexzError('NOT_AN_ARCHIVE', `${storage.url} is empty, not a hexz archive`, ctx);
  const tail = { offset: stat.size - bytes.byteLength, bytes };
  if (!hasTrailerMagic(bytes)) {
    const head = tail.offset === 0 ? bytes : await storage.read(0, Math.min(HEADER_SIZE, stat.size), opts);
    if (hasHeaderMagic(head)) {
      throw new HexzError('TRUNCATED', `${storage.url} is a truncated or unfinished hexz archive (no valid trailer)`, ctx);
    }
    throw new HexzError('NOT_AN_ARCHIVE', `${storage.url} is not a hexz archive`, ctx);
  }
  if (stat.size < HEADER_SIZE + TRAILER_SIZE_V1) throw new HexzError('TRUNCATED', `${storage.url} is too short to be an archive`, ctx);
  try {
    return { trailer: decodeTrailer(bytes, stat.size), tail, stat };
  } catch (err) {
    if (err instanceof HexzError) {
      err.context.archive ??= storage.url;
    }
    throw err;
  }
}

/** The encoded trailer at the end of the tail that `trailer` was decoded from (what a signature covers). */
export function trailerBytesOf(tail: Tail, trailer: Trailer): Uint8Array {
  return tail.bytes.subarray(tail.bytes.byteLength - trailerSize(trailer.version));
}

/** Bytes `[offset, offset + length)` from the tail when it holds them, else from storage. */
export async function readStructure(storage: Storage, tail: Tail, offset: number, length: number, opts: ReadOptions = {}): Promise<Uint8Array> {
  if (offset >= tail.offset && offset + length <= tail.offset + tail.bytes.byteLength) {
    return tail.bytes.subarray(offset - tail.offset, offset - tail.offset + length);
  }
  return storage.read(offset, length, opts);
}

/** Derive and check the keys of an encrypted archive. */
export async function unlock(trailer: Trailer, key: KeySource | undefined, archive: string): Promise<ArchiveKeys | undefined> {
  const encrypted = (trailer.flags & 1) !== 0;
  if (!encrypted) return undefined;
  if (!key) {
    throw new HexzError('KEY_REQUIRED', `${archive} is encrypted`, { archive, remedy: 'key' });
  }
  const keys = deriveArchiveKeys(await masterKey(key, trailer.kdf));
  checkKey(keys, trailer.keyCheck, archive);
  return keys;
}

/** Load, verify, decrypt and decode the root. */
export async function readRoot(storage: Storage, trailer: Trailer, tail: Tail, keys: ArchiveKeys | undefined, opts: ReadOptions = {}): Promise<Root> {
  const stored = await readStructure(storage, tail, trailer.rootOffset, trailer.rootLength, opts);
  const ctx = { archive: storage.url, offset: trailer.rootOffset };
  const body = decodeFrame(stored, FRAME_ROOT, trailer.rootHash, { uuid: trailer.uuid, keys }, ctx);
  try {
    return decodeRoot(body, trailer.rootOffset, trailer.version);
  } catch (err) {
    if (err instanceof HexzError) Object.assign(err.context, ctx);
    throw err;
  }
}
