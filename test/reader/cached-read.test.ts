/**
 * The synchronous cached read (the FUSE fast path): false until the chunks are cached, then exactly
 * the bytes the async read returns, across chunk boundaries, holes and index pages.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let archive: Archive;
let content: Buffer;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-cached-read-');
  // Data, a 3 MiB hole, data: chunk boundaries, a hole reference and (with small pages) several index pages.
  content = Buffer.concat([randomBytesSeeded(5 * MiB, 1), Buffer.alloc(3 * MiB), randomBytesSeeded(2 * MiB + 12345, 2)]);
  const src = path.join(tmp.dir, 'f.img');
  await fs.writeFile(src, content);
  const out = path.join(tmp.dir, 'f.hxz');
  await pack(src, out, { chunking: { algorithm: 1, normalization: 2, min: 4096, avg: 16384, max: 65536, seed: '0000000000000000' } });
  archive = await openArchive(out, { cache: new BlockCache({ maxBytes: 256 * MiB }) });
});

afterAll(async () => {
  await archive?.close();
  await tmp?.cleanup();
});

describe('Archive.readCachedInto', () => {
  it('is false before the chunks are cached, then returns exactly what read() returns', async () => {
    const e = await archive.entry('disk');
    const dst = Buffer.alloc(200_000, 0xee);
    expect(archive.readCachedInto(e, 1000, 100_000, dst)).toBe(false);
    expect(dst.every((b) => b === 0xee)).toBe(true); // nothing written
    await archive.read(e, 0, e.size); // warms every chunk
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    const cases: Array<[number, number]> = [[0, 1], [0, e.size], [5 * MiB - 10, 20], [5 * MiB + 100, 3 * MiB], [e.size - 1, 1], [e.size, 0]];
    for (let i = 0; i < 300; i++) {
      const off = rnd(e.size);
      cases.push([off, Math.min(e.size - off, 1 + rnd(300_000))]);
    }
    for (const [off, n] of cases) {
      const buf = Buffer.alloc(n);
      expect(archive.readCachedInto(e, off, n, buf), `${off}+${n}`).toBe(true);
      expect(buf.equals(content.subarray(off, off + n)), `${off}+${n}`).toBe(true);
    }
  });
});
