// The walk puts entries in file-table order (parent ‖ 0 ‖ name as UTF-8 bytes) without building a
// sort key per entry: it must agree with sortKey on names where UTF-16 and UTF-8 orders differ.
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { walkInput } from '../../src/packer/walk.js';
import { compareUtf8, sortKey } from '../../src/format/file-table.js';

const NAMES = ['a', 'b', 'a b', 'a-b', 'a.b', 'Z', 'z', 'é', '日本', '\u{1F600}', '\uE000', '\uFFFD0'.slice(1), 'ab\u{10000}', 'ab\uFFEE', '_'];

describe('walk order', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'hexz-walk-order-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('compareUtf8 orders as UTF-8 bytes, including astral characters against U+E000-U+FFFF', () => {
    const byBytes = [...NAMES].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...NAMES].sort(compareUtf8)).toEqual(byBytes);
    // The case JavaScript's own order gets wrong.
    expect('\u{1F600}' < '\uE000').toBe(true);
    expect(compareUtf8('\u{1F600}', '\uE000')).toBe(1);
  });

  it('lists a tree in file-table order', async () => {
    for (const n of NAMES) {
      mkdirSync(path.join(root, 'd', n), { recursive: true });
      writeFileSync(path.join(root, 'd', n, 'f'), n);
      writeFileSync(path.join(root, 'd', `${n}.txt`), n);
    }
    mkdirSync(path.join(root, 'd', 'a', 'b', 'c'), { recursive: true });
    writeFileSync(path.join(root, 'd', 'a', 'b', 'c', 'x'), 'x');
    symlinkSync('a', path.join(root, 'd', 'link'));
    const walked = await walkInput(path.join(root, 'd'));
    const paths = walked.entries.map((e) => e.path);
    const expected = [...paths].sort((a, b) => Buffer.compare(sortKey(a), sortKey(b)));
    expect(paths).toEqual(expected);
    expect(paths).toContain('a/b/c/x');
    expect(new Set(paths).size).toBe(paths.length);
    expect(walked.totalBytes).toBe(walked.entries.filter((e) => e.type === 'file').reduce((n, e) => n + e.size, 0));
  });
});
