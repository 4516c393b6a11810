/**
 * Every front end reads through the reader's one content plan and one path resolver, so they agree:
 * - a file entry that claims more bytes than its chunk references cover is refused (typed CORRUPT /
 *   exit 4 / HTTP 500 / EIO) by `hexz cat`, the gateway and a FUSE read, and none of them hands out a
 *   byte it did not read (FUSE used to answer the full length, leaving the kernel buffer's tail as it
 *   was);
 * - a directory symlink (`d -> docs`) resolves the same through `hexz cat`, the gateway and a mount
 *   (the gateway used to follow only the last component and answer 404).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { hexz, run } from '../helpers/cli.js';
import { craftArchive, type Decoded } from '../helpers/craft.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, FUSE_REQUIRED, forceUnmount, startMount } from '../fuse/mount-helper.js';

let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let store: string;
let gw: Gateway;
const README = textBytes(300_000, 5);
/** Several chunks of incompressible data, after docs/readme.md in logical order (table order). */
const TAIL = randomBytesSeeded(500_000, 6);
/** The entry that claims more than its references, and its real bytes. */
const LONG = 'docs/readme.md';
const LONG_BYTES = README;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-agree-');
  store = path.join(tmp.dir, 'store');
  await fs.mkdir(store);
  const src = path.join(tmp.dir, 'src');
  await writeTree(src, { 'docs/readme.md': README, 'zz/tail.bin': TAIL });
  await fs.symlink('docs', path.join(src, 'd'));
  await pack(src, path.join(store, 'good.hxz'), { compression: 'none' });
  // docs/readme.md claims 5000 bytes more than its references: they are zz/tail.bin's. Written as a
  // v1 archive with one entry per file-table page, so no page check sees the neighbours (a v2 root
  // says where each page's files begin and end, and v2 readers refuse the entry at its page already:
  // test/reader/hostile-index.test.ts); the content plan must catch it, the same in every front end.
  const good = await fs.readFile(path.join(store, 'good.hxz'));
  const lie = (d: Decoded) => {
    d.entries.find((x) => x.path === LONG)!.size += 5000;
  };
  await fs.writeFile(path.join(store, 'longer.hxz'), craftArchive(good, lie, { version: 1, entriesPerPage: 1 }));
  gw = await startGateway({ storage: store, port: 0, logLevel: 'silent' }, { processMetrics: false });
});

afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

describe('an entry longer than its references', () => {
  it('the library: a read of its tail, and of the whole file, is CORRUPT; a read inside its references is exact', async () => {
    const a = await openArchive(path.join(store, 'longer.hxz'));
    try {
      const e = await a.entry(LONG);
      await expect(a.read(e, e.size - 100, 100)).rejects.toMatchObject({ code: 'CORRUPT' });
      await expect(a.read(e, 0, e.size)).rejects.toMatchObject({ code: 'CORRUPT' });
      const dst = Buffer.alloc(200, 0xee);
      await expect(a.readInto(e, e.size - 200, 200, dst)).rejects.toMatchObject({ code: 'CORRUPT' });
      expect(dst.every((b) => b === 0xee)).toBe(true); // nothing was written
      expect(Buffer.from(await a.read(e, 1000, 4000)).equals(LONG_BYTES.subarray(1000, 5000))).toBe(true);
    } finally {
      await a.close();
    }
  });

  it('hexz cat: exit 4 (CORRUPT) and nothing on stdout', async () => {
    const r = await hexz(['cat', path.join(store, 'longer.hxz'), LONG]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/corrupt chunk index/);
    expect(r.stdout.byteLength).toBe(0);
  });

  it('the gateway: 500 CORRUPT before any byte, for the whole file and for its tail', async () => {
    const base = `${gw.url}/v1/archives/longer/files/${LONG}`;
    for (const headers of [{}, { range: 'bytes=-100' }] as Array<Record<string, string>>) {
      const res = await fetch(base, { headers });
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CORRUPT');
    }
    const inside = await fetch(base, { headers: { range: 'bytes=1000-4999' } });
    expect(inside.status).toBe(206);
    expect(Buffer.from(await inside.arrayBuffer()).equals(LONG_BYTES.subarray(1000, 5000))).toBe(true);
  });

  it.skipIf(!FUSE_DEVICE_PRESENT && !FUSE_REQUIRED)('a FUSE read: EIO for the tail, exact bytes inside the references', async () => {
    const mp = path.join(tmp.dir, 'mnt-longer');
    await fs.mkdir(mp);
    const m = await startMount(path.join(store, 'longer.hxz'), mp);
    try {
      const tail = await run('dd', [`if=${path.join(mp, LONG)}`, 'bs=4096', `skip=${Math.floor((LONG_BYTES.length + 5000) / 4096) - 1}`, 'status=none']);
      expect(tail.code).not.toBe(0);
      expect(tail.stderr).toMatch(/Input\/output error/);
      const head = await run('dd', [`if=${path.join(mp, LONG)}`, 'bs=4096', 'count=10', 'status=none']);
      expect(head.code, head.stderr).toBe(0);
      expect(head.stdout.equals(LONG_BYTES.subarray(0, 40960))).toBe(true);
    } finally {
      await m.stop();
      await forceUnmount(mp);
    }
  });
});

