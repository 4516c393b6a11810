import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openArchive } from '@hexz/src/reader/archive.js';
import { decodeHeader, decodeTrailer } from '@hexz/src/format/header.js';
import { run } from '../helpers/cli.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const golden = JSON.parse(await fs.readFile(path.join(fixtures, 'golden.json'), 'utf8'));

/** Check a committed golden archive against its recorded structures and contents. */
async function checkGolden(file: string, expected: typeof golden, version: number): Promise<void> {
  const bytes = await fs.readFile(path.join(fixtures, file));
  expect(bytes.length).toBe(expected.size);
  const header = decodeHeader(bytes);
  const trailer = decodeTrailer(bytes, bytes.length);
  expect(trailer.version).toBe(version);
  expect(Buffer.from(header.uuid).equals(Buffer.from(trailer.uuid))).toBe(true);
  expect(trailer.rootOffset).toBe(expected.rootOffset);
  expect(Buffer.from(trailer.rootHash).toString('hex')).toBe(expected.rootHash);

  const archive = await openArchive(path.join(fixtures, file));
  expect(archive.uuid).toBe(expected.uuid);
  expect(archive.root.chunkPages.map((p) => ({ offset: p.offset, length: p.length, count: p.count }))).toEqual(expected.chunkPages);
  const entries = [];
  for await (const e of archive.walk()) {
    const item: Record<string, unknown> = { path: e.path, type: e.type, mode: e.mode, size: e.size, mtimeNs: String(e.mtimeNs) };
    if (e.type === 'symlink') item.target = e.target;
    if (e.type === 'file') {
      item.sha256 = createHash('sha256').update(await archive.read(e, 0, e.size)).digest('hex');
      // v2 records the content digest; v1 does not, and readers compute the same value.
      expect(Boolean(e.digest)).toBe(version >= 2);
    }
    entries.push(item);
  }
  expect(entries).toEqual(expected.entries);
  await archive.close();
}

describe('golden archive (test/fixtures/golden.hxz)', () => {
  it('decodes to the recorded structures and contents', () => checkGolden('golden.hxz', golden, 2));

  it('a version 1 archive (test/fixtures/golden-v1.hxz, written before v2) still reads, with the same contents and content digests', async () => {
    const v1 = JSON.parse(await fs.readFile(path.join(fixtures, 'golden-v1.json'), 'utf8'));
    await checkGolden('golden-v1.hxz', v1, 1);
    // The same files in both (README.txt names the version, so it differs): their content digests,
    // stored in v2 and computed in v1, agree.
    const same = new Set(v1.entries.filter((e: { sha256?: string }) => e.sha256 && golden.entries.some((g: { path: string; sha256?: string }) => g.sha256 === e.sha256)).map((e: { path: string }) => e.path));
    expect(same.size).toBeGreaterThan(3);
    const [a, b] = await Promise.all([openArchive(path.join(fixtures, 'golden-v1.hxz')), openArchive(path.join(fixtures, 'golden.hxz'))]);
    for await (const e of a.walk()) {
      if (e.type !== 'file' || !same.has(e.path)) continue;
      expect(Buffer.from(await a.contentDigest(e)).toString('hex'), e.path).toBe(Buffer.from(await b.contentDigest(e.path)).toString('hex'));
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('is reproduced byte for byte by the packer (fixed UUID and time)', async () => {
    // The generator writes into test/fixtures; run it on a copy so the committed files stay the reference.
    const { dir, cleanup } = await (await import('../helpers/tmp.js')).makeTempDir();
    try {
      await fs.cp(fixtures, dir, { recursive: true });
      const r = await run(process.execPath, [path.join(dir, 'generate.mjs')], { env: { HEXZ_DIST: fileURLToPath(new URL('../../dist', import.meta.url)) } });
      expect(r.code, r.stderr).toBe(0);
      const again = await fs.readFile(path.join(dir, 'golden.hxz'));
      expect(createHash('sha256').update(again).digest('hex')).toBe(golden.sha256);
    } finally {
      await cleanup();
    }
  });
});
