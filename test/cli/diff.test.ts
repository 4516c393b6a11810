/**
 * `hexz diff` between archives whose chunk ids are not comparable (different chunking parameters, or
 * ids keyed differently): identical files must not be reported as modified; files are compared by
 * content and shared bytes are reported as unknown.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { diffArchives } from '@hexz/src/diff.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let input: string;
const key = { kind: 'key' as const, key: Uint8Array.from(randomBytesSeeded(32, 41)) };
const otherKey = { kind: 'key' as const, key: Uint8Array.from(randomBytesSeeded(32, 42)) };
const at = (name: string) => path.join(tmp.dir, name);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-diff-');
  input = at('v1');
  await writeTree(input, {
    'random.bin': randomBytesSeeded(700_000, 1),
    'docs/readme.md': textBytes(200_000, 2),
    'docs/small.txt': 'small\n',
    'empty.txt': '',
    'sparse/zeros.bin': Buffer.alloc(3 << 20),
    'nested/': null,
  });
  await fs.symlink('docs/readme.md', path.join(input, 'link'));
  expect((await hexz(['pack', input, at('default.hxz')])).code).toBe(0);
  expect((await hexz(['pack', '--chunk-size', '16K', input, at('16k.hxz')])).code).toBe(0);
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('diff across chunking parameters', () => {
  it('the same data packed with --chunk-size 16K and the default: nothing modified', async () => {
    const r = await hexzJson(['diff', at('default.hxz'), at('16k.hxz')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ added: [], removed: [], modified: [], renamed: [], comparison: { method: 'content', reason: expect.stringMatching(/different chunking parameters/) } });
    expect(r.json.unchanged).toBe(9);
    const text = (await hexz(['diff', at('default.hxz'), at('16k.hxz')])).stdout.toString();
    expect(text).toMatch(/0 added, 0 removed, 0 modified, 0 renamed, 9 unchanged/);
    expect(text).toMatch(/note: chunk ids are not comparable \(A and B use different chunking parameters/);
  });

  it('real changes are still found: modified (shared bytes unknown), added, removed, renamed', async () => {
    const v2 = at('v2');
    await fs.cp(input, v2, { recursive: true, verbatimSymlinks: true });
    const rnd = await fs.readFile(path.join(v2, 'random.bin'));
    rnd[123_456] ^= 0xff; // same size, one byte differs
    await fs.writeFile(path.join(v2, 'random.bin'), rnd);
    await fs.appendFile(path.join(v2, 'docs/small.txt'), 'more\n'); // other size
    await fs.rename(path.join(v2, 'docs/readme.md'), path.join(v2, 'docs/README.md')); // renamed
    await fs.writeFile(path.join(v2, 'new.txt'), 'new\n');
    expect((await hexz(['pack', '--chunk-size', '16K', v2, at('v2-16k.hxz')])).code).toBe(0);

    const r = await hexzJson(['diff', at('default.hxz'), at('v2-16k.hxz')]);
    expect(r.code, r.stderr).toBe(0);
    const modified = Object.fromEntries(r.json.modified.map((m: { path: string; sharedBytes: number | null }) => [m.path, m.sharedBytes]));
    expect(modified).toEqual({ 'random.bin': null, 'docs/small.txt': null });
    expect(r.json.renamed).toEqual([{ from: 'docs/readme.md', to: 'docs/README.md', size: 200_000 }]);
    expect(r.json.added.map((e: { path: string }) => e.path)).toEqual(['new.txt']);
    expect(r.json.removed).toEqual([]);
    const text = (await hexz(['diff', at('default.hxz'), at('v2-16k.hxz')])).stdout.toString();
    expect(text).toMatch(/^M random\.bin \(684 KiB → 684 KiB, shared bytes unknown\)$/m);
  });

  it('with the same parameters, ids are compared and shared bytes are known', async () => {
    expect((await hexz(['pack', input, at('default-again.hxz')])).code).toBe(0);
    const r = await hexzJson(['diff', at('default.hxz'), at('default-again.hxz')]);
    expect(r.json).toMatchObject({ modified: [], unchanged: 9, comparison: { method: 'chunk-ids' }, chunks: { comparable: true, onlyABytes: 0, onlyBBytes: 0 } });
    expect(r.json.chunks.sharedBytes).toBeGreaterThan(0);
  });
});

describe('diff across chunk id keys', () => {
  it('plain vs encrypted, and two different keys: identical files are unchanged, chunk totals not comparable', async () => {
    await pack(input, at('enc.hxz'), { key, threads: 2 });
    await pack(input, at('enc-other.hxz'), { key: otherKey, threads: 2 });
    await pack(input, at('enc-same.hxz'), { key, threads: 2 });
    const open = (name: string, k?: typeof key) => openArchive(at(name), { key: k, cache: new BlockCache() });
    for (const [left, right, reason] of [
      [() => open('default.hxz'), () => open('enc.hxz', key), /B is encrypted and A is not/],
      [() => open('enc.hxz', key), () => open('enc-other.hxz', otherKey), /encrypted under different keys/],
    ] as const) {
      const a = await left();
      const b = await right();
      try {
        const d = await diffArchives(a, b);
        expect(d).toMatchObject({ modified: [], added: [], removed: [], renamed: [], unchanged: 9, comparison: { method: 'content', reason: expect.stringMatching(reason) } });
        expect(d.chunks).toMatchObject({ comparable: false, sharedBytes: null, sharedChunks: null });
      } finally {
        await a.close();
        await b.close();
      }
    }
    // Same key: the ids are comparable again.
    const a = await open('enc.hxz', key);
    const b = await open('enc-same.hxz', key);
    try {
      const d = await diffArchives(a, b);
      expect(d).toMatchObject({ modified: [], unchanged: 9, comparison: { method: 'chunk-ids' }, chunks: { comparable: true, onlyABytes: 0 } });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
