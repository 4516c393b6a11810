/**
 * Little-endian byte encoding with bounds checks. Every decode error is a typed `CORRUPT` error that
 * names the structure and offset, so hostile or damaged input can never crash a reader or make it read
 * past a buffer. See docs/format.md ("Conventions").
 */
import { corrupt } from '../errors.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Sequential reader over a byte view. */
export class ByteReader {
  readonly view: DataView;
  pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly structure: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  private need(n: number): number {
    const at = this.pos;
    if (n < 0 || at + n > this.bytes.byteLength) {
      throw corrupt(this.structure, `needs ${n} bytes at offset ${at}, only ${this.bytes.byteLength - at} left`);
    }
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.need(1));
  }

  i8(): number {
    return this.view.getInt8(this.need(1));
  }

  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }

  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }

  /** u64 that must fit a JS number exactly (docs/format.md: values ≤ 2^53 − 1). */
  u64(): number {
    const at = this.need(8);
    const v = this.view.getBigUint64(at, true);
    if (v > MAX_SAFE) throw corrupt(this.structure, `u64 at offset ${at} exceeds 2^53`);
    return Number(v);
  }

  i64(): bigint {
    return this.view.getBigInt64(this.need(8), true);
  }

  /** A view (no copy) of the next n bytes. */
  bytesView(n: number): Uint8Array {
    const at = this.need(n);
    return this.bytes.subarray(at, at + n);
  }

  utf8(n: number): string {
    const at = this.pos;
    const view = this.bytesView(n);
    try {
      return textDecoder.decode(view);
    } catch {
      throw corrupt(this.structure, `invalid UTF-8 at offset ${at}`);
    }
  }

  /** Reserved bytes must be zero (docs/format.md: reserved fields). */
  reserved(n: number): void {
    const at = this.pos;
    const view = this.bytesView(n);
    for (let i = 0; i < n; i++) {
      if (view[i] !== 0) throw corrupt(this.structure, `reserved byte at offset ${at + i} is not zero`);
    }
  }

  /** The structure must end exactly here. */
  end(): void {
    if (this.remaining !== 0) throw corrupt(this.structure, `${this.remaining} unexpected trailing bytes`);
  }
}

/**
 * Growable little-endian writer.
 *
 * Every write first reserves its bytes with `ensure` (which may swap in a larger buffer and view) and
 * only then touches `this.buf`/`this.view`: `this.view.setX(this.ensure(n), v)` would evaluate the old
 * view before `ensure` replaces it and write past its end.
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initialCapacity = 1024) {
    this.buf = new Uint8Array(Math.max(1, initialCapacity));
    this.view = new DataView(this.buf.buffer);
  }

  /** Reserve `n` bytes at the current position, growing the buffer; returns their offset. */
  private ensure(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.byteLength) {
      let cap = this.buf.byteLength * 2;
      while (cap < at + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.pos = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this.ensure(1);
    this.view.setUint8(at, v);
    return this;
  }

  i8(v: number): this {
    const at = this.ensure(1);
    this.view.setInt8(at, v);
    return this;
  }

  u16(v: number): this {
    const at = this.ensure(2);
    this.view.setUint16(at, v, true);
    return this;
  }

  u32(v: number): this {
    const at = this.ensure(4);
    this.view.setUint32(at, v, true);
    return this;
  }

  u64(v: number): this {
    const at = this.ensure(8);
    this.view.setBigUint64(at, BigInt(v), true);
    return this;
  }

  i64(v: bigint): this {
    const at = this.ensure(8);
    this.view.setBigInt64(at, v, true);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.ensure(b.byteLength);
    this.buf.set(b, at);
    return this;
  }

  zeros(n: number): this {
    const at = this.ensure(n);
    this.buf.fill(0, at, at + n);
    return this;
  }

  /** The written bytes (a view of the internal buffer; valid until the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const textEncoder = new TextEncoder();

/** UTF-8 encode. */
export function utf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** Compare two byte arrays lexicographically (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Equality of two byte arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** Lowercase hex of bytes. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
