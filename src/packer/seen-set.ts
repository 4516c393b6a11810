/**
 * A set of chunk ids shared by the packer's threads (a SharedArrayBuffer, lock-free with Atomics), so
 * that a worker compresses a chunk only if no thread has seen its id before: duplicates within the
 * input and chunks already in the bases are hashed but never compressed, without asking the main
 * thread first.
 *
 * It is a hint, never the authority: keys are the first 8 bytes of the id, so two different chunks
 * may share a key (then the second is not compressed by its worker, and the main thread, which
 * classifies every chunk by its full id in job order, compresses it itself). When the table is three
 * quarters full, `add` says "new" for everything: workers then compress every chunk, as if there
 * were no set.
 */

/** Open addressing with linear probing over 64-bit keys; 0 marks an empty slot. */
export class SeenSet {
  private readonly keys: BigInt64Array;
  private readonly count: Int32Array;
  private readonly mask: number;
  private readonly limit: number;

  /** A set for about `expected` ids (rounded up to a power of two, at least 4,096 slots, at most `maxSlots`). */
  static create(expected: number, maxSlots = 1 << 23): SeenSet {
    let slots = 4096;
    while (slots < expected * 2 && slots < maxSlots) slots *= 2;
    return new SeenSet(new SharedArrayBuffer(slots * 8 + 8));
  }

  /** Attach to a set created by another thread. */
  constructor(readonly buffer: SharedArrayBuffer) {
    const slots = (buffer.byteLength - 8) / 8;
    this.keys = new BigInt64Array(buffer, 8, slots);
    this.count = new Int32Array(buffer, 0, 1);
    this.mask = slots - 1;
    this.limit = Math.floor(slots * 0.75);
  }

  /** The key of an id: its first 8 bytes (never 0, which marks empty slots). */
  static keyOf(id: Uint8Array, at = 0): bigint {
    const k = new DataView(id.buffer, id.byteOffset + at, 8).getBigInt64(0, true);
    return k === 0n ? 1n : k;
  }

  /** Add the key; true if it was not there before (or the set is full: then everything is "new"). */
  add(key: bigint): boolean {
    if (Atomics.load(this.count, 0) >= this.limit) return true;
    let i = Number(key & BigInt(this.mask));
    for (;;) {
      const cur = Atomics.load(this.keys, i);
      if (cur === key) return false;
      if (cur === 0n) {
        const prev = Atomics.compareExchange(this.keys, i, 0n, key);
        if (prev === 0n) {
          Atomics.add(this.count, 0, 1);
          return true;
        }
        if (prev === key) return false;
      }
      i = (i + 1) & this.mask;
    }
  }
}
