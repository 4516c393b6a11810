/**
 * Structures that outgrow the encoders' first buffer (ByteWriter growth), packed, verified and read
 * back through the CLI the way a user would meet them.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchive } from '@hexz/src/reader/archive.js';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, treeDigest } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('hexz-large-');
});
afterAll(async () => {
  await tmp.cleanup();
});

function sha256Stream(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 4 << 20 })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

async function packVerifyExtract(input: string, name: string, packArgs: string[] = []) {
  const out = path.join(tmp.dir, `${name}.hxz`);
  const p = await hexz(['pack', ...packArgs, input, out]);
  expect(p.code, p.stderr).toBe(0);
  const v = await hexz(['verify', out]);
  expect(v.code, v.stdout.toString() + v.stderr).toBe(0);
  const dest = path.join(tmp.dir, `${name}-out`);
  const x = await hexz(['extract', out, dest]);
  expect(x.code, x.stderr).toBe(0);
  return { out, dest };
}

describe('structures larger than the encoders’ initial buffers', () => {
  it('a 2 GiB sparse file with 1 MiB of data at --chunk-size 256: chunk-index pages of > 1,024 references', async () => {
    const src = path.join(tmp.dir, 'sparse.img');
    const fh = await fs.open(src, 'w');
    await fh.write(randomBytesSeeded(1 << 20, 7), 0, 1 << 20, 1 << 30);
    await fh.truncate(2 * 1024 ** 3);
    await fh.close();
    const { out, dest } = await packVerifyExtract(src, 'sparse', ['--chunk-size', '256']);
    const a = await openArchive(out, { cache: new BlockCache() });
    try {
      expect(Math.max(...a.root.chunkPages.map((p) => p.count))).toBeGreaterThan(1024);
    } finally {
      await a.close();
    }
    const [x, y] = await Promise.all([sha256Stream(src), sha256Stream(path.join(dest, 'disk'))]);
    expect(y).toBe(x);
  }, 300_000);

  it('a 5,000-character --meta value', async () => {
    const input = path.join(tmp.dir, 'meta-in');
    await fs.mkdir(input);
    await fs.writeFile(path.join(input, 'a.txt'), 'hello\n');
    const value = 'v'.repeat(5000);
    const { out, dest } = await packVerifyExtract(input, 'meta', ['-m', `key=${value}`, '-m', `other=${'w'.repeat(3000)}`]);
    const info = await hexzJson(['info', out]);
    expect(info.json.user.key).toBe(value);
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
  });

  it('200 files with ~2.9 KB paths (a root holding long first paths)', async () => {
    const input = path.join(tmp.dir, 'paths-in');
    // 11 directory levels of 250 bytes, then a 150-byte name: ~2.9 KB per path.
    const dirs = Array.from({ length: 11 }, (_, i) => `${String(i)}${'d'.repeat(249)}`);
    const deep = path.join(input, ...dirs);
    await fs.mkdir(deep, { recursive: true });
    for (let i = 0; i < 200; i++) await fs.writeFile(path.join(deep, `${String(i).padStart(3, '0')}${'f'.repeat(147)}`), `file ${i}\n`);
    const { out, dest } = await packVerifyExtract(input, 'paths');
    const a = await openArchive(out, { cache: new BlockCache() });
    try {
      expect(a.root.filePages.length).toBeGreaterThan(1);
      // The root's first paths alone outgrow the root encoder's initial buffer (4 KiB + 128 B a page).
      const firstPathBytes = a.root.filePages.reduce((n, p) => n + Buffer.byteLength(p.firstPath), 0);
      expect(firstPathBytes).toBeGreaterThan(4096 + 128 * a.root.filePages.length);
    } finally {
      await a.close();
    }
    expect(await treeDigest(dest)).toEqual(await treeDigest(input));
  });
});
