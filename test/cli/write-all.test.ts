/**
 * extract's batched writes: a writev that writes less than asked (the kernel may, e.g. on a signal or a
 * nearly full disk) is finished by further writes, byte-exact. A real file cannot be made to return a
 * short writev on demand, so the file handle here is a stand-in that does exactly that.
 */
import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { writeAllAt } from '@hexz/src/extract.js';

function shortHandle(size: number, limits: number[]) {
  const file = new Uint8Array(size);
  const put = (b: Uint8Array, off: number, len: number, pos: number) => {
    const n = Math.min(len, limits.length ? limits.shift()! : len);
    file.set(b.subarray(off, off + n), pos);
    return n;
  };
  const fh = {
    async writev(buffers: Uint8Array[], position: number) {
      let budget = limits.length ? limits.shift()! : Infinity;
      let written = 0;
      for (const b of buffers) {
        const n = Math.min(b.byteLength, budget);
        file.set(b.subarray(0, n), position + written);
        written += n;
        budget -= n;
        if (n < b.byteLength) break;
      }
      return { bytesWritten: written, buffers };
    },
    async write(b: Uint8Array, off: number, len: number, pos: number) {
      return { bytesWritten: put(b, off, len, pos), buffer: b };
    },
  };
  return { fh: fh as unknown as FileHandle, file };
}

describe('writeAllAt', () => {
  const bufs = [new Uint8Array(100).fill(1), new Uint8Array(50).fill(2), new Uint8Array(70).fill(3)];
  const expected = new Uint8Array(10 + 220);
  expected.set(bufs[0], 10);
  expected.set(bufs[1], 110);
  expected.set(bufs[2], 160);

  for (const limits of [[], [0, 1, 1], [100], [120, 5, 3], [219], [30, 40, 60]]) {
    it(`finishes after short writes ${JSON.stringify(limits)}`, async () => {
      const { fh, file } = shortHandle(230, [...limits]);
      await writeAllAt(fh, bufs, 10);
      expect(Buffer.from(file).equals(Buffer.from(expected))).toBe(true);
    });
  }
});
