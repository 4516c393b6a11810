/**
 * `hexz extract` against hostile and odd inputs, run the way a user runs it: archives whose file table
 * is not a tree (entries below a symlink or a file, missing parent directories), destinations the
 * kernel refuses (/proc), and the precision of restored modification times.
 */
import { spawn } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { craftArchive } from '../helpers/craft.js';
import { CLI, hexz, hexzJson, run } from '../helpers/cli.js';
import { treeDigest, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let goodBytes: Buffer;
beforeAll(async () => {
  tmp = await makeTempDir('hexz-extract-');
  const input = path.join(tmp.dir, 'in');
  await writeTree(input, { 'a/x': 'pwned\n', 'f/x': 'child of a file\n', 'g.txt': 'fine\n' });
  const out = path.join(tmp.dir, 'good.hxz');
  await pack(input, out, { threads: 1 });
  goodBytes = await fs.readFile(out);
});
afterAll(async () => {
  await tmp.cleanup();
});

let n = 0;
async function crafted(edit: Parameters<typeof craftArchive>[1]): Promise<string> {
  const p = path.join(tmp.dir, `crafted-${n++}.hxz`);
  await fs.writeFile(p, craftArchive(goodBytes, edit));
  return p;
}

/** A sandbox: DIR is sandbox/one/two/dest, so `../..` from an entry at the top of DIR is sandbox/one. */
async function sandbox(): Promise<{ root: string; dest: string }> {
  const root = path.join(tmp.dir, `sandbox-${n++}`);
  await fs.mkdir(path.join(root, 'one', 'two'), { recursive: true });
  await fs.writeFile(path.join(root, 'one', 'marker'), 'untouched\n');
  return { root, dest: path.join(root, 'one', 'two', 'dest') };
}

const symlinkEscape = () =>
  crafted((d) => {
    // `a -> ../..` and `a/x`: extracting a/x through the link would write sandbox/one/x.
    const a = d.entries.find((e) => e.path === 'a')!;
    Object.assign(a, { type: 'symlink', target: '../..', size: 5, mode: 0o777 });
  });

const fileWithChildren = () =>
  crafted((d) => {
    const f = d.entries.find((e) => e.path === 'f')!;
    Object.assign(f, { type: 'file', size: 0, logical: 0, firstRef: 0, refCount: 0, mode: 0o644 });
  });

const missingParent = () =>
  crafted((d) => {
    d.entries = d.entries.filter((e) => e.path !== 'a');
  });

describe('extract refuses file tables that are not a tree, before writing anything', () => {
  it.each([
    // name, archive, code, exit, message, extract arguments that must fail, that are fine
    ['a symlink with entries below it (a -> ../.., a/x)', symlinkEscape, 'UNSAFE_PATH', 2, /a\/x lies below a, which is a symlink/, [[], ['--force'], ['a/x']], [['f/x'], ['a']]],
    ['a regular file with entries below it', fileWithChildren, 'CORRUPT', 4, /f\/x lies below f, which is a regular file/, [[], ['--force'], ['f/x']], [['a/x']]],
    ['a missing parent directory entry', missingParent, 'CORRUPT', 4, /a\/x has no parent directory entry a/, [[], ['--force'], ['a/x']], [['f/x']]],
  ] as const)('%s', async (_name, make, code, exit, message, failing, fine) => {
    const archive = await make();
    for (const args of failing) {
      const box = await sandbox();
      const before = await treeDigest(box.root);
      const r = await hexzJson(['extract', archive, box.dest, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(exit);
      expect(r.json.error).toMatchObject({ code });
      expect(r.json.error.message).toMatch(message);
      // Nothing written: not outside DIR, and not even DIR itself.
      expect(await treeDigest(box.root)).toEqual(before);
    }
    for (const args of fine) {
      const box = await sandbox();
      const r = await hexz(['extract', archive, box.dest, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(existsSync(path.join(box.root, 'one', 'x'))).toBe(false);
      expect(await fs.readdir(path.join(box.root, 'one'))).toEqual(['marker', 'two']);
    }
  });

  it('verify reports each of them', async () => {
    for (const [make, code, where] of [
      [symlinkEscape, 'UNSAFE_PATH', 'a/x'],
      [fileWithChildren, 'CORRUPT', 'f/x'],
      [missingParent, 'CORRUPT', 'a/x'],
    ] as const) {
      const file = await make();
      const a = await openArchive(file, { cache: new BlockCache() });
      try {
        const report = await verifyArchive(a);
        expect(report.ok).toBe(false);
        expect(report.problems).toContainEqual(expect.objectContaining({ code, path: where }));
      } finally {
        await a.close();
      }
      const cli = await hexz(['verify', file]);
      expect(cli.code).toBe(4);
      expect(cli.stdout.toString()).toContain(`${code} ${where}`);
    }
  });

  it('--force never replaces a directory with a symlink (EXISTS, not an internal error)', async () => {
    const input = path.join(tmp.dir, 'links-in');
    await writeTree(input, { 'target.txt': 't\n' });
    await fs.symlink('target.txt', path.join(input, 'link'));
    const archive = path.join(tmp.dir, 'links.hxz');
    await pack(input, archive, { threads: 1 });
    const dest = path.join(tmp.dir, 'links-out');
    await fs.mkdir(path.join(dest, 'link'), { recursive: true });
    const r = await hexzJson(['extract', '--force', archive, dest]);
    expect(r.code, r.stderr).toBe(20);
    expect(r.json.error).toMatchObject({ code: 'EXISTS', message: expect.stringMatching(/cannot replace directory .*link with a symlink/) });
  });
});

describe('extract into a destination the kernel refuses', () => {
  it.skipIf(!existsSync('/proc/self'))('below /proc fails with a typed error instead of spinning forever', async () => {
    const archive = path.join(tmp.dir, 'good.hxz');
    for (const dest of ['/proc/hexz-test-dest', '/proc/hexz-test-dest/a/b']) {
      // A guard against the old hang (recursive mkdir never returned): kill the child if it does not exit.
      const child = spawn(process.execPath, [CLI, '--json', 'extract', archive, dest], { env: { ...process.env, HEXZ_PROGRESS: '0' } });
      const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearTimeout(guard);
      expect(code, 'hexz extract did not exit (killed)').toBe(2);
      expect(JSON.parse(out).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('cannot create directory /proc/hexz-test-dest') });
    }
  });

  it('a destination that is a regular file is NOT_A_DIRECTORY', async () => {
    const file = path.join(tmp.dir, 'plain-file');
    await fs.writeFile(file, 'x');
    const r = await hexzJson(['extract', path.join(tmp.dir, 'good.hxz'), path.join(file, 'sub')]);
    expect(r.code).toBe(7);
    expect(r.json.error.code).toBe('NOT_A_DIRECTORY');
  });
});

describe('modification times', () => {
  it('round-trip to the microsecond (files, directories, symlinks)', async () => {
    const input = path.join(tmp.dir, 'times-in');
    await writeTree(input, { 'dir/file.txt': 'tick\n' });
    await fs.symlink('dir/file.txt', path.join(input, 'link'));
    // Nanosecond timestamps, set with touch (utimensat): sub-millisecond parts that extract used to drop.
    const stamps: Record<string, string> = { 'dir/file.txt': '2024-05-06 07:08:09.123456789', dir: '2023-01-02 03:04:05.987654321', link: '2022-02-03 04:05:06.000001999' };
    for (const [rel, when] of Object.entries(stamps)) {
      const r = await run('touch', ['-h', '-d', `${when} UTC`, path.join(input, rel)]);
      expect(r.code, r.stderr).toBe(0);
    }
    const archive = path.join(tmp.dir, 'times.hxz');
    expect((await hexz(['pack', input, archive])).code).toBe(0);
    const dest = path.join(tmp.dir, 'times-out');
    const x = await hexz(['extract', archive, dest]);
    expect(x.code, x.stderr).toBe(0);
    for (const rel of Object.keys(stamps)) {
      const want = (await fs.lstat(path.join(input, rel), { bigint: true })).mtimeNs;
      const got = (await fs.lstat(path.join(dest, rel), { bigint: true })).mtimeNs;
      expect(want % 1_000_000n, `${rel}: the test needs a sub-millisecond time`).not.toBe(0n);
      expect(got / 1000n, rel).toBe(want / 1000n);
    }
  });
});

describe.skipIf(process.getuid?.() !== 0)('extract onto a full disk (a 2 MiB tmpfs)', () => {
  it('fails NO_SPACE naming the file, leaves no partly written file under a final name, and no temporary file', async () => {
    const input = path.join(tmp.dir, 'full-in');
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24; // incompressible
    await writeTree(input, { 'a-small.txt': 'fits\n', 'b-big.bin': big, 'c-after.txt': 'never reached\n' });
    const archive = path.join(tmp.dir, 'full.hxz');
    await pack(input, archive);
    const mnt = path.join(tmp.dir, 'small-fs');
    await fs.mkdir(mnt);
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'hexz-test-full', mnt]);
    expect(m.code, m.stderr).toBe(0);
    try {
      const dest = path.join(mnt, 'dest');
      const r = await hexz(['extract', archive, dest]);
      expect(r.code, r.stderr).toBe(21); // NO_SPACE
      // The file named is one being written when the disk filled (files are written concurrently).
      const named = /no space left on device.*writing \S*\/(b-big\.bin|c-after\.txt)$/im.exec(r.stderr);
      expect(named, r.stderr).not.toBeNull();
      const left = await fs.readdir(dest);
      // Files complete before the disk filled are in place; the ones that did not fit are not, under any name.
      expect(left.filter((f) => f.startsWith('.'))).toEqual([]);
      expect(left).not.toContain('b-big.bin');
      expect(left).not.toContain(named![1]);
      if (left.includes('a-small.txt')) expect(await fs.readFile(path.join(dest, 'a-small.txt'), 'utf8')).toBe('fits\n');
    } finally {
      await run('umount', [mnt]);
    }
  });
});
