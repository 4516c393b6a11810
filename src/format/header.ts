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
  TRAILER_MAGIC,
  TRAILER_SIZE,
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

export interface Trailer {
  version: number;
  flags: number;
  uuid: Uint8Array;
  rootOffset: number;
  rootLength: number;
  rootHash: Uint8Array;
  kdf: KdfParams;
  keyCheck: Uint8Array;
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
  if (version !== FORMAT_VERSION) {
    throw new HexzError(
      'UNSUPPORTED_VERSION',
      `archive ${structure} says format version ${version}; this hexz reads version ${FORMAT_VERSION} only` +
        (version > FORMAT_VERSION ? ' (upgrade hexz)' : ''),
      { structure, actual: String(version), expected: String(FORMAT_VERSION) },
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

export function encodeTrailer(t: Trailer): Uint8Array {
  const w = new ByteWriter(TRAILER_SIZE);
  w.bytes(TRAILER_MAGIC).u16(t.version).u16(TRAILER_SIZE).u32(t.flags).bytes(t.uuid);
  w.u64(t.rootOffset).u32(t.rootLength).zeros(4).bytes(t.rootHash);
  w.u8(t.kdf.kind).u8(t.kdf.log2N).u8(t.kdf.r).u8(t.kdf.p).zeros(4).bytes(t.kdf.salt).bytes(t.keyCheck);
  w.bytes(checksum(w.finish()));
  return w.finish().slice();
}

/** True when the last bytes carry the trailer magic. */
export function hasTrailerMagic(tail: Uint8Array): boolean {
  if (tail.byteLength < TRAILER_SIZE) return false;
  const at = tail.byteLength - TRAILER_SIZE;
  return bytesEqual(tail.subarray(at, at + 8), TRAILER_MAGIC);
}

/**
 * Decode the trailer from the last `TRAILER_SIZE` bytes of `tail`. The caller has checked the magic
 * (it decides between "not an archive" and "truncated", which needs the header too).
 */
export function decodeTrailer(tail: Uint8Array, archiveSize: number): Trailer {
  const bytes = tail.subarray(tail.byteLength - TRAILER_SIZE);
  const r = new ByteReader(bytes, 'trailer');
  r.bytesView(8);
  const version = r.u16();
  checkVersion(version, 'trailer');
  if (r.u16() !== TRAILER_SIZE) throw corrupt('trailer', 'wrong trailer size');
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
  const sum = r.bytesView(8);
  if (!bytesEqual(sum, checksum(bytes.subarray(0, 120)))) throw corrupt('trailer', 'checksum mismatch');
  if (flags & ~1) throw corrupt('trailer', `unknown flags 0x${flags.toString(16)}`);
  if (kind > KDF_SCRYPT) throw corrupt('trailer', `unknown key derivation ${kind}`);
  const encrypted = (flags & 1) !== 0;
  if (encrypted !== (kind !== KDF_NONE)) throw corrupt('trailer', 'encryption flag and key derivation disagree');
  if (kind === KDF_SCRYPT && (log2N < 10 || log2N > 30 || rr < 1 || p < 1)) throw corrupt('trailer', 'implausible scrypt parameters');
  if (rootOffset + rootLength !== archiveSize - TRAILER_SIZE || rootOffset < 64 || rootLength < 8) {
    throw corrupt('trailer', `root at ${rootOffset}+${rootLength} does not end where the trailer starts (${archiveSize - TRAILER_SIZE})`);
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
