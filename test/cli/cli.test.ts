import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson, run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let input: string;
let archive: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-cli-');
  input = path.join(tmp.dir, 'data');
  await writeTree(input, {
    'big.bin': randomBytesSeeded(3 * MiB + 123, 11),
    'notes/readme.md': textBytes(300_000, 3),
    'notes/empty.txt': '',
  });
  await fs.symlink('notes/readme.md', path.join(input, 'link'));
  archive = path.join(tmp.dir, 'data.hxz');
  const r = await hexz(['pack', input, archive]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('hexz CLI, run the way a user runs it', () => {
  it('pack prints a summary, and --json the same as data', async () => {
    const out = path.join(tmp.dir, 'again.hxz');
    const r = await hexzJson(['pack', '--compression', 'lz4', input, out]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ kind: 'directory', files: 3, symlinks: 1, logicalBytes: 3 * MiB + 123 + 300_000 });
    const text = await hexz(['pack', '-f', input, out]);
    expect(text.stdout.toString()).toMatch(/packed: .*again\.hxz/);
    expect(text.stdout.toString()).toMatch(/stored: /);
  });

  it('info shows format, chunking, sizes and ratios', async () => {
    const r = await hexzJson(['info', archive]);
    expect(r.json).toMatchObject({ formatVersion: 2, fileCount: 5, encrypted: false, chunking: { avg: 65536 }, source: { type: 'directory' } });
    // Entries by type (fileCount is the total of all types, kept for compatibility).
    expect(r.json).toMatchObject({ entryCount: 5, files: 3, directories: 1, symlinks: 1 });
    const text = (await hexz(['info', archive])).stdout.toString();
    expect(text).toMatch(/^entries: +3 files, 1 directory, 1 symlink$/m);
    expect(text).not.toMatch(/^files:/m);
    expect(text).toMatch(/format: +hxz v2/);
    expect(text).toMatch(/ratios: +dedup/);
  });

  it('ls lists a directory, -r recursively, -l with modes and targets', async () => {
    expect((await hexz(['ls', archive])).stdout.toString().trim().split('\n')).toEqual(['big.bin', 'link', 'notes/']);
    expect((await hexz(['ls', archive, 'notes'])).stdout.toString().trim().split('\n')).toEqual(['empty.txt', 'readme.md']);
    const long = (await hexz(['ls', '-l', archive])).stdout.toString();
    expect(long).toMatch(/^lrwxrwxrwx .* link -> notes\/readme\.md$/m);
    const all = await hexzJson(['ls', '-r', archive]);
    expect(all.json.map((e: { path: string }) => e.path)).toEqual(['big.bin', 'link', 'notes', 'notes/empty.txt', 'notes/readme.md']);
  });

  it('cat with offsets across chunk boundaries matches dd of the original', async () => {
    const src = path.join(input, 'big.bin');
    for (const [offset, length] of [
      [0, 10],
      [65_530, 200_000],
      [MiB - 3, 3 * 65536 + 7],
      [3 * MiB + 100, 23],
      [0, 3 * MiB + 123],
    ]) {
      const got = await hexz(['cat', archive, 'big.bin', '--offset', String(offset), '--length', String(length)]);
      expect(got.code).toBe(0);
      const want = await run('dd', [`if=${src}`, 'iflag=skip_bytes,count_bytes', `skip=${offset}`, `count=${length}`, 'status=none']);
      expect(got.stdout.equals(want.stdout)).toBe(true);
    }
    const whole = await hexz(['cat', archive, 'notes/readme.md']);
    expect(whole.stdout.equals(await fs.readFile(path.join(input, 'notes/readme.md')))).toBe(true);
  });

  it('cat out of range and of a directory fail with clear errors', async () => {
    const past = await hexz(['cat', archive, 'big.bin', '--offset', String(4 * MiB), '--length', '1']);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/outside big\.bin/);
    const dir = await hexz(['cat', archive, 'notes']);
    expect(dir.code).toBe(7);
    expect(dir.stderr).toMatch(/not a regular file/);
  });

  it('cat into a closed pipe stops quietly', async () => {
    const r = await run('bash', ['-c', `node ${JSON.stringify(path.resolve('dist/src/cli/main.js'))} cat ${archive} big.bin | head -c 100 | wc -c; echo "exit \${PIPESTATUS[0]}"`]);
    expect(r.stdout.toString()).toMatch(/^100\nexit 0$/m);
  });

  it('extract restores everything (sha256sum agrees), refuses to overwrite, and --force does', async () => {
    const dest = path.join(tmp.dir, 'restored');
    expect((await hexz(['extract', archive, dest])).code).toBe(0);
    const sums = async (dir: string) => (await run('bash', ['-c', `cd ${dir} && find . -type f -print0 | sort -z | xargs -0 sha256sum`])).stdout.toString();
    expect(await sums(dest)).toBe(await sums(input));
    expect(await fs.readlink(path.join(dest, 'link'))).toBe('notes/readme.md');
    const again = await hexz(['extract', archive, dest]);
    expect(again.code).toBe(20);
    expect(again.stderr).toMatch(/would overwrite .* \(use --force\)/);
    expect((await hexz(['extract', '--force', archive, dest])).code).toBe(0);
    const some = path.join(tmp.dir, 'some');
    expect((await hexz(['extract', archive, some, 'notes'])).code).toBe(0);
    expect((await fs.readdir(some)).sort()).toEqual(['notes']);
  });

  it('verify passes on a good archive and names the problem on a bad one (exit 4)', async () => {
    const ok = await hexz(['verify', archive]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.toString()).toMatch(/^OK: 3 files/);
    const bad = path.join(tmp.dir, 'bad.hxz');
    const bytes = await fs.readFile(archive);
    bytes[200] ^= 0xff; // inside the first stored chunk (big.bin)
    await fs.writeFile(bad, bytes);
    const r = await hexz(['verify', bad]);
    expect(r.code).toBe(4);
    expect(r.stdout.toString()).toMatch(/FAILED/);
    expect(r.stdout.toString()).toMatch(/CORRUPT big\.bin: corrupt chunk/);
    const cat = await hexz(['cat', bad, 'big.bin']);
    expect(cat.code).toBe(4);
  });

  it('exit codes and messages come from one table', async () => {
    const missing = await hexz(['info', path.join(tmp.dir, 'nope.hxz')]);
    expect(missing.code).toBe(8);
    expect(missing.stderr).toMatch(/^hexz: error: open: no such file/);
    const notArchive = await hexzJson(['info', path.join(input, 'notes/readme.md')]);
    expect(notArchive.code).toBe(3);
    expect(notArchive.json.error.code).toBe('NOT_AN_ARCHIVE');
    const usage = await hexz(['pack']);
    expect(usage.code).toBe(2);
    const unknown = await hexz(['frobnicate']);
    expect(unknown.code).toBe(2);
    const noPath = await hexz(['cat', archive, 'no/such/file']);
    expect(noPath.code).toBe(7);
    expect(noPath.stderr).toMatch(/no such path in archive: no\/such\/file/);
  });

  it('--help works for every command', async () => {
    for (const cmd of ['pack', 'info', 'ls', 'cat', 'extract', 'verify', 'diff', 'flatten', 'keygen', 'serve', 'mount', 'unmount']) {
      const r = await hexz([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout.toString()).toMatch(new RegExp(`Usage: hexz ${cmd}`));
    }
    expect((await hexz(['--version'])).stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('packs a single file from the command line as "disk"', async () => {
    const file = path.join(input, 'big.bin');
    const out = path.join(tmp.dir, 'disk.hxz');
    expect((await hexz(['pack', file, out])).code).toBe(0);
    expect((await hexz(['ls', out])).stdout.toString().trim()).toBe('disk');
    const cmp = await run('bash', ['-c', `cmp <(node ${JSON.stringify(path.resolve('dist/src/cli/main.js'))} cat ${out} disk) ${file} && echo same`]);
    expect(cmp.stdout.toString().trim()).toBe('same');
  });

  it('pack checks SOURCE_DATE_EPOCH, the output and --level before packing', async () => {
    const out = path.join(tmp.dir, 'checked.hxz');
    for (const bad of ['abc', '1.5', '-1', '1e3', '99999999999999999']) {
      const r = await hexzJson(['pack', input, out], { env: { SOURCE_DATE_EPOCH: bad } });
      expect(r.code, bad).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('SOURCE_DATE_EPOCH') });
    }
    const fixed = await hexzJson(['pack', input, out], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(fixed.code).toBe(0);
    const info = await hexzJson(['info', out]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.json.created).toBe('2023-11-14T22:13:20.000Z');

    // An existing directory as OUTPUT: refused up front, with or without --force, and left alone.
    const dir = path.join(tmp.dir, 'out-dir');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'keep.txt'), 'keep');
    for (const force of [[], ['--force']]) {
      const r = await hexzJson(['pack', ...force, input, dir]);
      expect(r.code).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/is a directory/) });
    }
    expect(await fs.readdir(dir)).toEqual(['keep.txt']);
    expect((await fs.readdir(tmp.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // --level: the documented range, zstd only (a warning otherwise), negative levels accepted.
    const help = (await hexz(['pack', '--help'])).stdout.toString().replace(/\s+/g, ' ');
    expect(help).toContain('-7 (fastest) to 22 (smallest)');
    expect(help).toContain('applies to zstd only');
    expect((await hexz(['pack', '-f', '--level', '23', input, out])).code).toBe(2);
    expect((await hexz(['pack', '-f', '--level', '-7', input, out])).code).toBe(0);
    const lz4 = await hexzJson(['pack', '-f', '--compression', 'lz4', '--level', '9', input, out]);
    expect(lz4.code).toBe(0);
    expect(lz4.json.warnings).toEqual([expect.stringMatching(/--level applies to zstd only/)]);
    expect((await hexzJson(['pack', '-f', '--compression', 'lz4', input, out])).json.warnings).toEqual([]);
  });
});
