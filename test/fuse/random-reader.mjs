// Child-process reader for the FUSE tests: `node random-reader.mjs MOUNTED_FILE ORIGINAL_FILE COUNT SEED [SIZE]`.
// Reads COUNT pieces of SIZE bytes (default 4096) at pseudo-random offsets (aligned and unaligned, some
// running past the end) from the mounted file, with several reads in flight, and compares each with the
// original. Prints one JSON line {reads, bytes, mismatches}. It runs in its own process because the test
// process must not be the one waiting on the mount.
import { promises as fs } from 'node:fs';

const [mounted, original, countArg, seedArg, sizeArg] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg ?? 4096);
let seed = Number(seedArg) >>> 0 || 1;
const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);

const [m, o] = await Promise.all([fs.open(mounted, 'r'), fs.open(original, 'r')]);
const fileSize = (await o.stat()).size;
let done = 0;
let bytes = 0;
const mismatches = [];
const IN_FLIGHT = 4;
async function worker() {
  const a = Buffer.alloc(size);
  const b = Buffer.alloc(size);
  while (done < count) {
    done++;
    const r = next();
    let offset = Math.floor(next() * fileSize);
    if (r < 0.5) offset -= offset % 4096; // page-aligned, as fio does
    if (r > 0.97) offset = Math.max(0, fileSize - Math.floor(size / 2)); // runs past the end
    const [x, y] = await Promise.all([m.read(a, 0, size, offset), o.read(b, 0, size, offset)]);
    bytes += x.bytesRead;
    if (x.bytesRead !== y.bytesRead || !a.subarray(0, x.bytesRead).equals(b.subarray(0, y.bytesRead))) mismatches.push(offset);
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
await Promise.all([m.close(), o.close()]);
process.stdout.write(`${JSON.stringify({ reads: count, bytes, mismatches })}\n`);
