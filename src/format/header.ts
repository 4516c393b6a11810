/**
 * The fixed-size header (offset 0) and trailer (end of file). docs/format.md, sections 2 and 3.
 */
import { HexzError, corrupt } from '../errors.js';
import { hash } from '../hash.js';
import { ByteReader, ByteWriter, bytesEqual } from './bytes.js';
import {
  FORMAT_VERSION,
  HEADER_MAGIC,
  HEADER_SIZE,
  KDF_NONE,
  KDF_RAW,
  KDF_SCRYPT,
  READABLE_VERSIONS,
  SIG_ED25519,
  SIG_NONE,
  SIGNED_TRAILER_BYTES,
  TRAILER_END_MAGIC,
  TRAILER_MAGIC,
  TRAILER_SIZE,
  TRAILER_SIZE_V1,
} from './constants.js';

export interface Header {
  version: number;
  flags: number;
  uuid: Uint8Array;
}

/** How the master key of an encrypted archive is obtained (section 9). */
export interface KdfParams {
  kind: typeof KDF_NONE | typeof KDF_RAW | typeof KDF_SCRYPT;
  log2N: number;
  r: number;
  p: number;
  salt: Uint8Array;
}

export const NO_KDF: Readonly<KdfParams> = Object.freeze({ kind: KDF_NONE, log2N: 0, r: 0, p: 0, salt: new Uint8Array(16) });

/** The signature slot of a v2 trailer (section 3.1); `algorithm` 0 means unsigned. */
export interface TrailerSignature {
  algorithm: typeof SIG_NONE | typeof SIG_ED25519;
  /** BLAKE3 of the signer's raw public key. */
  keyId: Uint8Array;
  signature: Uint8Array;
}

export const UNSIGNED: Readonly<TrailerSignature> = Object.freeze({ algorithm: SIG_NONE, keyId: new Uint8Array(32), signature: new Uint8Array(64) });

export interface Trailer {
  /** 1 or 2; the trailer's size follows from it (`trailerSize`). */
  version: number;
  flags: number;
  uuid: Uint8Array;
  rootOffset: number;
  rootLength: number;
  rootHash: Uint8Array;
  kdf: KdfParams;
  keyCheck: Uint8Array;
  /** Version 2: the signature slot (unsigned when absent). */
  signature?: TrailerSignature;
}

/** Size of the trailer of a format version. */
export function trailerSize(version: number): number {
  return version === 1 ? TRAILER_SIZE_V1 : TRAILER_SIZE;
}

function checksum(bytes: Uint8Array): Uint8Array {
  return hash(bytes).subarray(0, 8);
}

export function encodeHeader(h: Header): Uint8Array {
  const w = new ByteWriter(HEADER_SIZE);
  w.bytes(HEADER_MAGIC).u16(h.version).u16(HEADER_SIZE).u32(h.flags).bytes(h.uuid).zeros(24);
  w.bytes(checksum(w.finish()));
  return w.finish().slice();
}

/** True when the bytes start with the header magic. */
export function hasHeaderMagic(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 8 && bytesEqual(bytes.subarray(0, 8), HEADER_MAGIC);
}

function checkVersion(version: number, structure: string): void {
  if (!READABLE_VERSIONS.includes(version)) {
    throw new HexzError(
      'UNSUPPORTED_VERSION',
      `archive ${structure} says format version ${version}; this hexz reads versions ${READABLE_VERSIONS.join(' and ')}` + (version > FORMAT_VERSION ? ' (upgrade hexz)' : ''),
      { structure, actual: String(version), expected: READABLE_VERSIONS.join(',') },
    );
  }
}

