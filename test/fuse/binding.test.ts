/**
 * The libfuse3 binding (fuse/fuse3.ts over fuse/native) through real mounts:
 * - every operation of the table, reads and writes included, on a small writable JS filesystem
 *   (./memfs-server.mjs, its own process) driven by POSIX calls from another (./memfs-client.py), so
 *   the workspace overlay can rely on each of them;
 * - large reads arrive as large requests (the binding's counters), an operation answered only after
 *   the timeout fails cleanly and its late answer is harmless, and the unmounted process gets back to
 *   its threads and descriptors and exits by itself;
 * - `hexz mount` of a real archive: byte-exact reads through libfuse3 with requests over 128 KiB, and
 *   the fuse-native fallback, forced (--fuse 2) or because libfuse3.so.3 is missing.
 * No timing assertions. Every access to a mount is made by a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { CLI, run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { canUnshareMounts, FUSE3_BUILT, FUSE_DEVICE_PRESENT, FUSE_REQUIRED, forceUnmount, isMounted, sha256Tree, startMount, waitFor, withoutFuse } from './mount-helper.js';

const SERVER = fileURLToPath(new URL('./memfs-server.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./memfs-client.py', import.meta.url));
const MIB = 1024 * 1024;
/** The binding's timeout in the memfs server: /hang answers after twice this. */
const OP_TIMEOUT_MS = 1000;
const NAMESPACES = await canUnshareMounts();
/** The binding's suites need it built; CI (FUSE_REQUIRED) fails instead of skipping. */
const SKIP = !FUSE_DEVICE_PRESENT || (!FUSE3_BUILT && !FUSE_REQUIRED);
if (!SKIP && !FUSE3_BUILT) console.warn('the libfuse3 binding is not built: its suites fail (HEXZ_TEST_REQUIRE_FUSE=1)');

interface Census {
  threads: number;
  fds: number;
  fdTargets: string[];
}

