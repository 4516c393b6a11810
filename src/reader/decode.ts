/**
 * Decoding one stored chunk straight into the memory its reader gives (docs/format.md, section 6):
 * open the AES-256-GCM seal when the archive is encrypted, decompress into `dst`, then verify that
 * the plaintext hashes to the chunk's id. The same function runs on the reading thread and in the
 * decode workers (./decode-worker.ts); it allocates nothing for plain archives.
 */
import { codecById } from '../codecs/index.js';
import { openChunk, type ArchiveKeys } from '../crypto/keys.js';
import { corrupt, HexzError, type ErrorContext } from '../errors.js';
import { bytesEqual, toHex } from '../format/bytes.js';
import { chunkIdFunction } from '../format/chunk.js';

/** What decoding a chunk needs to know about it. */
export interface ChunkToDecode {
  id: Uint8Array;
  codec: number;
}

/** Make the chunk-id function of an archive (keyed when encrypted) once, for many decodes. */
export function idFunction(keys: ArchiveKeys | undefined): (plain: Uint8Array) => Uint8Array {
  return chunkIdFunction(keys);
}

/**
 * Decode `stored` into `dst` (exactly the chunk's raw length) and check it against the chunk's id.
 * `AUTH_FAILED` when the seal does not open (tampered or wrong key), `CORRUPT` for a codec error, a
 * wrong length or an id mismatch; `dst` may hold garbage afterwards, never anything to hand out.
 */
export function decodeChunkInto(
  stored: Uint8Array,
  chunk: ChunkToDecode,
  dst: Uint8Array,
  idOf: (plain: Uint8Array) => Uint8Array,
  keys: ArchiveKeys | undefined,
  context: ErrorContext = {},
): void {
  const ctx = { ...context, chunk: toHex(chunk.id) };
  const codecBytes = keys ? openChunk(keys, chunk.id, stored, ctx) : stored;
  try {
    codecById(chunk.codec).decompressInto(dst, codecBytes);
  } catch (err) {
    if (err instanceof HexzError) throw err; // already names its structure (one prefix)
    throw corrupt('chunk', (err as Error).message, ctx);
  }
  if (!bytesEqual(idOf(dst), chunk.id)) throw corrupt('chunk', 'content does not match its id', ctx);
}
