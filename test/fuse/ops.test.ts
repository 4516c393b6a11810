/**
 * The operations table and its pure helpers, without a mount: the callbacks are called directly
 * with a real archive, the way fuse-native calls them. Runs on machines without FUSE too.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import type { FileEntry } from '@hexz/src/format/file-table.js';
import { archiveStatfs, createFuseOperations, entryStat, errnoOf, type FuseStat } from '@hexz/fuse/ops.js';
import { ReorderedReadahead, REORDER_SLACK } from '@hexz/cache/readahead.js';
import { canonicalMountpoint, isFuseType, mountStack, parseMountInfo, parseMountTable } from '@hexz/fuse/unmount.js';
import { fuseMountOptions } from '@hexz/fuse/mount.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

/** The errno constants fuse-native exports (Linux values, negative). */
const ERRNO: Record<string, number> = { ENOENT: -2, EIO: -5, EBADF: -9, EACCES: -13, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, EROFS: -30, EAGAIN: -11, ENOSYS: -38 };
const errno = (name: string) => ERRNO[name];

const file = (over: Partial<FileEntry> = {}): FileEntry => ({ path: 'a/b', type: 'file', mode: 0o640, mtimeNs: 1_500_000_000_123_456_789n, size: 1000, logical: 0, firstRef: 0, refCount: 1, ...over });

