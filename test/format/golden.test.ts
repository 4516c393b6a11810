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

describe('golden archive (test/fixtures/golden.hxz)', () => {
  it('decodes to the recorded structures and contents', async () => {
    const bytes = await fs.readFile(path.join(fixtures, 'golden.hxz'));
    expect(bytes.length).toBe(golden.size);
    const header = decodeHeader(bytes);
    const trailer = decodeTrailer(bytes, bytes.length);
    expect(Buffer.from(header.uuid).equals(Buffer.from(trailer.uuid))).toBe(true);
    expect(trailer.rootOffset).toBe(golden.rootOffset);
    expect(Buffer.from(trailer.rootHash).toString('hex')).toBe(golden.rootHash);

    const archive = await openArchive(path.join(fixtures, 'golden.hxz'));
    expect(archive.uuid).toBe(golden.uuid);
    expect(archive.root.chunkPages.map((p) => ({ offset: p.offset, length: p.length, count: p.count }))).toEqual(golden.chunkPages);
    const entries = [];
    for await (const e of archive.walk()) {
      const item: Record<string, unknown> = { path: e.path, type: e.type, mode: e.mode, size: e.size, mtimeNs: String(e.mtimeNs) };
      if (e.type === 'symlink') item.target = e.target;
      if (e.type === 'file') item.sha256 = createHash('sha256').update(await archive.read(e, 0, e.size)).digest('hex');
      entries.push(item);
    }
    expect(entries).toEqual(golden.entries);
    await archive.close();
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
