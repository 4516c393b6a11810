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
console.log(JSON.stringify({ size: archive.info().logicalSize, names: entries.map((e) => e.path), n: bytes.length, typed: isHexzError(err, 'PATH_NOT_FOUND') }));
await archive.close();
`,
      );
      const r = await run(process.execPath, ['use.mjs'], { cwd: dir });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout.toString())).toEqual({ size: 4000, names: ['train/part-0001.csv'], n: 100, typed: true });
    } finally {
      await cleanup();
    }
  });
});