describe('FUSE conversions', () => {
  it('entryStat: type bits, stored permissions, owner, links, ms times, 512-byte blocks', () => {
    expect(entryStat(file(), 7, 8)).toEqual({ mode: 0o100640, uid: 7, gid: 8, size: 1000, nlink: 1, blksize: 131072, blocks: 2, mtime: 1_500_000_000_123, atime: 1_500_000_000_123, ctime: 1_500_000_000_123 });
    expect(entryStat(file({ type: 'directory', mode: 0o755, size: 0 }), 0, 0)).toMatchObject({ mode: 0o040755, nlink: 2 });
    expect(entryStat(file({ type: 'symlink', mode: 0o777, size: 3, target: 'abc' }), 0, 0)).toMatchObject({ mode: 0o120777, size: 3 });
    expect(entryStat(file({ mtimeNs: -5n }), 0, 0).mtime).toBe(0);
  });

  it('archiveStatfs: logical size in blocks, nothing free, block size grows past 32-bit counts', () => {
    expect(archiveStatfs(10_000, 3)).toMatchObject({ bsize: 4096, frsize: 4096, blocks: 3, bfree: 0, bavail: 0, files: 4, ffree: 0, flag: 1, namemax: 255 });
    const huge = archiveStatfs(40 * 2 ** 40, 10);
    expect(huge.blocks).toBeLessThanOrEqual(0xffff_ffff);
    expect(huge.blocks * huge.bsize).toBeGreaterThanOrEqual(40 * 2 ** 40);
  });

  it('errnoOf maps through ERROR_TABLE: every code to its errno, unknown errors to EIO', () => {
    expect(errnoOf(new HexzError('PATH_NOT_FOUND'), errno)).toBe(-2);
    expect(errnoOf(new HexzError('NOT_A_DIRECTORY'), errno)).toBe(-20);
    expect(errnoOf(new HexzError('WRONG_KEY'), errno)).toBe(-13);
    expect(errnoOf(new HexzError('ARCHIVE_CHANGED'), errno)).toBe(-11);
    expect(errnoOf(new HexzError('CORRUPT'), errno)).toBe(-5);
    expect(errnoOf(new Error('boom'), errno)).toBe(-5);
    expect(errnoOf(new HexzError('TIMEOUT'), errno)).toBe(-5); // ETIMEDOUT not in this table → EIO
  });

  it('ReorderedReadahead treats reordered kernel requests as sequential and real jumps as random', () => {
    const K = 128 * 1024;
    const ra = new ReorderedReadahead();
    const windows: number[] = [];
    // Requests of a sequential reader, slightly out of order, as several FUSE threads deliver them.
    for (const i of [0, 1, 3, 2, 4, 6, 5, 7, 8, 10, 9, 11]) {
      ra.observe(i * K, K);
      windows.push(ra.size);
    }
    expect(windows[windows.length - 1]).toBeGreaterThan(windows[2]);
    expect(Math.min(...windows.slice(1))).toBeGreaterThan(0);
    ra.observe(500 * 1024 * 1024, 4096); // a jump far beyond the slack
    expect(ra.size).toBe(0);
    expect(REORDER_SLACK).toBeGreaterThanOrEqual(1024 * 1024);
  });

  it('ReorderedReadahead prefetches in steps of at least PREFETCH_STEP and covers everything it skipped', () => {
    const K = 128 * 1024;
    const ra = new ReorderedReadahead();
    const ranges: Array<{ start: number; end: number }> = [];
    for (let i = 0; i < 400; i++) {
      const r = ra.observe(i * K, K);
      if (r) ranges.push(r);
    }
    for (const r of ranges) expect(r.end - r.start).toBeGreaterThanOrEqual(1024 * 1024);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i].start).toBe(ranges[i - 1].end);
    expect(ranges[ranges.length - 1].end).toBeGreaterThan(400 * K);
  });

  it('parses /proc/self/mounts with escapes and recognises FUSE types', () => {
    const table = parseMountTable('proc /proc proc rw,nosuid 0 0\nhexz:a.hxz /tmp/with\\040space fuse.hexz ro,nosuid,user_id=0 0 0\n');
    expect(table[1]).toEqual({ source: 'hexz:a.hxz', mountpoint: '/tmp/with space', fstype: 'fuse.hexz', options: ['ro', 'nosuid', 'user_id=0'] });
    expect(['fuse', 'fuse.hexz', 'fuseblk', 'fuse3.x'].map(isFuseType)).toEqual([true, true, true, true]);
    expect(['proc', 'ext4', 'fusectl'].map(isFuseType)).toEqual([false, false, false]);
  });

  it('parses /proc/self/mountinfo and orders the mounts stacked at a path bottom first', () => {
    const info = parseMountInfo(
      [
        '22 1 0:21 / /proc rw,relatime - proc proc rw',
        // a bind mount (Kubernetes' emptyDir) at /data, a FUSE mount on top of it, another path
        '40 1 254:1 /volumes/data /data rw,relatime shared:5 - ext4 /dev/vda rw',
        '41 40 0:60 / /data ro,nosuid,nodev,relatime shared:6 - fuse.hexz hexz:s3://b/a.hxz ro,user_id=0,group_id=0',
        '42 1 0:61 / /tmp/with\\040space ro - fuse.hexz hexz:x.hxz ro',
      ].join('\n'),
    );
    expect(info[1]).toEqual({ id: 40, parentId: 1, device: '254:1', mountpoint: '/data', fstype: 'ext4', source: '/dev/vda', options: ['rw', 'relatime'] });
    expect(info[3].mountpoint).toBe('/tmp/with space');
    expect(mountStack(info, '/data').map((m) => m.id)).toEqual([40, 41]);
    // Table order does not matter, the parent links do.
    expect(mountStack([info[2], info[1]], '/data').map((m) => m.id)).toEqual([40, 41]);
    expect(mountStack(info, '/nothing')).toEqual([]);
  });

  it('canonicalMountpoint resolves the parent only', async () => {
    expect(await canonicalMountpoint('/tmp/../tmp/x')).toBe(path.join(await fs.realpath('/tmp'), 'x'));
  });

  it('mount options: read-only, kernel caching, auto-unmount, allow_other on request, a safe fsname', () => {
    const opts = fuseMountOptions({ label: 's3://bucket/a b,c.hxz', allowOther: false });
    expect(opts).toEqual(expect.arrayContaining(['ro', 'default_permissions', 'auto_unmount', 'kernel_cache', 'subtype=hexz', 'fsname=hexz:s3://bucket/a_b_c.hxz']));
    // Mounting over a non-empty directory: libfuse2 needs `nonempty`, libfuse3 allows it always and
    // refuses the option.
    expect(opts).not.toContain('nonempty');
    expect(fuseMountOptions({ label: 'x', version: 2 })).toContain('nonempty');
    expect(opts.some((o) => o.startsWith('attr_timeout=') && Number(o.split('=')[1]) >= 60)).toBe(true);
    expect(opts).not.toContain('allow_other');
    expect(fuseMountOptions({ label: 'x', allowOther: true })).toContain('allow_other');
    expect(fuseMountOptions({ label: 'y'.repeat(5000) }).join(',').length).toBeLessThan(1000);
    // A mount that may switch to a replaced archive's new version revalidates pages at every open and
    // keeps metadata for a minute, not an hour.
    const reopening = fuseMountOptions({ label: 's3://b/a.hxz', reopens: true });
    expect(reopening).toEqual(expect.arrayContaining(['auto_cache', 'ac_attr_timeout=0', 'entry_timeout=60', 'attr_timeout=60', 'negative_timeout=60']));
    expect(reopening).not.toContain('kernel_cache');
    expect(opts).toEqual(expect.arrayContaining(['entry_timeout=3600', 'attr_timeout=3600']));
  });
});

