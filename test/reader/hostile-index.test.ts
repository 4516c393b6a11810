/**
 * Archives whose every hash is right but whose index lies: two references to one chunk that disagree
 * on its length, file entries pointing past the references, and pages shared through the process-wide
 * cache with an archive whose root places them differently. Readers must say CORRUPT, never return
 * short pieces or uninitialised memory, and `verify` must not call them OK.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { craftArchive } from '../helpers/craft.js';
import { hexz } from '../helpers/cli.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('hexz-hostile-');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function packTree(name: string, files: Record<string, string | Uint8Array | null>, opts: Parameters<typeof pack>[2] = {}): Promise<string> {
  const input = path.join(tmp.dir, `${name}-in`);
  await writeTree(input, files);
  const out = path.join(tmp.dir, `${name}.hxz`);
  await pack(input, out, { threads: 1, ...opts });
  return out;
}

async function write(name: string, bytes: Uint8Array): Promise<string> {
  const p = path.join(tmp.dir, name);
  await fs.writeFile(p, bytes);
  return p;
}

async function drain(a: Archive, p: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of a.createReadStream(p)) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

describe('two references to one chunk with different raw lengths', () => {
  let crafted: string;
  let shorter: string;
  beforeAll(async () => {
    // "hello world" is too small to compress: stored raw (codec none); b.txt deduplicates against a.txt.
    const good = await fs.readFile(await packTree('dup', { 'a.txt': 'hello world', 'b.txt': 'hello world' }));
    const lengthen = (raw: number) =>
      craftArchive(
        good,
        (d) => {
          expect(d.refs).toHaveLength(2);
          expect(Buffer.compare(d.refs[0].id, d.refs[1].id)).toBe(0);
          d.refs[1].raw = raw;
          const b = d.entries.find((e) => e.path === 'b.txt')!;
          b.size = raw;
          d.root.logicalSize = 11 + raw;
        },
        { rewriteRefs: true },
      );
    crafted = await write('dup-long.hxz', lengthen(100_000));
    shorter = await write('dup-short.hxz', lengthen(5));
  });

  it('read(), streams and pieces fail with CORRUPT once the chunk is cached through the other reference', async () => {
    for (const file of [crafted, shorter]) {
      const a = await openArchive(file, { cache: new BlockCache() });
      try {
        expect(Buffer.from(await a.read('a.txt', 0, 11)).toString()).toBe('hello world'); // now cached
        const size = (await a.entry('b.txt')).size;
        expect(await codeOf(a.read('b.txt', 0, size))).toBe('CORRUPT');
        expect(await codeOf(a.read('b.txt', 0, Math.min(size, 3)))).toBe('CORRUPT');
        expect(await codeOf(drain(a, 'b.txt'))).toBe('CORRUPT');
        const pieces = async () => {
          for await (const _ of a.pieces('b.txt')) void _;
        };
        expect(await codeOf(pieces())).toBe('CORRUPT');
      } finally {
        await a.close();
      }
      // With a cold cache the bad reference is the one that loads the chunk: CORRUPT too.
      const cold = await openArchive(file, { cache: new BlockCache() });
      try {
        expect(await codeOf(cold.read('b.txt', 0, (await cold.entry('b.txt')).size))).toBe('CORRUPT');
      } finally {
        await cold.close();
      }
    }
  });

  it('verify reports it (it used to dedup by location and say OK)', async () => {
    for (const file of [crafted, shorter]) {
      const a = await openArchive(file, { cache: new BlockCache() });
      try {
        const r = await verifyArchive(a);
        expect(r.ok).toBe(false);
        expect(r.problems).toContainEqual(expect.objectContaining({ code: 'CORRUPT', path: 'b.txt' }));
      } finally {
        await a.close();
      }
      const cli = await hexz(['verify', file]);
      expect(cli.code).toBe(4);
      expect(cli.stdout.toString()).toMatch(/CORRUPT b\.txt/);
      expect((await hexz(['cat', file, 'b.txt'])).code).toBe(4);
    }
  });
});

describe('pages served from the shared cache are checked against the root of the archive using them', () => {
  let good: string;
  let goodBytes: Buffer;
  beforeAll(async () => {
    good = await packTree('ctx', { 'data.bin': randomBytesSeeded(300_000, 5), 'dir/x.txt': 'x', 'dir/y.txt': 'y' });
    goodBytes = await fs.readFile(good);
  });

  /** Outcome of `use` on `crafted`, first with a cold cache, then with one warmed by the good archive. */
  async function coldAndWarm(crafted: Buffer, warm: (a: Archive) => Promise<unknown>, use: (a: Archive) => Promise<unknown>): Promise<[string, string]> {
    const file = await write(`ctx-${Math.random().toString(36).slice(2)}.hxz`, crafted);
    const cold = await openArchive(file, { cache: new BlockCache() });
    const coldOutcome = await codeOf(use(cold)).finally(() => cold.close());
    const cache = new BlockCache();
    const g = await openArchive(good, { cache });
    await warm(g);
    await g.close();
    const w = await openArchive(file, { cache });
    const warmOutcome = await codeOf(use(w)).finally(() => w.close());
    return [coldOutcome, warmOutcome];
  }

  it('a file entry (and root) claiming more bytes than the chunk-index page holds', async () => {
    // Same chunk-index page bytes (same hash), but the root and file table say the file is longer.
    const crafted = craftArchive(goodBytes, (d) => {
      d.entries.find((e) => e.path === 'data.bin')!.size += 1000;
      d.root.logicalSize += 1000;
    });
    const readAll = async (a: Archive) => a.read('data.bin', 0, (await a.entry('data.bin')).size);
    expect(await coldAndWarm(crafted, (g) => g.read('data.bin', 0, 10), readAll)).toEqual(['CORRUPT', 'CORRUPT']);
    expect(await coldAndWarm(crafted, (g) => g.read('data.bin', 0, 10), (a) => drain(a, 'data.bin'))).toEqual(['CORRUPT', 'CORRUPT']);
  });

  it('v2: a file entry pointing past the references is refused by its file-table page (the root says where the files end)', async () => {
    const crafted = craftArchive(goodBytes, (d) => {
      d.entries.find((e) => e.path === 'data.bin')!.size += 1000;
    });
    const a = await openArchive(await write('past-end-v2.hxz', crafted), { cache: new BlockCache() });
    try {
      await expect(a.entry('data.bin')).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringMatching(/corrupt file-table page 0/) });
      expect((await verifyArchive(a)).ok).toBe(false);
    } finally {
      await a.close();
    }
  });

  it('v1: a file entry pointing past the references is CORRUPT even when every page is consistent', async () => {
    // The root agrees with the page; only the entry lies (it claims bytes beyond the logical space).
    // A v1 root does not say where a page's files end: the reads' plan must catch it.
    const crafted = craftArchive(
      goodBytes,
      (d) => {
        d.entries.find((e) => e.path === 'data.bin')!.size += 1000;
      },
      { version: 1 },
    );
    const file = await write('past-end.hxz', crafted);
    const a = await openArchive(file, { cache: new BlockCache() });
    try {
      // Even without the v2 page starts, the page's one file ending past the logical space is refused
      // at its page (the plan would refuse it too: test/reader/front-ends-agree.test.ts).
      expect(await codeOf(a.entry('data.bin'))).toBe('CORRUPT');
      expect(await codeOf(drain(a, 'data.bin'))).toBe('CORRUPT');
      expect((await verifyArchive(a)).ok).toBe(false);
    } finally {
      await a.close();
    }
  });

  it('a file-table page whose count differs in the root', async () => {
    const crafted = craftArchive(
      goodBytes,
      (d) => {
        d.root.filePages[0].count -= 1;
        d.root.fileCount -= 1;
      },
      { keepFilePages: true },
    );
    expect(await coldAndWarm(crafted, (g) => g.list(''), (a) => a.list('', { recursive: true }))).toEqual(['CORRUPT', 'CORRUPT']);
  });

  it('a chunk-index page naming a base the archive does not have', async () => {
    const base = await packTree('base', { 'data.bin': randomBytesSeeded(300_000, 9) });
    const delta = await packTree('delta', { 'data.bin': randomBytesSeeded(300_000, 9), 'new.txt': 'new' }, { bases: [base] });
    const deltaBytes = await fs.readFile(delta);
    const crafted = craftArchive(deltaBytes, (d) => {
      d.root.bases = [];
    }, { keepFilePages: true });
    const file = await write('no-bases.hxz', crafted);
    const cold = await openArchive(file, { cache: new BlockCache() });
    expect(await codeOf(cold.read('data.bin', 0, 10).finally(() => cold.close()))).toBe('CORRUPT');
    const cache = new BlockCache();
    const d = await openArchive(delta, { cache });
    await d.read('data.bin', 0, 10);
    await d.close();
    const warm = await openArchive(file, { cache });
    expect(await codeOf(warm.read('data.bin', 0, 10).finally(() => warm.close()))).toBe('CORRUPT');
  });
});
