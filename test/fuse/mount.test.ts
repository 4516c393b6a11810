/**
 * `hexz mount` of a packed directory and of a single file, checked from child processes with the
 * tools users run: find, ls -l, stat, sha256sum, dd, cmp, readlink, and writes that must fail.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, sha256Tree, startMount, type RunningMount } from './mount-helper.js';

/** A fixed mtime with a millisecond part: FUSE (through fuse-native) carries milliseconds. */
const MTIME_S = 1_577_934_245.123;

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount: a directory archive', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let src: string;
  let archive: string;
  let mp: string;
  let mount: RunningMount;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-');
    src = path.join(tmp.dir, 'src');
    mp = path.join(tmp.dir, 'mnt');
    archive = path.join(tmp.dir, 'tree.hxz');
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`many/f${String(i).padStart(4, '0')}.txt`] = `file ${i}\n`;
    await writeTree(src, {
      'README.md': textBytes(10_000, 1),
      'data/random.bin': randomBytesSeeded(3 * 1024 * 1024 + 17, 2),
      'data/sparse.bin': Buffer.concat([Buffer.alloc(1024 * 1024), Buffer.from('tail after a hole\n')]),
      'data/empty': '',
      'docs/deep/nested/file.txt': textBytes(200_000, 3),
      'docs/with space ü.txt': 'unicode name\n',
      'bin/tool.sh': '#!/bin/sh\necho tool\n',
      'secret.txt': 'only the owner\n',
      'ro.txt': 'read only\n',
      emptydir: null,
      ...many,
    });
    await fs.chmod(path.join(src, 'bin/tool.sh'), 0o755);
    await fs.chmod(path.join(src, 'secret.txt'), 0o600);
    await fs.chmod(path.join(src, 'ro.txt'), 0o444);
    await fs.symlink('README.md', path.join(src, 'link-to-readme'));
    await fs.symlink('../docs', path.join(src, 'data/up'));
    await fs.symlink('nowhere', path.join(src, 'broken'));
    await fs.utimes(path.join(src, 'data/random.bin'), MTIME_S, MTIME_S);
    await fs.mkdir(mp);
    await pack(src, archive, { threads: 2 });
    mount = await startMount(archive, mp);
  });

  afterAll(async () => {
    await mount?.stop();
    await forceUnmount(mp);
    await tmp?.cleanup();
  });

  it('logs one line once the mount is ready', () => {
    expect(mount.stderr()).toContain(`hexz: mounted ${archive} at ${mp} (read-only)`);
  });

  it('find shows the same tree: types, modes, sizes, symlink targets', async () => {
    const listing = async (root: string) => {
      const files = await run('find', [root, '-mindepth', '1', '(', '-type', 'f', '-o', '-type', 'l', ')', '-printf', '%y %m %s %P -> %l\\n']);
      const dirs = await run('find', [root, '-mindepth', '1', '-type', 'd', '-printf', '%y %m %P\\n']);
      expect(files.code, files.stderr).toBe(0);
      expect(dirs.code, dirs.stderr).toBe(0);
      const lines = (files.stdout.toString() + dirs.stdout.toString()).split('\n').filter(Boolean);
      return lines.sort();
    };
    const [expected, actual] = [await listing(src), await listing(mp)];
    expect(actual.length).toBeGreaterThan(300);
    expect(actual).toEqual(expected);
  });

  it('ls -l and stat show modes, owner, sizes, link counts and mtimes', async () => {
    const ls = await run('ls', ['-l', mp]);
    expect(ls.code, ls.stderr).toBe(0);
    const out = ls.stdout.toString();
    expect(out).toMatch(/-rw------- 1 \S+ \S+ +15 .* secret\.txt/);
    expect(out).toMatch(/-r--r--r-- 1 .* ro\.txt/);
    expect(out).toMatch(/lrwxrwxrwx 1 .* link-to-readme -> README\.md/);
    expect(out).toMatch(/drwxr-xr-x 2 .* emptydir/);

    const uid = process.getuid!();
    const gid = process.getgid!();
    const st = await run('stat', ['-c', '%F|%a|%s|%u|%g|%h', path.join(mp, 'data/random.bin'), path.join(mp, 'docs'), path.join(mp, 'link-to-readme'), path.join(mp, 'bin/tool.sh')]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout.toString().trim().split('\n')).toEqual([
      `regular file|644|${3 * 1024 * 1024 + 17}|${uid}|${gid}|1`,
      `directory|755|0|${uid}|${gid}|2`,
      `symbolic link|777|9|${uid}|${gid}|1`,
      `regular file|755|20|${uid}|${gid}|1`,
    ]);
    // Milliseconds survive (fuse-native's resolution): compare the first three decimals of find's %T@.
    const ms = async (root: string) => /^(\d+\.\d{3})/.exec((await run('find', [path.join(root, 'data/random.bin'), '-printf', '%T@'])).stdout.toString())?.[1];
    expect(await ms(mp)).toBe(await ms(src));
    expect(await ms(mp)).toMatch(/^1577934245\.12/);

    const many = await run('bash', ['-c', 'ls -l "$1" | grep -c "^-"', 'ls', path.join(mp, 'many')]);
    expect(many.stdout.toString().trim()).toBe('300');
  });

  it('sha256sum of every file matches the original', async () => {
    const [expected, actual] = await Promise.all([sha256Tree(src), sha256Tree(mp)]);
    expect(Object.keys(actual).length).toBe(Object.keys(expected).length);
    expect(actual).toEqual(expected);
  });

  it('dd with skip/count reads exact ranges, across chunk boundaries and past the end', async () => {
    const rel = 'data/random.bin';
    const original = await fs.readFile(path.join(src, rel));
    // Real chunk boundaries of the file, from the archive (not through the mount).
    const a = await openArchive(archive);
    const boundaries: number[] = [];
    const entry = await a.entry(rel);
    for await (const ref of a.fileRefs(entry)) if (ref.logical > entry.logical) boundaries.push(ref.logical - entry.logical);
    await a.close();
    expect(boundaries.length).toBeGreaterThan(5);

    const ranges: Array<[number, number]> = boundaries.slice(0, 6).map((b) => [b - 1000, 70_000]);
    ranges.push([0, 1], [4095, 4097], [original.length - 10, 10], [original.length - 5, 100], [original.length, 10], [123_457, 1_500_000]);
    for (const [skip, count] of ranges) {
      const r = await run('dd', [`if=${path.join(mp, rel)}`, 'bs=65536', 'iflag=skip_bytes,count_bytes', `skip=${skip}`, `count=${count}`, 'status=none']);
      expect(r.code, r.stderr).toBe(0);
      const want = original.subarray(skip, Math.min(original.length, skip + count));
      expect(r.stdout.length, `dd skip=${skip} count=${count}`).toBe(want.length);
      expect(r.stdout.equals(want), `dd skip=${skip} count=${count}`).toBe(true);
    }
    // Block-sized dd as users write it: 4 KiB blocks, from block 700 on, 300 blocks.
    const blocks = await run('dd', [`if=${path.join(mp, rel)}`, 'bs=4096', 'skip=700', 'count=300', 'status=none']);
    expect(blocks.stdout.equals(original.subarray(700 * 4096, 1000 * 4096))).toBe(true);
    // A hole reads back as zeros, followed by the data after it.
    const sparse = await run('cmp', [path.join(mp, 'data/sparse.bin'), path.join(src, 'data/sparse.bin')]);
    expect(sparse.code, sparse.stdout.toString()).toBe(0);
  });

  it('symlinks resolve inside the mount; readlink returns the stored target', async () => {
    const r = await run('readlink', [path.join(mp, 'link-to-readme'), path.join(mp, 'broken'), path.join(mp, 'data/up')]);
    expect(r.stdout.toString()).toBe('README.md\nnowhere\n../docs\n');
    const through = await run('cat', [path.join(mp, 'data/up/with space ü.txt')]);
    expect(through.stdout.toString()).toBe('unicode name\n');
    const dangling = await run('cat', [path.join(mp, 'broken')]);
    expect(dangling.code).not.toBe(0);
    expect(dangling.stderr).toContain('No such file or directory');
  });

  it('missing paths answer ENOENT and paths below a file ENOTDIR', async () => {
    const missing = await run('stat', [path.join(mp, 'no/such/file')]);
    expect(missing.stderr).toContain('No such file or directory');
    const below = await run('cat', [path.join(mp, 'README.md/x')]);
    expect(below.stderr).toContain('Not a directory');
  });

  it('every kind of write answers EROFS', async () => {
    const f = path.join(mp, 'README.md');
    const attempts: string[][] = [
      ['touch', path.join(mp, 'new-file')],
      ['bash', '-c', 'echo x > "$1"', 'w', f],
      ['bash', '-c', 'echo x >> "$1"', 'w', f],
      ['rm', f],
      ['rmdir', path.join(mp, 'emptydir')],
      ['mkdir', path.join(mp, 'new-dir')],
      ['chmod', '600', f],
      ['mv', f, path.join(mp, 'moved')],
      ['ln', '-s', 'x', path.join(mp, 'new-link')],
      ['truncate', '-s', '0', f],
      ['touch', '-d', '2001-01-01', f],
    ];
    for (const [cmd, ...args] of attempts) {
      const r = await run(cmd, args);
      expect(r.code, `${cmd} ${args.join(' ')}`).not.toBe(0);
      expect(r.stderr, `${cmd} ${args.join(' ')}`).toContain('Read-only file system');
    }
    // Nothing changed.
    const after = await run('sha256sum', [f]);
    const before = await run('sha256sum', [path.join(src, 'README.md')]);
    expect(after.stdout.toString().split(' ')[0]).toBe(before.stdout.toString().split(' ')[0]);
  });

  it('statfs reports the logical size, nothing free, read-only', async () => {
    const a = await openArchive(archive);
    const logical = a.root.logicalSize;
    const files = a.root.fileCount;
    await a.close();
    const r = await run('stat', ['-f', '-c', '%S %b %f %a %c %d', mp]);
    expect(r.code, r.stderr).toBe(0);
    const [bsize, blocks, free, avail, inodes, ffree] = r.stdout.toString().trim().split(' ').map(Number);
    expect(bsize).toBe(4096);
    expect(blocks).toBe(Math.ceil(logical / 4096));
    expect([free, avail, ffree]).toEqual([0, 0, 0]);
    expect(inodes).toBe(files + 1);
    const mounts = await run('grep', [` ${mp} `, '/proc/self/mounts']);
    expect(mounts.stdout.toString()).toMatch(/ fuse\.hexz ro,/);
  });
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount: a single-file archive', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let mount: RunningMount | undefined;
  let mp: string;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-disk-');
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(mp);
  });
  afterAll(async () => {
    await mount?.stop();
    await forceUnmount(mp);
    await tmp?.cleanup();
  });

  it('shows one file `disk` that cmp finds identical to the source', async () => {
    const image = path.join(tmp.dir, 'image.raw');
    await fs.writeFile(image, Buffer.concat([randomBytesSeeded(2 * 1024 * 1024, 9), Buffer.alloc(3 * 1024 * 1024), textBytes(500_000, 4)]));
    const archive = path.join(tmp.dir, 'image.hxz');
    await pack(image, archive, { threads: 2 });
    mount = await startMount(archive, mp);
    const ls = await run('ls', ['-A', mp]);
    expect(ls.stdout.toString()).toBe('disk\n');
    const cmp = await run('cmp', [path.join(mp, 'disk'), image]);
    expect(cmp.code, cmp.stdout.toString() + cmp.stderr).toBe(0);
    const size = await run('stat', ['-c', '%s', path.join(mp, 'disk')]);
    expect(Number(size.stdout.toString())).toBe((await fs.stat(image)).size);
  });
});
