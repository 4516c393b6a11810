import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { HexzError, isHexzError } from '@hexz/src/errors.js';
import type { FileEntry } from '@hexz/src/format/file-table.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { putMemoryObject, deleteMemoryObject } from '@hexz/storage/memory.js';
import { decodeFilePage } from '@hexz/src/format/file-table.js';
import { decodeRoot } from '@hexz/src/format/root.js';
import { decodeTrailer, decodeHeader } from '@hexz/src/format/header.js';
import { ChunkIndexPage } from '@hexz/src/format/chunk-index.js';
import { craftArchive, decodeArchive } from '../helpers/craft.js';
import { randomBytesSeeded, sha256, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const golden = JSON.parse(await fs.readFile(path.join(fixtures, 'golden.json'), 'utf8'));
const goldenBytes = await fs.readFile(path.join(fixtures, 'golden.hxz'));
const expectedFiles = new Map<string, string>(golden.entries.filter((e: { type: string }) => e.type === 'file').map((e: { path: string; sha256: string }) => [e.path, e.sha256]));

/**
 * Open `bytes` and read everything. Returns 'ok' if every file reads back exactly as the golden
 * archive's, or the error code. Anything else (a non-Hexz error, wrong bytes) fails the test.
 */
async function readAll(bytes: Uint8Array, name = 'memory://fuzz/case.hxz'): Promise<string> {
  putMemoryObject(name, bytes);
  try {
    const archive = await openArchive(name, { cache: new BlockCache({ maxBytes: 8 << 20 }) });
    try {
      for await (const e of archive.walk()) {
        if (e.type !== 'file') continue;
        const data = await archive.read(e, 0, e.size);
        // A mutation may never yield bytes that differ from the original file.
        expect(sha256(data), `wrong bytes for ${e.path}`).toBe(expectedFiles.get(e.path));
      }
      return 'ok';
    } finally {
      await archive.close();
    }
  } catch (err) {
    if (!isHexzError(err)) throw new Error(`untyped error: ${(err as Error)?.stack ?? err}`);
    expect(err.message.length).toBeGreaterThan(5);
    return err.code;
  } finally {
    deleteMemoryObject(name);
  }
}

describe('broken archives give a typed error naming the problem', () => {
  it.each([
    ['empty.hxz', 'NOT_AN_ARCHIVE'],
    ['not-an-archive.hxz', 'NOT_AN_ARCHIVE'],
    ['truncated-header-only.hxz', 'TRUNCATED'],
    ['truncated-mid-chunks.hxz', 'TRUNCATED'],
    ['truncated-before-trailer.hxz', 'TRUNCATED'],
    ['truncated-mid-trailer.hxz', 'TRUNCATED'],
    ['future-version.hxz', 'UNSUPPORTED_VERSION'],
    ['flipped-trailer.hxz', 'CORRUPT'],
    ['flipped-root.hxz', 'CORRUPT'],
    ['flipped-chunk-page.hxz', 'CORRUPT'],
    ['flipped-file-page.hxz', 'CORRUPT'],
    ['flipped-chunk-data.hxz', 'CORRUPT'],
  ])('%s → %s', async (file, code) => {
    expect(await readAll(await fs.readFile(path.join(fixtures, 'broken', file)))).toBe(code);
  });

  it('names the structure and archive in the message', async () => {
    putMemoryObject('memory://fuzz/page.hxz', await fs.readFile(path.join(fixtures, 'broken', 'flipped-file-page.hxz')));
    const a = await openArchive('memory://fuzz/page.hxz', { cache: new BlockCache() });
    await expect(a.list('')).rejects.toMatchObject({ code: 'CORRUPT', message: /file-table page.*hash mismatch/, context: { archive: 'memory://fuzz/page.hxz' } });
    const v = await openArchive(path.join(fixtures, 'broken', 'flipped-chunk-data.hxz'), { cache: new BlockCache() });
    const report = await verifyArchive(v);
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ code: 'CORRUPT', path: 'README.txt' });
    await v.close();
    const h = await openArchive(path.join(fixtures, 'broken', 'flipped-header.hxz'), { cache: new BlockCache() });
    expect((await verifyArchive(h)).problems[0].message).toMatch(/header/);
    await h.close();
  });

  it('a future version says which version it found and which it supports', async () => {
    const err = await openArchive(path.join(fixtures, 'broken', 'future-version.hxz')).catch((e) => e);
    expect(err.message).toMatch(/version 3; this hexz reads versions 1 and 2/);
  });

  it('truncation at every structural boundary is TRUNCATED', async () => {
    const size = goldenBytes.length;
    const cuts = new Set<number>([64, 65, 100, size - 128, size - 127, size - 1, golden.rootOffset, golden.rootOffset + 1]);
    for (const p of [...golden.chunkPages, ...golden.filePages]) {
      cuts.add(p.offset);
      cuts.add(p.offset + p.length);
      cuts.add(p.offset + Math.floor(p.length / 2));
    }
    for (const cut of cuts) expect(await readAll(goldenBytes.subarray(0, cut)), `cut at ${cut}`).toBe('TRUNCATED');
  });

  it('an intact archive reads back exactly', async () => {
    expect(await readAll(goldenBytes)).toBe('ok');
  });
});

