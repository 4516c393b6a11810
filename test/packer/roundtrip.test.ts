import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { extractArchive } from '@hexz/src/extract.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { randomBytesSeeded, sha256, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

/** Pack `input`, check verify, read every file back, extract and compare the whole tree. */
async function roundTrip(input: string, opts: Parameters<typeof pack>[2] = {}) {
  const out = path.join(tmp.dir, `${path.basename(input)}-${Math.random().toString(36).slice(2)}.hxz`);
  const summary = await pack(input, out, opts);
  const archive = await openArchive(out);
  const report = await verifyArchive(archive);
  expect(report.problems).toEqual([]);
  const dest = `${out}.extract`;
  await extractArchive(archive, dest);
  await archive.close();
  return { out, summary, dest };
}

describe('pack → read → extract round trips', () => {
  it.each(['zstd', 'lz4', 'none'] as const)('random + text data with %s, byte-identical', async (compression) => {
    const input = path.join(tmp.dir, `mixed-${compression}`);
    await writeTree(input, {
      'random.bin': randomBytesSeeded(3 * MiB + 17, 1),
      'text.txt': textBytes(2 * MiB, 2),
      'nested/deeper/small.txt': 'small\n',
    });
    const { dest, summary, out } = await roundTrip(input, { compression });
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
    const archive = await openArchive(out);
    expect(archive.info().compression.codec).toBe(compression);
    if (compression !== 'none') expect(summary.storedBytes).toBeLessThan(summary.logicalBytes);
    await archive.close();
  });

  it('a single file becomes the entry "disk" and keeps its name in metadata', async () => {
    const file = path.join(tmp.dir, 'image.raw');
    const data = randomBytesSeeded(MiB + 5, 3);
    await fs.writeFile(file, data);
    const out = path.join(tmp.dir, 'image.hxz');
    const s = await pack(file, out);
    expect(s.kind).toBe('file');
    const archive = await openArchive(out);
    expect((await archive.list('')).entries.map((e) => e.path)).toEqual(['disk']);
    expect(archive.info().source).toEqual({ name: 'image.raw', type: 'file' });
    expect(archive.isSingleFile).toBe(true);
    expect(sha256(await archive.read('disk', 0, data.length))).toBe(sha256(data));
    await archive.close();
  });

  it('a 10 GiB sparse file with a few MiB of data packs fast and reads back exactly', async () => {
    const file = path.join(tmp.dir, 'sparse.img');
    const fh = await fs.open(file, 'w');
    const islands = [0, 3 * 1024 * MiB + 12345, 9 * 1024 * MiB + 999, 10 * 1024 * MiB - MiB];
    for (const [i, at] of islands.entries()) await fh.write(randomBytesSeeded(MiB, 10 + i), 0, MiB, at);
    await fh.truncate(10 * 1024 * MiB);
    await fh.close();
    const out = path.join(tmp.dir, 'sparse.hxz');
    const s = await pack(file, out);
    expect(s.logicalBytes).toBe(10 * 1024 * MiB);
    expect(s.holeBytes).toBeGreaterThan(10 * 1024 * MiB - 8 * MiB);
    expect(s.archiveBytes).toBeLessThan(6 * MiB);
    const archive = await openArchive(out);
    expect(archive.root.refCount).toBeLessThan(400); // holes merge into few references
    for (const [i, at] of islands.entries()) {
      expect(sha256(await archive.read('disk', at, MiB))).toBe(sha256(randomBytesSeeded(MiB, 10 + i)));
      if (at + MiB < 10 * 1024 * MiB) expect(Buffer.from(await archive.read('disk', at + MiB, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    }
    const mid = await archive.read('disk', 5 * 1024 * MiB, 2 * MiB);
    expect(Buffer.from(mid).equals(Buffer.alloc(2 * MiB))).toBe(true);
    await archive.close();
  }, 120_000);

  it('skips holes without changing a byte of the archive (sparse and dense copies pack identically)', async () => {
    const data = randomBytesSeeded(3 * MiB, 77);
    const layout: Array<[number, number]> = [
      [5 * MiB + 3, 100],
      [9 * MiB, MiB],
      [40 * MiB - 10, 3 * MiB],
    ];
    const sparseDir = path.join(tmp.dir, 'sp-sparse');
    const denseDir = path.join(tmp.dir, 'sp-dense');
    await fs.mkdir(sparseDir);
    await fs.mkdir(denseDir);
    const size = 48 * MiB;
    const sh = await fs.open(path.join(sparseDir, 'img'), 'w');
    for (const [at, n] of layout) await sh.write(data, 0, n, at);
    await sh.truncate(size);
    await sh.close();
    const dense = Buffer.alloc(size);
    for (const [at, n] of layout) data.copy(dense, at, 0, n);
    await fs.writeFile(path.join(denseDir, 'img'), dense);
    const t = new Date('2026-01-01T00:00:00Z');
    await fs.utimes(path.join(sparseDir, 'img'), t, t);
    await fs.utimes(path.join(denseDir, 'img'), t, t);
    expect((await fs.stat(path.join(sparseDir, 'img'))).blocks * 512).toBeLessThan(size / 2);
    const fixed = { uuid: '11111111-2222-4333-8444-555555555555', created: t };
    await pack(path.join(sparseDir, 'img'), path.join(tmp.dir, 'sp-a.hxz'), fixed);
    await pack(path.join(denseDir, 'img'), path.join(tmp.dir, 'sp-b.hxz'), fixed);
    expect(sha256(await fs.readFile(path.join(tmp.dir, 'sp-a.hxz')))).toBe(sha256(await fs.readFile(path.join(tmp.dir, 'sp-b.hxz'))));
  });

  it('empty files, an empty directory, unicode and deep paths, symlinks', async () => {
    const input = path.join(tmp.dir, 'shapes');
    const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    await writeTree(input, {
      'empty.txt': '',
      'empty-dir': null,
      'ünïcödé/日本語/файл.txt': 'unicode\n',
      'emoji 😀 name.txt': 'emoji\n',
      [`${deep}/leaf.txt`]: 'deep\n',
      'target.txt': 'target\n',
    });
    await fs.symlink('target.txt', path.join(input, 'rel-link'));
    await fs.symlink('/etc/hostname', path.join(input, 'abs-link'));
    await fs.symlink('does/not/exist', path.join(input, 'dangling'));
    await fs.chmod(path.join(input, 'target.txt'), 0o640);
    const { dest, out } = await roundTrip(input);
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
    expect((await fs.stat(path.join(dest, 'target.txt'))).mode & 0o777).toBe(0o640);
    const srcM = (await fs.stat(path.join(input, 'target.txt'))).mtimeMs;
    expect(Math.abs((await fs.stat(path.join(dest, 'target.txt'))).mtimeMs - srcM)).toBeLessThan(1);
    const archive = await openArchive(out);
    expect((await archive.entry('rel-link')).target).toBe('target.txt');
    expect((await archive.entry('empty-dir')).type).toBe('directory');
    expect((await archive.list('empty-dir')).entries).toEqual([]);
    await archive.close();
  });

  it('10,000 small files', async () => {
    const input = path.join(tmp.dir, 'many');
    const files: Record<string, string> = {};
    for (let i = 0; i < 10_000; i++) files[`d${i % 50}/f${i}.txt`] = `file ${i}\n`.repeat((i % 7) + 1);
    await writeTree(input, files);
    const { dest, out, summary } = await roundTrip(input);
    expect(summary.files).toBe(10_000);
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
    const archive = await openArchive(out);
    const page1 = await archive.list('d7', { limit: 100 });
    expect(page1.entries).toHaveLength(100);
    const page2 = await archive.list('d7', { limit: 1000, cursor: page1.cursor });
    expect(page1.entries.length + page2.entries.length).toBe(200);
    expect(new Set([...page1.entries, ...page2.entries].map((e) => e.path)).size).toBe(200);
    await archive.close();
  }, 120_000);

  it('small files in batches (more files than a batch holds, sizes at the batch limits, zeros, duplicates) match the input, whatever the threads', async () => {
    const input = path.join(tmp.dir, 'batches');
    const files: Record<string, string | Uint8Array> = {};
    for (let i = 0; i < 2100; i++) files[`many/${String(i).padStart(4, '0')}.txt`] = `file ${i}\n`.repeat(1 + (i % 7));
    files['edge/just-under-4MiB.bin'] = randomBytesSeeded(4 * MiB - 1, 21);
    files['edge/4MiB.bin'] = randomBytesSeeded(4 * MiB, 22);
    files['edge/zeros.bin'] = Buffer.alloc(3 * MiB);
    files['edge/dup-a.bin'] = randomBytesSeeded(300 * 1024, 23);
    files['edge/dup-b.bin'] = randomBytesSeeded(300 * 1024, 23);
    files['edge/empty'] = '';
    await writeTree(input, files);
    const fixed = { uuid: '11111111-2222-4333-8444-555555555555', created: new Date('2026-02-03T04:05:06Z') };
    const { dest, summary, out } = await roundTrip(input, { ...fixed, threads: 1 });
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
    expect(summary.files).toBe(2106);
    expect(summary.holeBytes).toBe(3 * MiB);
    expect(summary.dupBytes).toBe(300 * 1024);
    const again = path.join(tmp.dir, 'batches-3.hxz');
    await pack(input, again, { ...fixed, threads: 3 });
    expect(sha256(await fs.readFile(again))).toBe(sha256(await fs.readFile(out)));
  });

  it('deduplicates repeated content within an archive', async () => {
    const input = path.join(tmp.dir, 'dups');
    const block = randomBytesSeeded(2 * MiB, 42);
    await writeTree(input, { 'a.bin': block, 'b.bin': block, 'c/a-copy.bin': block });
    const { summary } = await roundTrip(input);
    expect(summary.newBytes).toBeLessThan(2.2 * MiB);
    expect(summary.dupBytes).toBeGreaterThan(3.8 * MiB);
  });

  it('is deterministic: same input and options give byte-identical archives', async () => {
    const input = path.join(tmp.dir, 'determinism');
    await writeTree(input, { 'r.bin': randomBytesSeeded(5 * MiB, 8), 't.txt': textBytes(MiB, 9), 'z/zero': Buffer.alloc(MiB) });
    const fixed = { uuid: '11111111-2222-4333-8444-555555555555', created: new Date('2026-02-03T04:05:06Z') };
    const a = path.join(tmp.dir, 'det-a.hxz');
    const b = path.join(tmp.dir, 'det-b.hxz');
    await pack(input, a, { ...fixed, threads: 1 });
    await pack(input, b, { ...fixed, threads: 4 });
    expect(sha256(await fs.readFile(a))).toBe(sha256(await fs.readFile(b)));
  });

  it('honours .hexzignore and skips special files with a warning', async () => {
    const input = path.join(tmp.dir, 'ignored');
    await writeTree(input, { '.hexzignore': '*.log\nbuild/\n!keep.log\n', 'a.log': 'x', 'keep.log': 'y', 'build/out.o': 'z', 'src/main.c': 'int main;' });
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(input, 'fifo')]);
    const warnings: string[] = [];
    const out = path.join(tmp.dir, 'ignored.hxz');
    await pack(input, out, { onWarning: (m) => warnings.push(m) });
    const archive = await openArchive(out);
    const paths = (await archive.list('', { recursive: true })).entries.map((e) => e.path);
    expect(paths.sort()).toEqual(['.hexzignore', 'keep.log', 'src', 'src/main.c']);
    expect(warnings.join('\n')).toMatch(/fifo: fifos cannot be archived/);
    await archive.close();
  });

  it('leaves nothing behind when aborted, and never replaces an existing output without overwrite', async () => {
    const input = path.join(tmp.dir, 'abort-me');
    await writeTree(input, { 'big.bin': randomBytesSeeded(64 * MiB, 5) });
    const out = path.join(tmp.dir, 'aborted', 'out.hxz');
    const controller = new AbortController();
    const p = pack(input, out, { signal: controller.signal, onProgress: (pr) => pr.bytesRead > 8 * MiB && controller.abort() });
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await fs.readdir(path.dirname(out))).toEqual([]);
    await fs.writeFile(out, 'precious');
    await expect(pack(input, out)).rejects.toMatchObject({ code: 'EXISTS' });
    expect(await fs.readFile(out, 'utf8')).toBe('precious');
  });
});
