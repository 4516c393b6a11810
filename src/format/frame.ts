/**
 * Frames: the envelope of the root and of every index page (docs/format.md, section 4). A frame is a
 * kind byte, a codec byte and the raw length in front of a compressed body, sealed as a whole when
 * the archive is encrypted. The parent stores `H(stored bytes)`, checked before anything is decoded.
 */
import { codecById } from '../codecs/index.js';
import { corrupt, type ErrorContext } from '../errors.js';
import { hash } from '../hash.js';
import { openFrame, sealFrame, type ArchiveKeys } from '../crypto/keys.js';
import { ByteReader, bytesEqual, toHex } from './bytes.js';
import { CHUNK_REF_SIZE, FRAME_CHUNK_PAGE, FRAME_FILE_PAGE, FRAME_HEADER_SIZE, FRAME_ROOT, MAX_FILE_PAGE_BYTES, MAX_REFS_PER_PAGE, MAX_ROOT_BYTES } from './constants.js';

/** What a frame needs besides its body: the archive UUID (for sealing) and keys when encrypted. */
export interface FrameCrypto {
  uuid: Uint8Array;
  keys?: ArchiveKeys;
}

const KIND_NAMES: Record<number, string> = { 1: 'root', 2: 'chunk-index page', 3: 'file-table page' };

/** Encode (compress, then seal if keys are given) a frame body. */
export function encodeFrame(kind: number, body: Uint8Array, crypto: FrameCrypto, codecId = 1, level = 3): Uint8Array {
  let encoded = codecById(codecId).compress(body, level);
  if (codecId !== 0 && encoded.byteLength >= body.byteLength) {
    codecId = 0;
    encoded = body;
  }
  const plain = Buffer.allocUnsafe(FRAME_HEADER_SIZE + encoded.byteLength);
  plain.writeUInt8(kind, 0);
  plain.writeUInt8(codecId, 1);
  plain.writeUInt16LE(0, 2);
  plain.writeUInt32LE(body.byteLength, 4);
  plain.set(encoded, FRAME_HEADER_SIZE);
  return crypto.keys ? sealFrame(crypto.keys, crypto.uuid, kind, plain) : plain;
}

/** The largest raw length a frame of each kind may declare (section 10, "Limits"). */
const MAX_RAW: Record<number, number> = {
  [FRAME_ROOT]: MAX_ROOT_BYTES,
  [FRAME_CHUNK_PAGE]: MAX_REFS_PER_PAGE * CHUNK_REF_SIZE,
  [FRAME_FILE_PAGE]: MAX_FILE_PAGE_BYTES,
};

/**
 * Verify and decode a stored frame: hash against the parent's record, open if encrypted, check the
 * envelope, decompress to exactly the recorded raw length. The raw length is checked against the
 * kind's limit (and `expectedRaw`, when the parent says it exactly) before anything is allocated, and
 * decompression stops at it.
 */
export function decodeFrame(
  stored: Uint8Array,
  kind: number,
  expectedHash: Uint8Array,
  crypto: FrameCrypto,
  context: ErrorContext = {},
  expectedRaw?: number,
): Uint8Array {
  const what = KIND_NAMES[kind] ?? `frame kind ${kind}`;
  const actual = hash(stored);
  if (!bytesEqual(actual, expectedHash)) {
    throw corrupt(what, 'hash mismatch', { ...context, expected: toHex(expectedHash), actual: toHex(actual) });
  }
  const plain = crypto.keys ? openFrame(crypto.keys, crypto.uuid, kind, stored, what, context) : stored;
  const r = new ByteReader(plain, what);
  const k = r.u8();
  if (k !== kind) throw corrupt(what, `frame kind ${k}, expected ${kind}`, context);
  const codecId = r.u8();
  r.reserved(2);
  const rawLength = r.u32();
  if (expectedRaw !== undefined && rawLength !== expectedRaw) throw corrupt(what, `declares ${rawLength} bytes, its parent says ${expectedRaw}`, context);
  const limit = MAX_RAW[kind] ?? 0;
  if (rawLength > limit) throw corrupt(what, `declares ${rawLength} bytes, more than the format's limit of ${limit}`, context);
  const body = plain.subarray(FRAME_HEADER_SIZE);
  let codec;
  try {
    codec = codecById(codecId);
  } catch {
    throw corrupt(what, `unknown codec ${codecId}`, context);
  }
  try {
    return codec.decompress(body, rawLength);
  } catch (err) {
    throw corrupt(what, (err as Error).message, context);
  }
}
