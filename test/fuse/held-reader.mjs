// Child-process holder of an open file for the FUSE tests: `node held-reader.mjs FILE OFFSET LENGTH`.
// Opens FILE (O_DIRECT, so reads reach the FUSE server rather than the page cache), reads LENGTH bytes
// at 0 and prints `opened`; then, for every line on stdin, reads LENGTH bytes at OFFSET with the same
// descriptor and prints `read <sha256>` or `error <errno name>` (the name from os.constants.errno:
// libuv has no code for some errors, ESTALE among them). Exits when stdin closes. It runs in its own
// process because the test process must never be the one waiting on the mount.
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';

const [file, offsetArg, lengthArg] = process.argv.slice(2);
const offset = Number(offsetArg);
const length = Number(lengthArg);
const fh = await fs.open(file, constants.O_RDONLY | constants.O_DIRECT);
const buf = Buffer.alloc(length);
await fh.read(buf, 0, length, 0);
process.stdout.write('opened\n');
for await (const _line of createInterface({ input: process.stdin })) {
  try {
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    process.stdout.write(`read ${createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex')}\n`);
  } catch (err) {
    const name = Object.entries(os.constants.errno).find(([, n]) => n === Math.abs(err.errno))?.[0];
    process.stdout.write(`error ${name ?? err.code}\n`);
  }
}
await fh.close();
