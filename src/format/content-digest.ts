/**
 * The content digest of a file (docs/format.md, section 7.3): one 32-byte value that is equal exactly
 * when two files' bytes are, computable from an archive's chunk references alone (no chunk read) and
 * from the bytes of a file (chunked the way the packer cuts them). The gateway's strong ETags and the
 * workspace's "did this file change" both come from it.
 *
 * The digest is over the canonical chunk sequence: each data chunk contributes its id and length; a
 * run of zero bytes contributes only its total length, however it was cut (the packer merges adjacent
 * all-zero chunks into hole references of up to 2 GiB, and cuts sparse files' holes without reading
 * them). So it depends only on the content, the chunking parameters and the id key (keyed ids of an
 * encrypted archive make it reveal nothing about the plaintext), never on how holes were stored.
 *
 *   record  = kind (1: 1 data, 0 zeros) ‖ length (u64 le) ‖ id (32; zero for a zero run)
 *   digest  = BLAKE3(record ‖ record ‖ …)
 */
import { Blake3Hasher } from '@napi-rs/blake-hash';

const DATA = 1;
const ZEROS = 0;

/** Accumulates the canonical sequence; zero runs merge across however many pieces they came in. */
export class ContentDigest {
  private readonly h = new Blake3Hasher();
  private zeros = 0;
  private readonly record = Buffer.alloc(1 + 8 + 32);

  /** `length` zero bytes (a hole, or an all-zero chunk). */
  zero(length: number): void {
    this.zeros += length;
  }

  /** A data chunk with id `id` and `raw` bytes of plaintext. */
  chunk(id: Uint8Array, raw: number): void {
    this.flushZeros();
    this.record.writeUInt8(DATA, 0);
    this.record.writeBigUInt64LE(BigInt(raw), 1);
    this.record.set(id, 9);
    this.h.update(this.record);
  }

  private flushZeros(): void {
    if (this.zeros === 0) return;
    this.record.fill(0);
    this.record.writeUInt8(ZEROS, 0);
    this.record.writeBigUInt64LE(BigInt(this.zeros), 1);
    this.h.update(this.record);
    this.zeros = 0;
  }

  /** The 32-byte digest. The builder must not be used afterwards. */
  finish(): Buffer {
    this.flushZeros();
    return this.h.digestBuffer();
  }
}
