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
import { FRAME_HEADER_SIZE } from './constants.js';

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

/**
 * Verify and decode a stored frame: hash against the parent's record, open if encrypted, check the
 * envelope, decompress to exactly the recorded raw length.
 */
export function decodeFrame(
  stored: Uint8Array,
  kind: number,
  expectedHash: Uint8Array,
  crypto: FrameCrypto,
  context: ErrorContext = {},
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
  const body = plain.subarray(FRAME_HEADER_SIZE);
  try {
    return codecById(codecId).decompress(body, rawLength);
  } catch (err) {
    throw corrupt(what, (err as Error).message, context);
  }
}
