/**
 * Files that change between the walk and the read: a vanished file is skipped with a warning, a file
 * that shrank keeps the bytes it still has (with a warning), one that grew keeps its size at walk
 * time, a directory where a file was is an error naming it. The same whether a file is small (read
 * by a worker thread in a batch with others) or large (read by the packer's main thread), and the
 * files around them are archived as usual.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { walkInput } from '@hexz/src/packer/walk.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { HexzError } from '@hexz/src/errors.js';
import { randomBytesSeeded, sha256, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

async function contents(out: string): Promise<Record<string, string>> {
  const archive = await openArchive(out);
  try {
    expect((await verifyArchive(archive)).problems).toEqual([]);
    const result: Record<string, string> = {};
    for (const e of (await archive.list('', { recursive: true })).entries) {
      if (e.type === 'file') result[e.path] = `${e.size}:${sha256(await archive.read(e.path, 0, e.size))}`;
    }
    return result;
  } finally {
    await archive.close();
  }
}

describe('input that changes while it is packed', () => {
  for (const [kind, size] of [
    ['small', 3000],
    ['large', 6 * MiB],
  ] as const) {
    it(`${kind} files: vanished skipped, shrunk cut short, grown kept at walk size`, async () => {
      const input = path.join(tmp.dir, `changing-${kind}`);
      const body = (seed: number) => randomBytesSeeded(size, seed);
      await writeTree(input, { 'a.bin': body(1), 'b-gone.bin': body(2), 'c-shrinks.bin': body(3), 'd-grows.bin': body(4), 'e.txt': textBytes(5000, 5), 'empty': '' });
      const walked = await walkInput(input);
      await fs.rm(path.join(input, 'b-gone.bin'));
      await fs.truncate(path.join(input, 'c-shrinks.bin'), 1000);
      await fs.appendFile(path.join(input, 'd-grows.bin'), Buffer.alloc(5000, 7));
      const warnings: string[] = [];
      const out = path.join(tmp.dir, `changing-${kind}.hxz`);
      const summary = await pack(input, out, { walked, onWarning: (m) => warnings.push(m) });
      expect(warnings.some((w) => w.startsWith('skipping b-gone.bin: ') && w.includes('ENOENT'))).toBe(true);
      expect(warnings).toContain('c-shrinks.bin shrank while being read; archived its first 1000 bytes');
      expect(summary.files).toBe(5);
      const got = await contents(out);
      expect(Object.keys(got).sort()).toEqual(['a.bin', 'c-shrinks.bin', 'd-grows.bin', 'e.txt', 'empty']);
      expect(got['a.bin']).toBe(`${size}:${sha256(body(1))}`);
      expect(got['c-shrinks.bin']).toBe(`1000:${sha256(body(3).subarray(0, 1000))}`);
      expect(got['d-grows.bin']).toBe(`${size}:${sha256(body(4))}`);
      expect(got['e.txt']).toBe(`5000:${sha256(textBytes(5000, 5))}`);
    });

    it(`${kind} files: a directory in place of a file is a typed error naming it`, async () => {
      const input = path.join(tmp.dir, `replaced-${kind}`);
      await writeTree(input, { 'a.bin': randomBytesSeeded(size, 1), 'b.bin': randomBytesSeeded(size, 2) });
      const walked = await walkInput(input);
      await fs.rm(path.join(input, 'b.bin'));
      await fs.mkdir(path.join(input, 'b.bin'));
      const err = await pack(input, path.join(tmp.dir, `replaced-${kind}.hxz`), { walked }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HexzError);
      expect((err as HexzError).code).not.toBe('INTERNAL');
      expect((err as HexzError).message).toContain('EISDIR');
      expect((err as HexzError).context.path).toBe(path.join(input, 'b.bin'));
    });
  }
});