/** What an intact archive holds: entries (as listed) and the sha256 of every regular file. */
interface Expected {
  entries: string[];
  files: Map<string, string>;
  sizes: Map<string, number>;
}

const describeEntry = (e: FileEntry) => `${e.type} ${e.path} ${e.mode.toString(8)} ${e.size} ${e.mtimeNs}${e.type === 'symlink' ? ` -> ${e.target}` : ''}`;

/** Codes a damaged archive may produce; anything else (INTERNAL above all) fails the fuzz test. */
const DAMAGE_CODES = new Set(['CORRUPT', 'TRUNCATED', 'NOT_AN_ARCHIVE', 'UNSUPPORTED_VERSION', 'AUTH_FAILED', 'UNSAFE_PATH']);

/**
 * Run one operation: 'ok' when it succeeds (its own assertions check the data), else the code of the
 * typed error it threw. Untyped errors and failed assertions propagate and fail the test.
 */
async function attempt(what: string, fn: () => Promise<void>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    if (!isHexzError(err)) throw new Error(`${what}: untyped error: ${(err as Error)?.stack ?? err}`);
    expect(err.message.length, what).toBeGreaterThan(5);
    return err.code;
  }
}

/**
 * Open a (possibly damaged) archive and use every way in: walk, paged recursive listing, stat, read
 * of every file, a stream of every file, and verify. Each must return exactly what the intact archive
 * holds or throw a typed error; verify must name problems with typed codes. Returns the outcomes.
 */
async function exercise(bytes: Uint8Array, expected: Expected, name: string): Promise<string[]> {
  putMemoryObject(name, bytes);
  const outcomes: string[] = [];
  try {
    let archive: Archive;
    try {
      archive = await openArchive(name, { cache: new BlockCache({ maxBytes: 8 << 20 }) });
    } catch (err) {
      if (!isHexzError(err)) throw new Error(`open: untyped error: ${(err as Error)?.stack ?? err}`);
      return [err.code];
    }
    try {
      outcomes.push(
        await attempt('walk', async () => {
          const seen: string[] = [];
          for await (const e of archive.entries()) seen.push(describeEntry(e));
          expect(seen, 'walk').toEqual(expected.entries);
        }),
      );
      outcomes.push(
        await attempt('list', async () => {
          const seen: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await archive.list('', { recursive: true, limit: 7, cursor });
            seen.push(...page.entries.map(describeEntry));
            cursor = page.cursor;
            expect(++pages, 'list pages').toBeLessThan(1000);
          } while (cursor);
          expect(seen, 'list').toEqual(expected.entries);
        }),
      );
      let n = 0;
      for (const [p, sha] of expected.files) {
        // Streams go through pieces() and its prefetch; a sample of the small files keeps the test fast.
        const stream = n++ % 5 === 0 || expected.sizes.get(p)! > 4096;
        outcomes.push(
          await attempt(`read ${p}`, async () => {
            const e = await archive.stat(p);
            expect(e.type).toBe('file');
            expect(sha256(await archive.read(e, 0, e.size)), `wrong bytes for ${p}`).toBe(sha);
          }),
        );
        if (stream) {
          outcomes.push(
            await attempt(`stream ${p}`, async () => {
              const parts: Buffer[] = [];
              for await (const b of archive.createReadStream(p)) parts.push(b as Buffer);
              expect(sha256(Buffer.concat(parts)), `wrong streamed bytes for ${p}`).toBe(sha);
            }),
          );
        }
      }
      outcomes.push(
        await attempt('verify', async () => {
          const report = await verifyArchive(archive, { maxProblems: 5 });
          for (const problem of report.problems) expect(DAMAGE_CODES, `verify: ${problem.code} ${problem.message}`).toContain(problem.code);
          if (!report.ok) throw new HexzError(report.problems[0].code as never, report.problems[0].message);
        }),
      );
    } finally {
      await archive.close();
    }
  } finally {
    deleteMemoryObject(name);
  }
  return outcomes;
}

