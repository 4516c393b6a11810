/**
 * Listing archives in a local storage root: `GET /v1/archives` pages over many archives in nested
 * prefixes return exactly what one big page returns, in key order, including names whose order
 * differs from a directory walk's (`a-b` before `a/x`); and the file root lists a page by walking the
 * tree in key order and stopping past the page, instead of walking and stat-ing the whole tree
 * (storage/file.ts). The result is compared with a reference that walks everything.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { openFileRoot } from '@hexz/storage/file.js';
import type { StorageObject } from '@hexz/storage/types.js';
import { makeTempDir } from '../helpers/tmp.js';
import { getJson, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let gw: Gateway;
let allKeys: string[];

/** Keys of the root (archives and other objects); each archive is a hard link to one small archive. */
function layout(): string[] {
  const keys = [
    'a.hxz',
    'a-b.hxz',
    'a/x.hxz',
    'a/b/c.hxz',
    'a/b-c.hxz',
    'a0.hxz',
    'Z.hxz',
    'café.hxz',
    'notes.txt',
    'a/readme',
    'team/ds/v1.hxz',
    'team/ds/v2.hxz',
    'team/ds-old/v1.hxz',
    'team.hxz',
  ];
  for (let i = 0; i < 60; i++) keys.push(`bulk/${i % 7}/${String(i).padStart(3, '0')}.hxz`);
  for (let i = 0; i < 12; i++) keys.push(`deep/x/y/z/${i}.hxz`);
  return keys;
}

/** The reference: every file of the tree, sorted (what the old implementation computed for every page). */
async function everything(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    if (d.name.startsWith('.')) continue;
    const key = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await everything(dir, key)));
    else if (d.isFile()) out.push(key);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function referencePage(keys: string[], opts: { prefix?: string; cursor?: string; limit: number }): { keys: string[]; cursor?: string } {
  const matching = keys.filter((k) => k.startsWith(opts.prefix ?? '') && (opts.cursor === undefined || k > opts.cursor));
  const page = matching.slice(0, opts.limit);
  return { keys: page, cursor: matching.length > opts.limit ? page[page.length - 1] : undefined };
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-listing-');
  root = path.join(tmp.dir, 'archives');
  const src = path.join(tmp.dir, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'hello.txt'), 'hello\n');
  const one = await packArchive(src, tmp.dir, 'one');
  for (const key of layout()) {
    const p = path.join(root, key);
    await fs.mkdir(path.dirname(p), { recursive: true });
    if (key.endsWith('.hxz')) await fs.link(one, p);
    else await fs.writeFile(p, 'not an archive');
  }
  await fs.writeFile(path.join(root, 'a', '.staging.hxz.tmp'), 'a writer in progress');
  await fs.mkdir(path.join(root, '.hidden'));
  await fs.link(one, path.join(root, '.hidden', 'h.hxz'));
  allKeys = await everything(root);
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});
afterEach(() => vi.restoreAllMocks());

describe('GET /v1/archives over many archives in nested prefixes', () => {
  it('pages of any size add up to the one big page, in key order', async () => {
    const expected = layout()
      .filter((k) => k.endsWith('.hxz'))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((k) => k.slice(0, -4));
    const whole = await getJson(`${gw.url}/v1/archives?limit=1000`);
    expect(whole.status).toBe(200);
    expect(whole.json.archives.map((a: { name: string }) => a.name)).toEqual(expected);
    expect(whole.json.cursor).toBeUndefined();
    expect(expected.indexOf('a-b')).toBeLessThan(expected.indexOf('a/b-c'));
    expect(expected.indexOf('a/b-c')).toBeLessThan(expected.indexOf('a/b/c'));

    for (const limit of [1, 2, 7, 13, 50]) {
      const names: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await getJson(`${gw.url}/v1/archives?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.json.archives.length).toBeLessThanOrEqual(limit);
        names.push(...page.json.archives.map((a: { name: string }) => a.name));
        cursor = page.json.cursor;
        expect(++pages).toBeLessThan(200);
      } while (cursor);
      expect(names, `limit ${limit}`).toEqual(expected);
    }
  });
});

describe('FileRoot.list', () => {
  it('returns exactly what walking and sorting the whole tree returns, for every page, prefix and cursor', async () => {
    const fileRoot = await openFileRoot(pathToFileURL(root).href);
    const cursors = [undefined, '', 'a', 'a/', 'a-b.hxz', 'a/b', 'a/b/c.hxz', 'bulk/3', 'bulk/3/', 'bulk/3/010.hxz', 'café', 'team/ds', 'zzz', allKeys[allKeys.length - 1]];
    for (const prefix of [undefined, '', 'a', 'a/', 'bulk/', 'team/ds', 'deep/x/y/z/1', 'nope/']) {
      for (const cursor of cursors) {
        for (const limit of [1, 3, 10, 1000]) {
          const got = await fileRoot.list({ prefix, cursor, limit });
          const want = referencePage(allKeys, { prefix, cursor: cursor || undefined, limit });
          const label = JSON.stringify({ prefix, cursor, limit });
          expect(got.objects.map((o: StorageObject) => o.key), label).toEqual(want.keys);
          expect(got.cursor, label).toBe(want.cursor);
        }
      }
    }
    const [first] = (await fileRoot.list({ limit: 1 })).objects;
    const st = await fs.stat(path.join(root, first.key));
    expect(first).toMatchObject({ key: 'Z.hxz', size: st.size, lastModified: st.mtime });
  });

  it('a page reads the directories on its way and stats only the objects it returns (plus one)', async () => {
    const fileRoot = await openFileRoot(pathToFileURL(root).href);
    const readdir = vi.spyOn(fs, 'readdir');
    const stat = vi.spyOn(fs, 'stat');
    const page = await fileRoot.list({ limit: 3 });
    expect(page.objects.map((o) => o.key)).toEqual(allKeys.slice(0, 3));
    expect(stat.mock.calls.length).toBeLessThanOrEqual(4);
    // The first keys are Z.hxz, a-b.hxz, a.hxz: the walk never opens bulk/, deep/ or team/.
    const dirs = readdir.mock.calls.map((c) => path.relative(root, String(c[0])));
    expect(dirs.some((d) => d.startsWith('bulk') || d.startsWith('deep') || d.startsWith('team'))).toBe(false);
    readdir.mockClear();
    stat.mockClear();
    // From a cursor deep in bulk/: earlier subtrees are skipped unread.
    const later = await fileRoot.list({ cursor: 'bulk/5/040.hxz', limit: 2 });
    expect(later.objects.map((o) => o.key)).toEqual(referencePage(allKeys, { cursor: 'bulk/5/040.hxz', limit: 2 }).keys);
    const visited = readdir.mock.calls.map((c) => path.relative(root, String(c[0])));
    expect(visited.filter((d) => /^bulk\/[0-4]$/.test(d) || d.startsWith('a'))).toEqual([]);
    expect(stat.mock.calls.length).toBeLessThanOrEqual(3);
  });
});
