/**
 * What `hexz mount` accepts as a mountpoint and how it reports a refused mount: a non-empty directory
 * is mounted over (libfuse2's `nonempty`; its files are hidden while mounted and untouched), and a
 * mount refused for a reason other than FUSE being unusable gets a truthful typed error, not the
 * "install fuse3" FUSE_UNAVAILABLE. Every access to the mount is made by child processes.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { diagnoseMountFailure } from '@hexz/fuse/mount.js';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { CLI, run } from '../helpers/cli.js';
import { writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, isMounted, startMount, type RunningMount } from './mount-helper.js';

const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

/** `hexz mount …` as another user (the test runs as root); resolves with its exit code and stderr. */
function mountAs(uid: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'mount', ...args], { uid, gid: uid, env: { ...process.env, HEXZ_PROGRESS: '0', HOME: '/tmp' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('diagnosing a failed mount', () => {
  it('FUSE_UNAVAILABLE (with what to install) only when FUSE itself is unusable, e.g. the device', async () => {
    const err = await diagnoseMountFailure('/mnt/x', new Error('fuse failed'), '/nonexistent/fuse');
    expect(err.code).toBe('FUSE_UNAVAILABLE');
    expect(err.message).toContain('cannot open /nonexistent/fuse');
    expect(err.message).toContain('apt-get install -y fuse3 libfuse2');
  });

  it.skipIf(!FUSE_DEVICE_PRESENT || !ROOT)('a mountpoint that vanished is INVALID_ARGUMENT', async () => {
    const err = await diagnoseMountFailure('/nonexistent/mountpoint', new Error('fuse failed'));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('the mountpoint no longer exists');
  });
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount: mountpoints', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let archive: string;
  const mountpoints: string[] = [];
  let current: RunningMount | undefined;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-mp-');
    // Other users must reach the archive and the mountpoints (mkdtemp makes the directory 0700).
    await fs.chmod(tmp.dir, 0o755);
    const src = path.join(tmp.dir, 'src');
    await writeTree(src, { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' });
    archive = path.join(tmp.dir, 'mp.hxz');
    await pack(src, archive, { threads: 1 });
  });

  afterEach(async () => {
    await current?.stop('SIGTERM');
    current = undefined;
  });

  afterAll(async () => {
    for (const mp of mountpoints) await forceUnmount(mp);
    await tmp?.cleanup();
  });

  async function mountpoint(name: string, files: Record<string, string> = {}): Promise<string> {
    const mp = path.join(tmp.dir, name);
    await fs.mkdir(mp);
    await writeTree(mp, files);
    mountpoints.push(mp);
    return mp;
  }

  it('mounts over a non-empty directory: its files are hidden while mounted and back afterwards', async () => {
    const mp = await mountpoint('populated', { 'old.txt': 'was here before\n', 'a.txt': 'shadowed\n' });
    current = await startMount(archive, mp);
    const ls = await run('ls', ['-A', mp]);
    expect(ls.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['a.txt', 'dir']);
    const cat = await run('cat', [path.join(mp, 'a.txt')]);
    expect(cat.stdout.toString()).toBe('alpha\n');
    expect(current.stderr()).not.toContain('FUSE is not available');

    const exit = await current.stop('SIGTERM');
    current = undefined;
    expect(exit.code).toBe(0);
    expect(await isMounted(mp)).toBe(false);
    expect(await fs.readFile(path.join(mp, 'old.txt'), 'utf8')).toBe('was here before\n');
    expect(await fs.readFile(path.join(mp, 'a.txt'), 'utf8')).toBe('shadowed\n');
  });

  it.skipIf(!ROOT)('a refused mount that is not about FUSE being unusable is a typed PERMISSION error, not "install fuse3"', async () => {
    // A non-root user needs a /dev/fuse it may open: distributions make it 0666 (udev), but some
    // containers create it 0600, where only root can mount at all (the next test covers that case).
    // Give it the usual mode for this test, and put back what it was.
    const device = await fs.stat('/dev/fuse');
    const restore = device.mode & 0o777;
    if ((restore & 0o006) !== 0o006) await fs.chmod('/dev/fuse', 0o666);
    try {
      await refusedThenOwnDirectory();
    } finally {
      if ((restore & 0o006) !== 0o006) await fs.chmod('/dev/fuse', restore);
    }
  });

  it.skipIf(!ROOT)('a user who may not open /dev/fuse (a 0600 device) gets FUSE_UNAVAILABLE naming the device and EACCES', async () => {
    const device = await fs.stat('/dev/fuse');
    const restore = device.mode & 0o777;
    await fs.chmod('/dev/fuse', 0o600);
    try {
      const own = await mountpoint('nobodys-no-device');
      await fs.chown(own, NOBODY, NOBODY);
      const r = await mountAs(NOBODY, [archive, own]);
      expect(r.code, r.stderr).toBe(ERROR_TABLE.FUSE_UNAVAILABLE.exit);
      expect(r.stderr).toContain('FUSE is not available: cannot open /dev/fuse (EACCES)');
      expect(await isMounted(own)).toBe(false);
    } finally {
      await fs.chmod('/dev/fuse', restore);
    }
  });

  async function refusedThenOwnDirectory(): Promise<void> {
    // fusermount3 lets a non-root user mount only on a directory that user can write.
    const mp = await mountpoint('roots-only');
    const r = await mountAs(NOBODY, [archive, mp]);
    expect(r.code, r.stderr).toBe(ERROR_TABLE.PERMISSION.exit);
    expect(r.stderr).toContain(`mounting ${mp} failed`);
    expect(r.stderr).toContain('you may only mount on a directory you can write');
    expect(r.stderr).not.toContain('FUSE is not available');
    expect(r.stderr).not.toContain('apt-get install');
    expect(await isMounted(mp)).toBe(false);

    // The same user on a directory of its own mounts fine: FUSE itself was never the problem.
    const own = await mountpoint('nobodys');
    await fs.chown(own, NOBODY, NOBODY);
    const child = spawn(process.execPath, [CLI, 'mount', archive, own], { uid: NOBODY, gid: NOBODY, env: { ...process.env, HEXZ_PROGRESS: '0', HOME: '/tmp' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const until = Date.now() + 30_000;
    while (!stderr.includes('(read-only)') && Date.now() < until && child.exitCode === null) await new Promise((res) => setTimeout(res, 25));
    expect(stderr).toContain(`hexz: mounted ${archive} at ${own} (read-only)`);
    // Without allow_other only the mounting user may enter, not even root: read as that user.
    const cat = await run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'cat', path.join(own, 'dir/b.txt')]);
    expect(cat.stdout.toString()).toBe('beta\n');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await isMounted(own)).toBe(false);
  }
});
