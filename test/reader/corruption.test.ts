import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { isHexzError } from '@hexz/src/errors.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { putMemoryObject, deleteMemoryObject } from '@hexz/storage/memory.js';
import { decodeFilePage } from '@hexz/src/format/file-table.js';
import { decodeRoot } from '@hexz/src/format/root.js';
import { decodeTrailer, decodeHeader } from '@hexz/src/format/header.js';
import { ChunkIndexPage } from '@hexz/src/format/chunk-index.js';
import { randomBytesSeeded, sha256 } from '../helpers/data.js';

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
    const h = await openArchive(path.join(fixtures, 'broken', 'flipped-header.hxz'), { cache: new BlockCache() });
    expect((await verifyArchive(h)).problems[0].message).toMatch(/header/);
  });

  it('a future version says which version it found and which it supports', async () => {
    const err = await openArchive(path.join(fixtures, 'broken', 'future-version.hxz')).catch((e) => e);
    expect(err.message).toMatch(/version 2; this hexz reads version 1/);
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

describe('fuzz: seeded random mutations never crash, hang or return wrong bytes', () => {
  const CASES = 2500;
  it(`${CASES} mutated copies of the golden archive`, async () => {
    const outcomes = new Map<string, number>();
    const rnd = randomBytesSeeded(CASES * 16, 2026);
    const at = (i: number, k: number) => rnd.readUInt32LE((i * 16 + k * 4) % (rnd.length - 4));
    for (let i = 0; i < CASES; i++) {
      const b = Buffer.from(goldenBytes);
      const kind = at(i, 0) % 6;
      // Bias towards the index region (the last ~1.5 KiB), where parsers live.
      const pos = at(i, 1) % 3 === 0 ? at(i, 2) % b.length : b.length - 1 - (at(i, 2) % Math.min(b.length, 1600));
      let mutated: Buffer = b;
      if (kind === 0) b[pos] ^= 1 << (at(i, 3) % 8);
      else if (kind === 1) b[pos] = at(i, 3) & 0xff;
      else if (kind === 2) randomBytesSeeded(1 + (at(i, 3) % 64), i).copy(b, pos);
      else if (kind === 3) b.fill(0, pos, Math.min(b.length, pos + 1 + (at(i, 3) % 32)));
      else if (kind === 4) mutated = b.subarray(0, pos);
      else mutated = Buffer.concat([b.subarray(0, pos), randomBytesSeeded(1 + (at(i, 3) % 16), i), b.subarray(pos)]);
      const outcome = await readAll(mutated);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // Most mutations must be detected; the only undetectable ones touch bytes readers never use
    // (the header, which `verify` checks).
    expect(outcomes.get('CORRUPT')).toBeGreaterThan(CASES / 3);
    expect([...outcomes.keys()].every((k) => ['ok', 'CORRUPT', 'TRUNCATED', 'NOT_AN_ARCHIVE', 'UNSUPPORTED_VERSION', 'AUTH_FAILED'].includes(k))).toBe(true);
  }, 300_000);

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