describe('FUSE operations table on a real archive (no mount)', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let archive: Archive;
  let ops: ReturnType<typeof createFuseOperations>;
  const errors: string[] = [];
  const content = randomBytesSeeded(700_000, 5);

  const call = <T extends unknown[]>(fn: (cb: (...a: T) => void) => void) => new Promise<T>((resolve) => fn((...a) => resolve(a)));

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-ops-');
    const src = path.join(tmp.dir, 'src');
    await writeTree(src, { 'dir/data.bin': content, 'dir/small.txt': 'hi\n', top: 'x' });
    await fs.symlink('dir/small.txt', path.join(src, 'ln'));
    await pack(src, path.join(tmp.dir, 'a.hxz'), { threads: 1 });
    archive = await openArchive(path.join(tmp.dir, 'a.hxz'));
    ops = createFuseOperations(archive, { errno, uid: 1000, gid: 1001, onError: (op, p, e) => errors.push(`${op} ${p} ${e.code}`) });
  });
  afterAll(async () => {
    await archive?.close();
    await tmp?.cleanup();
  });

  it('getattr and readdir', async () => {
    const [e0, root] = await call<[number, FuseStat?]>((cb) => ops.getattr('/', cb));
    expect(e0).toBe(0);
    expect(root!.mode & 0o170000).toBe(0o040000);
    const [e1, st] = await call<[number, FuseStat?]>((cb) => ops.getattr('/dir/data.bin', cb));
    expect([e1, st!.size, st!.uid, st!.gid]).toEqual([0, content.length, 1000, 1001]);
    expect((await call<[number]>((cb) => ops.getattr('/nope', cb)))[0]).toBe(-2);
    const [e2, names, stats] = await call<[number, string[]?, FuseStat[]?]>((cb) => ops.readdir('/dir', cb));
    expect(e2).toBe(0);
    expect(names).toEqual(['.', '..', 'data.bin', 'small.txt']);
    expect(stats!.length).toBe(4);
    expect((await call<[number]>((cb) => ops.readdir('/top', cb)))[0]).toBe(-20);
    expect((await call<[number]>((cb) => ops.readdir('/nope', cb)))[0]).toBe(-2);
  });

  it('open, read (within, across chunks, past the end), release', async () => {
    const [e, fd] = await call<[number, number?]>((cb) => ops.open('/dir/data.bin', 0, cb));
    expect(e).toBe(0);
    const buf = Buffer.alloc(131072);
    for (const pos of [0, 65_000, 300_001, content.length - 1000]) {
      const [n] = await call<[number]>((cb) => ops.read('/dir/data.bin', fd!, buf, buf.length, pos, cb));
      expect(n).toBe(Math.min(buf.length, content.length - pos));
      expect(buf.subarray(0, n).equals(content.subarray(pos, pos + n))).toBe(true);
    }
    expect((await call<[number]>((cb) => ops.read('/dir/data.bin', fd!, buf, buf.length, content.length, cb)))[0]).toBe(0);
    expect(ops.openHandles()).toBe(1);
    await call((cb) => ops.release('/dir/data.bin', fd!, cb));
    expect(ops.openHandles()).toBe(0);
    expect((await call<[number]>((cb) => ops.read('/dir/data.bin', fd!, buf, buf.length, 0, cb)))[0]).toBe(-9);
  });

  it('open for writing, directories and missing files fail with the right errno', async () => {
    expect((await call<[number]>((cb) => ops.open('/top', 1, cb)))[0]).toBe(-30); // O_WRONLY
    expect((await call<[number]>((cb) => ops.open('/top', 2, cb)))[0]).toBe(-30); // O_RDWR
    expect((await call<[number]>((cb) => ops.open('/dir', 0, cb)))[0]).toBe(-21);
    expect((await call<[number]>((cb) => ops.open('/nope', 0, cb)))[0]).toBe(-2);
  });

  it('a detached kernel buffer (answer after a timeout) is never written', async () => {
    const [, fd] = await call<[number, number?]>((cb) => ops.open('/dir/data.bin', 0, cb));
    const [n] = await call<[number]>((cb) => ops.read('/dir/data.bin', fd!, Buffer.alloc(0), 4096, 0, cb));
    expect(n).toBe(-22);
    await call((cb) => ops.release('/dir/data.bin', fd!, cb));
  });

  it('readlink and statfs', async () => {
    expect(await call((cb) => ops.readlink('/ln', cb))).toEqual([0, 'dir/small.txt']);
    expect((await call<[number]>((cb) => ops.readlink('/top', cb)))[0]).toBe(-22);
    const [e, sfs] = await call<[number, { blocks: number; bfree: number }?]>((cb) => ops.statfs('/', cb));
    expect([e, sfs!.bfree]).toEqual([0, 0]);
  });

  it('everything that would modify the tree answers EROFS', async () => {
    const results = await Promise.all([
      call<[number]>((cb) => ops.create('/new', 0o644, cb)),
      call<[number]>((cb) => ops.unlink('/top', cb)),
      call<[number]>((cb) => ops.mkdir('/d', 0o755, cb)),
      call<[number]>((cb) => ops.rmdir('/dir', cb)),
      call<[number]>((cb) => ops.rename('/top', '/t2', cb)),
      call<[number]>((cb) => ops.chmod('/top', 0o600, cb)),
      call<[number]>((cb) => ops.chown('/top', 1, 1, cb)),
      call<[number]>((cb) => ops.truncate('/top', 0, cb)),
      call<[number]>((cb) => ops.utimens('/top', 0, 0, cb)),
      call<[number]>((cb) => ops.symlink('/x', '/y', cb)),
      call<[number]>((cb) => ops.write('/top', 1, Buffer.from('x'), 1, 0, cb)),
    ]);
    expect(results.map((r) => r[0])).toEqual(Array(results.length).fill(-30));
    expect(errors).toEqual([]);
  });
});