/** Seeded mutations of `base`: flips, overwrites, zeroed runs, cuts and insertions, biased to `hot`. */
function* mutations(base: Buffer, cases: number, seed: number, hot: [number, number]): Generator<{ i: number; kind: number; pos: number; bytes: Buffer }> {
  const rnd = randomBytesSeeded(cases * 16, seed);
  const at = (i: number, k: number) => rnd.readUInt32LE((i * 16 + k * 4) % (rnd.length - 4));
  for (let i = 0; i < cases; i++) {
    const b = Buffer.from(base);
    const kind = at(i, 0) % 6;
    const pos = at(i, 1) % 3 === 0 ? at(i, 2) % b.length : hot[0] + (at(i, 2) % (hot[1] - hot[0]));
    let mutated: Buffer = b;
    if (kind === 0) b[pos] ^= 1 << (at(i, 3) % 8);
    else if (kind === 1) b[pos] = at(i, 3) & 0xff;
    else if (kind === 2) randomBytesSeeded(1 + (at(i, 3) % 64), i + seed).copy(b, pos);
    else if (kind === 3) b.fill(0, pos, Math.min(b.length, pos + 1 + (at(i, 3) % 32)));
    else if (kind === 4) mutated = b.subarray(0, pos);
    else mutated = Buffer.concat([b.subarray(0, pos), randomBytesSeeded(1 + (at(i, 3) % 16), i + seed), b.subarray(pos)]);
    yield { i, kind, pos, bytes: mutated };
  }
}

async function expectedOf(bytes: Uint8Array): Promise<Expected> {
  putMemoryObject('memory://fuzz/expected.hxz', bytes);
  const a = await openArchive('memory://fuzz/expected.hxz', { cache: new BlockCache() });
  try {
    const entries: string[] = [];
    const files = new Map<string, string>();
    const sizes = new Map<string, number>();
    for await (const e of a.entries()) {
      entries.push(describeEntry(e));
      if (e.type === 'file') {
        files.set(e.path, sha256(await a.read(e, 0, e.size)));
        sizes.set(e.path, e.size);
      }
    }
    expect((await verifyArchive(a)).ok).toBe(true);
    return { entries, files, sizes };
  } finally {
    await a.close();
    deleteMemoryObject('memory://fuzz/expected.hxz');
  }
}

/**
 * A small archive with many pages: 1-KiB average chunks and a rewritten index of 12 references per
 * chunk-index page and 8 entries per file-table page, so mutations hit page tables, page boundaries,
 * several pages of each kind and the root's page entries — not just one page of each.
 */