export function decodeHeader(bytes: Uint8Array): Header {
  if (bytes.byteLength < HEADER_SIZE || !hasHeaderMagic(bytes)) {
    throw new HexzError('NOT_AN_ARCHIVE', 'not a hexz archive (no header magic)', { structure: 'header' });
  }
  const r = new ByteReader(bytes.subarray(0, HEADER_SIZE), 'header');
  r.bytesView(8);
  const version = r.u16();
  checkVersion(version, 'header');
  if (r.u16() !== HEADER_SIZE) throw corrupt('header', 'wrong header size');
  const flags = r.u32();
  const uuid = r.bytesView(16).slice();
  r.reserved(24);
  const sum = r.bytesView(8);
  if (!bytesEqual(sum, checksum(bytes.subarray(0, 56)))) throw corrupt('header', 'checksum mismatch');
  if (flags & ~1) throw corrupt('header', `unknown flags 0x${flags.toString(16)}`);
  return { version, flags, uuid };
}

/**
 * Encode a trailer of `t.version` (2 unless said otherwise): the v1 fields; in v2 then the signature
 * slot and the checksum over everything before it.
 */
export function encodeTrailer(t: Trailer): Uint8Array {
  const version = t.version ?? FORMAT_VERSION;
  const size = trailerSize(version);
  const w = new ByteWriter(size);
  w.bytes(TRAILER_MAGIC).u16(version).u16(size).u32(t.flags).bytes(t.uuid);
  w.u64(t.rootOffset).u32(t.rootLength).zeros(4).bytes(t.rootHash);
  w.u8(t.kdf.kind).u8(t.kdf.log2N).u8(t.kdf.r).u8(t.kdf.p).zeros(4).bytes(t.kdf.salt).bytes(t.keyCheck);
  if (version >= 2) {
    const sig = t.signature ?? UNSIGNED;
    w.u8(sig.algorithm).zeros(7).bytes(sig.keyId).bytes(sig.signature).zeros(16);
    // The locator: size and version again, where any later version can be found from the end.
    w.u16(size).u16(version).bytes(TRAILER_END_MAGIC);
  }
  w.bytes(checksum(w.finish()));
  return w.finish().slice();
}

/** The bytes of an encoded v2 trailer that its signature covers (section 3.1). */
export function signedTrailerBytes(trailer: Uint8Array): Uint8Array {
  return trailer.subarray(0, SIGNED_TRAILER_BYTES);
}

/**
 * The version and size of the trailer that ends `tail`, or undefined when there is none. A trailer of
 * version 2 or later ends with a locator (size, version, `HXZT`, then the checksum), so the trailer
 * of any later version is found — and refused by its version — even if its size changes; without a
 * locator, a version 1 trailer's magic at `length − 128`.
 */
export function findTrailer(tail: Uint8Array): { version: number; size: number } | undefined {
  const n = tail.byteLength;
  if (n >= 16 && bytesEqual(tail.subarray(n - 12, n - 8), TRAILER_END_MAGIC)) {
    const dv = new DataView(tail.buffer, tail.byteOffset + n - 16, 4);
    const size = dv.getUint16(0, true);
    const version = dv.getUint16(2, true);
    if (size >= TRAILER_SIZE_V1 && size <= n && bytesEqual(tail.subarray(n - size, n - size + 8), TRAILER_MAGIC)) return { version, size };
  }
  if (n >= TRAILER_SIZE_V1) {
    const b = tail.subarray(n - TRAILER_SIZE_V1);
    const dv = new DataView(b.buffer, b.byteOffset, 12);
    // Only a v1 trailer lacks a locator: the start of a cut v2 trailer is not one.
    if (bytesEqual(b.subarray(0, 8), TRAILER_MAGIC) && dv.getUint16(8, true) === 1 && dv.getUint16(10, true) === TRAILER_SIZE_V1) return { version: 1, size: TRAILER_SIZE_V1 };
  }
  return undefined;
}

/** True when the last bytes carry a trailer's magic (of any version). */
export function hasTrailerMagic(tail: Uint8Array): boolean {
  return findTrailer(tail) !== undefined;
}

