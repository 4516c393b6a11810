/** Paginated listings: cursors continue exactly where the previous page ended; anything else is refused. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let archive: Archive;
beforeAll(async () => {
  tmp = await makeTempDir('hexz-list-');
  const files: Record<string, string> = {};
  for (let i = 0; i < 25; i++) files[`d/f${String(i).padStart(2, '0')}.txt`] = String(i);
  files['d/ü/x.txt'] = 'x';
  await writeTree(path.join(tmp.dir, 'in'), files);
  await pack(path.join(tmp.dir, 'in'), path.join(tmp.dir, 'a.hxz'), { threads: 1 });
  archive = await openArchive(path.join(tmp.dir, 'a.hxz'), { cache: new BlockCache() });
});
afterAll(async () => {
  await archive.close();
  await tmp.cleanup();
});

describe('listing cursors', () => {
  it('page through a directory without gaps or repeats', async () => {
    const all = (await archive.list('d', { recursive: true })).entries.map((e) => e.path);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await archive.list('d', { recursive: true, limit: 4, cursor });
      seen.push(...page.entries.map((e) => e.path));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(all);
    expect(all).toHaveLength(27);
  });

  it('refuse anything that is not the canonical encoding of a normalized path', async () => {
    const good = (await archive.list('d', { limit: 3 })).cursor!;
    expect(Buffer.from(good, 'base64url').toString()).toBe('d/f02.txt');
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    const garbage = [
      '!!!',
      `${good}!`, // junk the lenient decoder would skip
      `${good}==`.replace(/=+$/, '=='), // padding
      Buffer.from('d/f02.tx').toString('base64'), // standard encoding, with padding
      `${good.slice(0, 2)} ${good.slice(2)}`, // embedded space
      b64('/d/f02.txt'), // not normalized (leading slash)
      b64('d//f02.txt'),
      b64('d/../etc'),
      b64('d/\0'),
      b64('/'),
      Buffer.from([0xff, 0xfe, 0x41]).toString('base64url'), // not UTF-8
    ];
    for (const cursor of garbage) {
      await expect(archive.list('d', { cursor }), JSON.stringify(cursor)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'invalid listing cursor' });
    }
    // A canonical cursor for a path that is not in the table is fine: listing continues after it.
    expect((await archive.list('d', { cursor: b64('d/f10.txtz'), limit: 1 })).entries[0].path).toBe('d/f11.txt');
  });
});
