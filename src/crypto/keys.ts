/**
 * Keys and sealing of encrypted archives: AES-256-GCM from node:crypto, subkeys and keyed ids from
 * BLAKE3. docs/format.md, section 9 is the specification and explains why deterministic chunk nonces
 * are safe here.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { HexzError } from '../errors.js';
import { deriveKey, hash, keyedHash } from '../hash.js';
import { bytesEqual } from '../format/bytes.js';
import { KDF_RAW, KDF_SCRYPT } from '../format/constants.js';
import type { KdfParams } from '../format/header.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes sealing adds to a payload. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** scrypt defaults: N = 2^17, r = 8, p = 1 is OWASP's recommendation (~128 MiB, ~0.3 s here). */
export const DEFAULT_SCRYPT = Object.freeze({ log2N: 17, r: 8, p: 1 });

/** The subkeys of one master key (section 9). Safe to pass to worker threads as plain bytes. */
export interface ArchiveKeys {
  idKey: Uint8Array;
  encKey: Uint8Array;
  nonceKey: Uint8Array;
  /** 16-byte key check value stored in the trailer. */
  keyCheck: Uint8Array;
}

/** Derive every subkey from the master key. */
export function deriveArchiveKeys(master: Uint8Array): ArchiveKeys {
  if (master.byteLength !== KEY_BYTES) {
    throw new HexzError('INVALID_ARGUMENT', `a key must be ${KEY_BYTES} bytes, got ${master.byteLength}`);
  }
  const checkKey = deriveKey('hexz v1 key check', master);
  return {
    idKey: deriveKey('hexz v1 chunk id', master),
    encKey: deriveKey('hexz v1 aes-256-gcm', master),
    nonceKey: deriveKey('hexz v1 chunk nonce', master),
    keyCheck: keyedHash(checkKey, Buffer.from('hexz key check')).subarray(0, 16),
  };
}

/** Where a master key comes from: raw key bytes, or a passphrase stretched with scrypt. */
export type KeySource = { kind: 'key'; key: Uint8Array } | { kind: 'passphrase'; passphrase: string };

const scryptAsync = (pass: string, salt: Uint8Array, len: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(pass, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))));

/** Compute the master key for an archive's KDF parameters. */
export async function masterKey(source: KeySource, kdf: KdfParams): Promise<Uint8Array> {
  if (kdf.kind === KDF_RAW) {
    if (source.kind !== 'key') {
      throw new HexzError('WRONG_KEY', 'this archive was encrypted with a key file, not a passphrase', { remedy: 'key-file' });
    }
    return source.key;
  }
  if (kdf.kind === KDF_SCRYPT) {
    if (source.kind !== 'passphrase') {
      throw new HexzError('WRONG_KEY', 'this archive was encrypted with a passphrase, not a key file', { remedy: 'passphrase' });
    }
    const N = 2 ** kdf.log2N;
    return scryptAsync(source.passphrase, kdf.salt, KEY_BYTES, { N, r: kdf.r, p: kdf.p, maxmem: 256 * N * kdf.r + (1 << 20) });
  }
  throw new HexzError('INVALID_ARGUMENT', 'archive is not encrypted');
}

/** KDF parameters for a new archive from this key source. */
export function newKdfParams(source: KeySource): KdfParams {
  if (source.kind === 'key') return { kind: KDF_RAW, log2N: 0, r: 0, p: 0, salt: new Uint8Array(16) };
  return { kind: KDF_SCRYPT, ...DEFAULT_SCRYPT, salt: randomBytes(16) };
}

/** Compare the key check value; `WRONG_KEY` if it differs. */
export function checkKey(keys: ArchiveKeys, expected: Uint8Array, archive?: string): void {
  if (!bytesEqual(keys.keyCheck, expected)) {
    throw new HexzError('WRONG_KEY', `wrong key for ${archive ?? 'this archive'}`, { archive });
  }
}

function seal(encKey: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', encKey, nonce);
  cipher.setAAD(aad);
  const out = Buffer.allocUnsafe(NONCE_BYTES + plain.byteLength + TAG_BYTES);
  out.set(nonce, 0);
  const n1 = cipher.update(plain).copy(out, NONCE_BYTES);
  const n2 = cipher.final().copy(out, NONCE_BYTES + n1);
  cipher.getAuthTag().copy(out, NONCE_BYTES + n1 + n2);
  return out;
}