async function multiPageArchive(): Promise<Buffer> {
  const { dir, cleanup } = await makeTempDir('hexz-fuzz-');
  try {
    const input = path.join(dir, 'in');
    const files: Record<string, string | Uint8Array | null> = {
      'big/random.bin': randomBytesSeeded(20 * 1024, 11),
      'big/again.bin': randomBytesSeeded(20 * 1024, 11),
      'empty.txt': '',
      'deep/a/b/c/leaf.txt': 'leaf\n',
      'ünï/çødé.txt': 'unicode\n',
      'hollow/': null,
    };
    const sparse = Buffer.alloc(40 * 1024);
    sparse.write('data in the middle', 20_000);
    files['sparse.img'] = sparse;
    for (let i = 0; i < 40; i++) files[`text/file-${String(i).padStart(2, '0')}-${'x'.repeat(i % 13)}.txt`] = `line ${i}\n`.repeat(1 + (i % 7));
    await writeTree(input, files);
    await fs.symlink('text/file-01-x.txt', path.join(input, 'link'));
    const t = new Date('2025-01-01T00:00:00Z');
    const out = path.join(dir, 'multi.hxz');
    await pack(input, out, {
      threads: 1,
      uuid: '00000000-0000-4000-8000-000000000001',
      created: t,
      chunking: { algorithm: 1, normalization: 2, min: 256, avg: 1024, max: 4096, seed: '0000000000000000' },
    });
    return craftArchive(await fs.readFile(out), () => {}, { rewriteRefs: true, refsPerPage: 12, entriesPerPage: 8, dropOldIndex: true });
  } finally {
    await cleanup();
  }
}

describe('fuzz: seeded random mutations never crash, hang or return wrong bytes', () => {
  it('the multi-page fuzz archive has several pages of each kind', async () => {
    const multi = decodeArchive(await multiPageArchive());
    expect(multi.root.chunkPages.length).toBeGreaterThanOrEqual(5);
    expect(multi.root.filePages.length).toBeGreaterThanOrEqual(5);
  });

  // Walk, list, stat, read, stream and verify every mutated copy; a few thousand cases in all.
  for (const [name, CASES, seed] of [
    ['the golden archive', 1500, 2026],
    ['a multi-page archive', 1500, 7],
  ] as const) {
    it(`${CASES} mutated copies of ${name}`, async () => {
      const base = name === 'the golden archive' ? goldenBytes : await multiPageArchive();
      const expected = await expectedOf(base);
      const trailer = decodeTrailer(base, base.length);
      const root = decodeArchive(base).root;
      // Bias towards the index (pages, root, trailer), where the parsers live.
      const indexStart = Math.min(trailer.rootOffset, ...root.chunkPages.map((p) => p.offset), ...root.filePages.map((p) => p.offset));
      const outcomes = new Map<string, number>();
      for (const m of mutations(base, CASES, seed, [indexStart, base.length])) {
        let result: string[];
        try {
          result = await exercise(m.bytes, expected, `memory://fuzz/${seed}-${m.i}.hxz`);
        } catch (err) {
          throw new Error(`case ${m.i} (seed ${seed}, kind ${m.kind}, at ${m.pos}): ${(err as Error).message}`, { cause: err });
        }
        for (const r of result) {
          expect(r === 'ok' || DAMAGE_CODES.has(r), `case ${m.i}: outcome ${r}`).toBe(true);
          outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
        }
      }
      // Most mutations must be detected; verify (which also checks the header) catches the rest.
      expect(outcomes.get('CORRUPT')).toBeGreaterThan(CASES / 3);
    }, 300_000);
  }

  it('the structure parsers reject random bytes with typed errors only', () => {
    for (let i = 0; i < 3000; i++) {
      const junk = randomBytesSeeded(1 + (i % 700), i + 1);
      for (const parse of [
        () => decodeRoot(junk, 1e9),
        () => decodeFilePage(junk, 1 + (i % 5)),
        () => new ChunkIndexPage(junk, 0, 1 + (i % 3), 0),
        () => decodeTrailer(Buffer.concat([Buffer.alloc(128 - Math.min(128, junk.length)), junk]).subarray(-128), 1e6),
        () => decodeHeader(junk),
      ]) {
        try {
          parse();
        } catch (err) {
          if (!isHexzError(err)) throw err;
        }
      }
    }
  });
});
