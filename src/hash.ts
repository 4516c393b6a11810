/**
 * BLAKE3, the one cryptographic hash of the format (docs/format.md, "Conventions"): chunk ids, page and
 * root hashes, checksums. Backed by the native `@napi-rs/blake-hash` (~4–5 GB/s here); the pure-JS
 * alternatives are 5× slower and `blake3` on npm does not install on this platform.
 */
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';

/** Length of every hash and chunk id. */
export const HASH_BYTES = 32;

/** A Buffer view of the same bytes (no copy): the native binding's types ask for Buffers. */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** `H(x)`: BLAKE3-256. */
export function hash(data: Uint8Array): Buffer {
  return blake3(asBuffer(data));
}

/** `H(a ‖ b ‖ …)` without concatenating. */
export function hashParts(parts: Uint8Array[]): Buffer {
  const h = new Blake3Hasher();
  for (const p of parts) h.update(asBuffer(p));
  return h.digestBuffer();
}

/** `H_k(x)`: BLAKE3 keyed mode with a 32-byte key. */
export function keyedHash(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = Blake3Hasher.newKeyed(asBuffer(key));
  for (const p of parts) h.update(asBuffer(p));
  return h.digestBuffer();
}

/** `DK(context, k)`: BLAKE3 derive_key mode. */
export function deriveKey(context: string, keyMaterial: Uint8Array): Buffer {
  return Blake3Hasher.deriveKey(context, asBuffer(keyMaterial));
}

/** Reusable keyed hasher for hot loops (chunk ids of encrypted archives). */
export function createKeyedHasher(key: Uint8Array): (data: Uint8Array) => Buffer {
  const k = Buffer.from(key);
  return (data) => {
    const h = Blake3Hasher.newKeyed(k);
    h.update(asBuffer(data));
    return h.digestBuffer();
  };
}