describe('a directory symlink (d -> docs)', () => {
  it('hexz cat follows it', async () => {
    const r = await hexz(['cat', path.join(store, 'good.hxz'), 'd/readme.md']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(README)).toBe(true);
  });

  it('the gateway follows it', async () => {
    const res = await fetch(`${gw.url}/v1/archives/good/files/d/readme.md`, { headers: { range: 'bytes=0-99' } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(README.subarray(0, 100))).toBe(true);
    // The ETag is the target's: the same bytes, the same validator.
    const direct = await fetch(`${gw.url}/v1/archives/good/files/docs/readme.md`, { method: 'HEAD' });
    expect(res.headers.get('etag')).toBe(direct.headers.get('etag'));
  });

  it.skipIf(!FUSE_DEVICE_PRESENT && !FUSE_REQUIRED)('a mount follows it (the kernel resolves it through readlink)', async () => {
    const mp = path.join(tmp.dir, 'mnt-good');
    await fs.mkdir(mp);
    const m = await startMount(path.join(store, 'good.hxz'), mp);
    try {
      const r = await run('cat', [path.join(mp, 'd/readme.md')]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.equals(README)).toBe(true);
    } finally {
      await m.stop();
      await forceUnmount(mp);
    }
  });

  it('a loop is SYMLINK_LOOP and an escape PATH_NOT_FOUND, the same through the library, the CLI and the gateway', async () => {
    const src = path.join(tmp.dir, 'loops');
    await writeTree(src, { 'f.txt': 'x' });
    await fs.symlink('b', path.join(src, 'a'));
    await fs.symlink('a', path.join(src, 'b'));
    await fs.symlink('../outside', path.join(src, 'up'));
    await pack(src, path.join(store, 'loops.hxz'));
    const a = await openArchive(path.join(store, 'loops.hxz'));
    try {
      await expect(a.resolve('a')).rejects.toMatchObject({ code: 'SYMLINK_LOOP' });
      await expect(a.resolve('up')).rejects.toMatchObject({ code: 'PATH_NOT_FOUND' });
    } finally {
      await a.close();
    }
    expect((await hexz(['cat', path.join(store, 'loops.hxz'), 'a'])).code).toBe(7);
    const loop = await fetch(`${gw.url}/v1/archives/loops/files/a`);
    expect(loop.status).toBe(404);
    expect(((await loop.json()) as { error: { code: string } }).error.code).toBe('SYMLINK_LOOP');
    const up = await fetch(`${gw.url}/v1/archives/loops/files/up`);
    expect(up.status).toBe(404);
    expect(((await up.json()) as { error: { code: string } }).error.code).toBe('PATH_NOT_FOUND');
  });
});