/** The JSON lines a memfs server prints, as they come. */
function lines(child: ChildProcess): (event: string) => Promise<Record<string, any>> {
  const seen: Record<string, any>[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      seen.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  return async (event) => {
    await waitFor(async () => seen.some((l) => l.event === event), `the memfs server's "${event}" line`, 30_000);
    return seen.find((l) => l.event === event)!;
  };
}

async function sha256(file: string): Promise<string> {
  const r = await run('sha256sum', [file]);
  if (r.code !== 0) throw new Error(`sha256sum ${file}: ${r.stderr}`);
  return r.stdout.toString().split(' ')[0];
}

describe.skipIf(SKIP)('the libfuse3 binding: every operation through a real mount', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let mp: string;
  let server: ChildProcess;
  let next: ReturnType<typeof lines>;
  let stderr = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let mounted: { before: Census; during: Census; readahead: boolean };
  let seen: Record<string, any>;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-binding-');
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(mp);
    server = spawn(process.execPath, [SERVER, '3', mp, String(OP_TIMEOUT_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
    next = lines(server);
    mounted = (await next('mounted')) as typeof mounted;
  }, 60_000);

  afterAll(async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await forceUnmount(mp);
    await tmp?.cleanup();
  });

  it('answers every operation as POSIX says, writes included', async () => {
    const r = await run('python3', [CLIENT, mp]);
    expect(r.code, `${r.stderr}\nserver: ${stderr}`).toBe(0);
    seen = JSON.parse(r.stdout.toString());
    expect(seen).toMatchObject({
      statfs: [4096, 1_000_000, 500_000, 400_000, 1000, 900, 255],
      access_root: true,
      access_missing: 'ENOENT',
      root_is_dir: true,
      fstat_size: 12,
      create_exists: 'EEXIST',
      read: 'hello world\n',
      mode: '0o640',
      owner: [0, 0], // create took the caller's uid/gid from context()
      after_append: 'hello world\nmore\n',
      after_truncate: 'hello',
      after_ftruncate: 'hel',
      after_o_trunc: 'y',
      blob_sha: true,
      blob_size: 3 * MIB + 123,
      mmap: 'MMAP!',
      chmod: '0o600',
      chown: [1234, 5678],
      utimens: [1_600_000_000_123, 1_500_000_000_456],
      chown_gid_only: [1234, 99],
      mkdir_mode: '0o750',
      listdir: ['inner'],
      rmdir_not_empty: 'ENOTEMPTY',
      rmdir_gone: 'ENOENT',
      readlink: 'a.txt',
      lstat_is_link: true,
      through_link: 'hel',
      nlink: 2,
      hard_content: 'hel',
      rename_over: 'new',
      rename_dir: ['f'],
      noreplace_exists: 'EEXIST',
      exchange: null,
      exchanged: ['Y', 'X'],
      noreplace_ok: null,
      unlinked: 'ENOENT',
      read_unlinked_open: 'hel',
      fstat_unlinked: 3,
      mknod: [true, true],
      xattr_create_exists: 'EEXIST',
      xattr_replace_missing: 'ENODATA',
      xattr_get: 'blue',
      xattr_big: 3000,
      xattr_list: ['user.big', 'user.color'],
      xattr_removed: 'ENODATA',
      fallocate_size: 65536,
      after_hang: 'hel',
    });
    // The pattern files of the server, read in 1 MiB pieces through the page cache and with direct_io.
    const big = Buffer.alloc(8 * MIB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
    const want = createHash('sha256').update(big).digest('hex');
    expect([seen.big_sha, seen.direct_sha]).toEqual([want, want]);
  }, 120_000);

  it('a request the filesystem answers only after the timeout fails with ETIMEDOUT, and the mount goes on', () => {
    expect(seen.hang).toBe('ETIMEDOUT');
    expect(seen.after_hang).toBe('hel');
  });

  it('unmounting ends the loop: every operation was called, large reads came as large requests, nothing is left, the process exits by itself', async () => {
    // The late answer to /hang lands (in memory the kernel reply no longer uses) before we stop.
    await new Promise((r) => setTimeout(r, 2 * OP_TIMEOUT_MS + 500));
    server.kill('SIGTERM');
    const ended = await next('ended');
    const exit = await exited; // no process.exit in the server: a leaked thread or handle would hang here
    expect(exit, stderr).toEqual({ code: 0, signal: null });
    expect(await isMounted(mp)).toBe(false);
    expect(ended.err).toBeUndefined();
    expect(ended.lateWrites).toBe(1);

    const ops = ['init', 'getattr', 'fgetattr', 'access', 'statfs', 'readdir', 'opendir', 'releasedir', 'fsyncdir', 'open', 'create', 'read', 'write', 'flush', 'fsync', 'release', 'truncate', 'ftruncate', 'unlink', 'rename', 'rename2', 'link', 'symlink', 'readlink', 'mkdir', 'rmdir', 'mknod', 'chmod', 'chown', 'utimens', 'setxattr', 'getxattr', 'listxattr', 'removexattr', 'fallocate'];
    const missing = ops.filter((op) => !(ended.calls[op] > 0));
    expect(missing, JSON.stringify(ended.calls)).toEqual([]);

    // INIT negotiated 1 MiB requests (FUSE_MAX_PAGES), and the kernel used them: the direct_io file
    // always (the reader's 1 MiB reads), the page-cache one when the readahead could be raised (root).
    const st = ended.stats;
    expect(st.connection.maxWrite).toBe(MIB);
    expect(st.maxRead).toBe(MIB);
    const over128k = st.readBuckets.slice(6).reduce((a: number, b: number) => a + b, 0);
    expect(over128k).toBeGreaterThanOrEqual(8); // /direct: 8 × 1 MiB at least
    if (mounted.readahead) expect(over128k).toBeGreaterThanOrEqual(16);

    // Back to the threads and descriptors it had before mounting: the loop and its workers joined,
    // /dev/fuse closed, fusermount3's auto_unmount socket closed and its watchdog reaped.
    expect(mounted.during.threads).toBeGreaterThan(mounted.before.threads);
    expect(mounted.during.fdTargets).toContain('/dev/fuse');
    expect({ threads: ended.threads, fdTargets: ended.fdTargets }).toEqual({ threads: ended.before.threads, fdTargets: ended.before.fdTargets });
  }, 60_000);
});

describe.skipIf(SKIP)('hexz mount on libfuse3 and on the fuse-native fallback', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let src: string;
  let archive: string;
  let want: Record<string, string>;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-bindings-');
    src = path.join(tmp.dir, 'src');
    await writeTree(src, {
      'big.bin': randomBytesSeeded(24 * MIB + 777, 7),
      'text/readme.md': textBytes(300_000, 8),
      'small.txt': 'small\n',
    });
    archive = path.join(tmp.dir, 'a.hxz');
    await pack(src, archive, { threads: 1 });
    want = await sha256Tree(src);
  }, 120_000);

  afterAll(async () => {
    await tmp?.cleanup();
  });

  async function mountpoint(name: string): Promise<string> {
    const mp = path.join(tmp.dir, name);
    await fs.mkdir(mp);
    return mp;
  }

  it('libfuse3 (the default): byte-exact reads, and the kernel sent requests over 128 KiB', async () => {
    const mp = await mountpoint('mnt3');
    const m = await startMount(archive, mp);
    try {
      expect(await sha256Tree(mp)).toEqual(want);
      // O_DIRECT: the kernel passes the reader's 1 MiB reads on whole, whatever the readahead.
      const dd = await run('dd', [`if=${path.join(mp, 'big.bin')}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
      expect(dd.code, dd.stderr).toBe(0);
      expect(m.stderr()).not.toMatch(/fuse-native/);
    } finally {
      const exit = await m.stop('SIGTERM');
      expect(exit.code, m.stderr()).toBe(0);
      await forceUnmount(mp);
    }
    const served = /hexz: served (\d+) reads through libfuse3, the largest (\d+) KiB, (\d+) of them over 128 KiB/.exec(m.stderr());
    expect(served, m.stderr()).not.toBeNull();
    expect(Number(served![2])).toBe(1024);
    expect(Number(served![3])).toBeGreaterThanOrEqual(24);
  }, 120_000);

  it('--fuse 2 (or HEXZ_FUSE=2) mounts through fuse-native, byte-exact, without the libfuse3 counters', async () => {
    const mp = await mountpoint('mnt2');
    const m = await startMount(archive, mp, { env: { HEXZ_FUSE: '2' } });
    try {
      expect(await sha256Tree(mp)).toEqual(want);
    } finally {
      expect((await m.stop('SIGTERM')).code, m.stderr()).toBe(0);
      await forceUnmount(mp);
    }
    expect(m.stderr()).not.toMatch(/served \d+ reads through libfuse3/);
    const bad = await run(process.execPath, [CLI, 'mount', archive, mp, '--fuse', '4']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--fuse/);
  }, 120_000);

  it.skipIf(!NAMESPACES)('without libfuse3.so.3 it falls back to fuse-native and says so in one line', async () => {
    const mp = await mountpoint('mnt-fallback');
    const readyFile = path.join(tmp.dir, '.fallback.ready');
    // A private mount namespace where libfuse3.so.3 is an empty file: the mount lives there too, so
    // its files are read from inside it (nsenter into the server's namespace).
    const cmd = await withoutFuse('libfuse3', process.execPath, [CLI, 'mount', archive, mp, '--ready-file', readyFile]);
    const child = spawn(cmd.cmd, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEXZ_PROGRESS: '0' } });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => existsSync(readyFile) || child.exitCode !== null, 'the fallback mount', 60_000);
      expect(existsSync(readyFile), err).toBe(true);
      const fallback = err.split('\n').filter((l) => /fuse-native/.test(l));
      expect(fallback).toHaveLength(1);
      expect(fallback[0]).toMatch(/^hexz: FUSE 3 is not usable \(the FUSE 3 library \(libfuse3\.so\.3\) is missing: .*\); using fuse-native \(libfuse2: reads of 128 KiB\)$/);
      // unshare execs sh, which execs node: the child's pid is the mount process.
      const inside = await run('nsenter', ['-t', String(child.pid), '-m', 'sha256sum', path.join(mp, 'big.bin'), path.join(mp, 'text/readme.md')]);
      expect(inside.code, inside.stderr).toBe(0);
      expect(inside.stdout.toString()).toBe(`${want['big.bin']}  ${mp}/big.bin\n${want['text/readme.md']}  ${mp}/text/readme.md\n`);
    } finally {
      child.kill('SIGTERM');
      expect(await exit, err).toBe(0);
    }
  }, 120_000);
});
