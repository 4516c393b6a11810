import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('the package entry point', () => {
  it('works as the README shows, imported by name from another project', async () => {
    const { dir, cleanup } = await makeTempDir('hexz-lib-');
    try {
      // A consumer project that depends on hexz by name, the way npm would link it.
      await fs.mkdir(path.join(dir, 'node_modules'), { recursive: true });
      await fs.symlink(path.resolve('.'), path.join(dir, 'node_modules', 'hexz'));
      await fs.mkdir(path.join(dir, 'dataset/train'), { recursive: true });
      await fs.writeFile(path.join(dir, 'dataset/train/part-0001.csv'), 'a,b\n'.repeat(1000));
      await fs.writeFile(
        path.join(dir, 'use.mjs'),
        `import { openArchive, pack, isHexzError } from 'hexz';
await pack('./dataset', 'dataset.hxz', { compression: 'zstd' });
const archive = await openArchive('dataset.hxz');
const { entries } = await archive.list('train', { limit: 100 });
const bytes = await archive.read('train/part-0001.csv', 1000, 100);
const err = await archive.read('nope', 0, 1).catch((e) => e);
const all = [];
for await (const e of archive.entries()) all.push(e.type + ' ' + e.path);
const st = await archive.stat('train/part-0001.csv');
const top = await archive.stat('');
const link = await archive.stat('latest.csv');
const followed = await archive.stat('latest.csv', { followSymlinks: true });
const missing = await archive.stat('nope').catch((e) => e);
const counts = await archive.entryCounts();
console.log(JSON.stringify({
  size: archive.info().logicalSize, names: entries.map((e) => e.path), n: bytes.length, typed: isHexzError(err, 'PATH_NOT_FOUND'),
  all, stat: [st.type, st.size, typeof st.mtimeNs], top: top.type, link: [link.type, link.target], followed: followed.path,
  missing: isHexzError(missing, 'PATH_NOT_FOUND'), counts, storageSize: archive.storageStat.size === (await import('node:fs')).statSync('dataset.hxz').size,
}));
await archive.close();
`,
      );
      await fs.symlink('train/part-0001.csv', path.join(dir, 'dataset/latest.csv'));
      const r = await run(process.execPath, ['use.mjs'], { cwd: dir });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout.toString())).toEqual({
        size: 4000,
        names: ['train/part-0001.csv'],
        n: 100,
        typed: true,
        all: ['symlink latest.csv', 'directory train', 'file train/part-0001.csv'],
        stat: ['file', 4000, 'bigint'],
        top: 'directory',
        link: ['symlink', 'train/part-0001.csv'],
        followed: 'train/part-0001.csv',
        missing: true,
        counts: { entries: 3, files: 1, directories: 1, symlinks: 1 },
        storageSize: true,
      });
    } finally {
      await cleanup();
    }
  });
});