/**
 * Decode the trailer that ends `tail`. The caller has checked there is one (`findTrailer`: it decides
 * between "not an archive" and "truncated", which needs the header too).
 */
export function decodeTrailer(tail: Uint8Array, archiveSize: number): Trailer {
  const found = findTrailer(tail);
  if (!found) throw corrupt('trailer', 'no trailer magic');
  const size = found.size;
  const bytes = tail.subarray(tail.byteLength - size);
  const r = new ByteReader(bytes, 'trailer');
  r.bytesView(8);
  const version = r.u16();
  checkVersion(version, 'trailer');
  if (r.u16() !== size || trailerSize(version) !== size) throw corrupt('trailer', 'wrong trailer size for its version');
  const flags = r.u32();
  const uuid = r.bytesView(16).slice();
  const rootOffset = r.u64();
  const rootLength = r.u32();
  r.reserved(4);
  const rootHash = r.bytesView(32).slice();
  const kind = r.u8();
  const log2N = r.u8();
  const rr = r.u8();
  const p = r.u8();
  r.reserved(4);
  const salt = r.bytesView(16).slice();
  const keyCheck = r.bytesView(16).slice();
  let signature: TrailerSignature | undefined;
  let locator = true;
  if (version >= 2) {
    const algorithm = r.u8();
    r.reserved(7);
    const keyId = r.bytesView(32).slice();
    const sig = r.bytesView(64).slice();
    r.reserved(16);
    const locatorSize = r.u16();
    const locatorVersion = r.u16();
    r.bytesView(4);
    locator = locatorSize === size && locatorVersion === version;
    signature = { algorithm: algorithm as TrailerSignature['algorithm'], keyId, signature: sig };
  }
  const sum = r.bytesView(8);
  // The checksum before the meaning of any field (section 3's order): random damage says so.
  if (!bytesEqual(sum, checksum(bytes.subarray(0, size - 8)))) throw corrupt('trailer', 'checksum mismatch');
  if (!locator) throw corrupt('trailer', 'the locator disagrees with the trailer');
  if (signature) {
    const { algorithm, keyId, signature: sig } = signature;
    if (algorithm !== SIG_NONE && algorithm !== SIG_ED25519) throw corrupt('trailer', `unknown signature algorithm ${algorithm}`);
    if (algorithm === SIG_NONE && (keyId.some((b) => b !== 0) || sig.some((b) => b !== 0))) throw corrupt('trailer', 'an unsigned trailer with a key id or signature');
  }
  if (flags & ~1) throw corrupt('trailer', `unknown flags 0x${flags.toString(16)}`);
  if (kind > KDF_SCRYPT) throw corrupt('trailer', `unknown key derivation ${kind}`);
  const encrypted = (flags & 1) !== 0;
  if (encrypted !== (kind !== KDF_NONE)) throw corrupt('trailer', 'encryption flag and key derivation disagree');
  if (kind === KDF_SCRYPT && (log2N < 10 || log2N > 30 || rr < 1 || p < 1)) throw corrupt('trailer', 'implausible scrypt parameters');
  if (rootOffset + rootLength !== archiveSize - size || rootOffset < 64 || rootLength < 8) {
    throw corrupt('trailer', `root at ${rootOffset}+${rootLength} does not end where the trailer starts (${archiveSize - size})`);
  }
  return {
    version,
    flags,
    uuid,
    rootOffset,
    rootLength,
    rootHash,
    kdf: { kind: kind as KdfParams['kind'], log2N, r: rr, p, salt },
    keyCheck,
    signature,
  };
}

/** Format a UUID's 16 bytes in the canonical 8-4-4-4-12 form. */
export function formatUuid(uuid: Uint8Array): string {
  const h = Buffer.from(uuid).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Parse the canonical form back to bytes. */
export function parseUuid(s: string): Uint8Array {
  const hex = s.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new HexzError('INVALID_ARGUMENT', `not a UUID: ${s}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
