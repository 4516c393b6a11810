/**
 * Encoding and decoding of one chunk's stored bytes (docs/format.md, section 6): codec, optional
 * AES-256-GCM sealing, and verification of the plaintext against the chunk id.
 */
import { codecById } from '../codecs/index.js';
import { corrupt, HexzError, type ErrorContext } from '../errors.js';
import { createKeyedHasher, hash } from '../hash.js';
import { NONCE_BYTES, openChunk, SEAL_OVERHEAD, sealChunk, sealChunkInPlace, TAG_BYTES, type ArchiveKeys } from '../crypto/keys.js';
import { bytesEqual, toHex } from './bytes.js';
import type { ChunkRef } from './chunk-index.js';

/** Chunk id function of an archive: BLAKE3, keyed with idKey when encrypted. */
export function chunkIdFunction(keys?: Pick<ArchiveKeys, 'idKey'>): (plain: Uint8Array) => Uint8Array {
  return keys ? createKeyedHasher(keys.idKey) : hash;
}

/** True when every byte is zero (memcmp against a zero page, not a JS loop). */
const ZERO_PAGE = Buffer.alloc(64 * 1024);
export function isAllZero(b: Uint8Array): boolean {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 0; at < buf.byteLength; at += ZERO_PAGE.byteLength) {
    const n = Math.min(ZERO_PAGE.byteLength, buf.byteLength - at);
    if (buf[at] !== 0 || !buf.subarray(at, at + n).equals(n === ZERO_PAGE.byteLength ? ZERO_PAGE : ZERO_PAGE.subarray(0, n))) return false;
  }
  return true;
}

export interface EncodedChunk {
  codec: number;
  bytes: Uint8Array;
}

/**
 * Encode a chunk for storage: compress with the codec unless that does not shrink it (then store it
 * raw, codec 0), then seal when keys are given.
 */
export function encodeChunk(plain: Uint8Array, id: Uint8Array, codecId: number, level: number, keys?: ArchiveKeys): EncodedChunk {
  let codec = codecId;
  let bytes = codecId === 0 ? plain : codecById(codecId).compress(plain, level);
  if (codec !== 0 && bytes.byteLength >= plain.byteLength) {
    codec = 0;
    bytes = plain;
  }
  if (keys) bytes = sealChunk(keys, id, codec, bytes);
  return { codec, bytes };
}

/**
 * Like `encodeChunk`, but writes the stored bytes into `dst` and returns their length and codec (the
 * packer's hot path: compressing straight into the job's output buffer). Returns undefined when `dst`
 * may be too small.
 */
export function encodeChunkInto(dst: Uint8Array, plain: Uint8Array, id: Uint8Array, codecId: number, level: number, keys?: ArchiveKeys): { codec: number; length: number } | undefined {
  if (keys) {
    // Compress (or copy) behind the nonce's place, then seal in place.
    if (dst.byteLength < SEAL_OVERHEAD) return undefined;
    const inner = encodeChunkInto(dst.subarray(NONCE_BYTES, dst.byteLength - TAG_BYTES), plain, id, codecId, level);
    if (!inner) return undefined;
    return { codec: inner.codec, length: sealChunkInPlace(keys, id, inner.codec, dst, inner.length) };
  }
  if (codecId !== 0) {
    const n = codecById(codecId).compressInto(dst, plain, level);
    if (n < 0) return undefined;
    if (n < plain.byteLength) return { codec: codecId, length: n };
  }
  if (dst.byteLength < plain.byteLength) return undefined;
  dst.set(plain);
  return { codec: 0, length: plain.byteLength };
}

/**
 * Decode stored bytes to the verified plaintext. Throws `AUTH_FAILED` (encrypted, tampered) or
 * `CORRUPT` (codec error, wrong length, id mismatch) with the chunk named in the context.
 */
export function decodeChunk(
  stored: Uint8Array,
  ref: Pick<ChunkRef, 'id' | 'codec' | 'raw'>,
  idOf: (plain: Uint8Array) => Uint8Array,
  keys?: ArchiveKeys,
  context: ErrorContext = {},
): Uint8Array {
  const ctx = { ...context, chunk: toHex(ref.id) };
  const codecBytes = keys ? openChunk(keys, ref.id, stored, ctx) : stored;
  let plain: Uint8Array;
  try {
    plain = codecById(ref.codec).decompress(codecBytes, ref.raw);
  } catch (err) {
    if (err instanceof HexzError) throw err; // already names its structure (one prefix)
    throw corrupt('chunk', (err as Error).message, ctx);
  }
  if (plain.byteLength !== ref.raw) throw corrupt('chunk', `decodes to ${plain.byteLength} bytes, its reference says ${ref.raw}`, ctx);
  if (!bytesEqual(idOf(plain), ref.id)) throw corrupt('chunk', 'content does not match its id', ctx);
  return plain;
}