function open(encKey: Uint8Array, stored: Uint8Array, aad: Uint8Array, what: string, context: Record<string, unknown>): Uint8Array {
  if (stored.byteLength < SEAL_OVERHEAD) {
    throw new HexzError('AUTH_FAILED', `${what}: sealed data too short`, { structure: what, ...context });
  }
  const nonce = stored.subarray(0, NONCE_BYTES);
  const tag = stored.subarray(stored.byteLength - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', encKey, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const body = decipher.update(stored.subarray(NONCE_BYTES, stored.byteLength - TAG_BYTES));
  try {
    const fin = decipher.final();
    return fin.byteLength ? Buffer.concat([body, fin]) : body;
  } catch {
    throw new HexzError('AUTH_FAILED', `${what} failed authentication (tampered, or sealed under another key)`, { structure: what, ...context });
  }
}

const FRAME_AAD_PREFIX = Buffer.from('hexz/v1/frame');

function frameAad(uuid: Uint8Array, kind: number): Uint8Array {
  return Buffer.concat([FRAME_AAD_PREFIX, uuid, Uint8Array.of(kind)]);
}

/** Seal a frame with a random nonce (section 4). */
export function sealFrame(keys: ArchiveKeys, uuid: Uint8Array, kind: number, plain: Uint8Array): Uint8Array {
  return seal(keys.encKey, randomBytes(NONCE_BYTES), plain, frameAad(uuid, kind));
}

/** Open a sealed frame; `AUTH_FAILED` naming the structure on any tampering. */
export function openFrame(keys: ArchiveKeys, uuid: Uint8Array, kind: number, stored: Uint8Array, what: string, context: Record<string, unknown> = {}): Uint8Array {
  return open(keys.encKey, stored, frameAad(uuid, kind), what, context);
}

/** The deterministic nonce of a chunk (section 9). */
export function chunkNonce(keys: ArchiveKeys, id: Uint8Array, codec: number, codecBytes: Uint8Array): Uint8Array {
  return keyedHash(keys.nonceKey, id, Uint8Array.of(codec), hash(codecBytes)).subarray(0, NONCE_BYTES);
}

/** Seal a chunk's codec bytes, the chunk id as associated data. */
export function sealChunk(keys: ArchiveKeys, id: Uint8Array, codec: number, codecBytes: Uint8Array): Uint8Array {
  return seal(keys.encKey, chunkNonce(keys, id, codec, codecBytes), codecBytes, id);
}

/**
 * Seal in place: `buf` holds a chunk's codec bytes at `[NONCE_BYTES, NONCE_BYTES + length)` and has
 * room for the tag after them; on return it holds `nonce ‖ ciphertext ‖ tag` (the same bytes
 * `sealChunk` makes) and the total length is returned. The packer's hot path: no buffer besides the
 * one node:crypto returns for the ciphertext.
 */
export function sealChunkInPlace(keys: ArchiveKeys, id: Uint8Array, codec: number, buf: Uint8Array, length: number): number {
  const body = buf.subarray(NONCE_BYTES, NONCE_BYTES + length);
  const nonce = chunkNonce(keys, id, codec, body);
  const cipher = createCipheriv('aes-256-gcm', keys.encKey, nonce);
  cipher.setAAD(id);
  const ct = cipher.update(body);
  buf.set(ct, NONCE_BYTES);
  const fin = cipher.final();
  buf.set(fin, NONCE_BYTES + ct.byteLength);
  buf.set(nonce, 0);
  buf.set(cipher.getAuthTag(), NONCE_BYTES + ct.byteLength + fin.byteLength);
  return SEAL_OVERHEAD + length;
}

/** Open a sealed chunk; `AUTH_FAILED` on tampering. */
export function openChunk(keys: ArchiveKeys, id: Uint8Array, stored: Uint8Array, context: Record<string, unknown> = {}): Uint8Array {
  return open(keys.encKey, stored, id, 'chunk', context);
}
