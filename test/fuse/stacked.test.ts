/**
 * Mountpoints that are already mount points: in Kubernetes the sidecar's /data is always one (the
 * emptyDir volume is a bind mount), so here a directory is bind-mounted onto the mountpoint
 * (`mount --bind`) and `hexz mount` goes on top of it. The serving process must track its own mount
 * exactly: an external `fusermount -u` ends it, SIGTERM unmounts only the FUSE mount, and the bind
 * mount underneath is never touched. Every access to the mount is made by child processes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { hexz, run } from '../helpers/cli.js';
import { writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { childPids, FUSE_DEVICE_PRESENT, mountsAt, startMount, waitFor, type RunningMount } from './mount-helper.js';

/** fstype of each mount at `mp`, in mount-table order (bottom first). */
async function fstypesAt(mp: string): Promise<string[]> {
  return (await mountsAt(mp)).map((l) => l.split(' ')[2]);
}

const isFuse = (t: string) => t.startsWith('fuse');

/** Lazily unmount every FUSE mount stacked at `mp`, leaving other mounts alone. */
async function clearFuse(mp: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const types = await fstypesAt(mp);
    if (!types.length || !isFuse(types[types.length - 1])) return;
    await run('fusermount3', ['-uz', mp]);
  }
}

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount over a mountpoint that is already a mount (bind mount / emptyDir)', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let archive: string;
  let mp: string;
  let under: string;
  let current: RunningMount | undefined;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-stacked-');
    const src = path.join(tmp.dir, 'src');
    await writeTree(src, { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' });
    archive = path.join(tmp.dir, 'stacked.hxz');
    await pack(src, archive, { threads: 1 });
    under = path.join(tmp.dir, 'volume');
    await writeTree(under, { 'under.txt': 'from the volume\n' });
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(mp);
  });

  beforeEach(async () => {
    const r = await run('mount', ['--bind', under, mp]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fstypesAt(mp)).toHaveLength(1);
  });

  afterEach(async () => {
    await current?.stop('SIGTERM');
    current = undefined;
    await clearFuse(mp);
    while ((await fstypesAt(mp)).length) {
      const r = await run('umount', ['-l', mp]);
      if (r.code !== 0) break;
    }
  });

  afterAll(async () => {
    await clearFuse(mp);
    await tmp?.cleanup();
  });

  /** The bind mount is still there, alone, and shows the volume's file (checked by a child process). */
  async function expectVolumeIntact(): Promise<void> {
    const types = await fstypesAt(mp);
    expect(types).toHaveLength(1);
    expect(isFuse(types[0])).toBe(false);
    const cat = await run('cat', [path.join(mp, 'under.txt')]);
    expect(cat.stdout.toString()).toBe('from the volume\n');
  }

  it('mounts on top of the bind mount and serves the archive; SIGTERM unmounts only the FUSE mount', async () => {
    current = await startMount(archive, mp);
    const types = await fstypesAt(mp);
    expect(types).toHaveLength(2);
    expect(types[1]).toBe('fuse.hexz');
    const cat = await run('cat', [path.join(mp, 'a.txt'), path.join(mp, 'dir/b.txt')]);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout.toString()).toBe('alpha\nbeta\n');
    const ls = await run('ls', ['-A', mp]);
    expect(ls.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['a.txt', 'dir']);

    const exit = await current.stop('SIGTERM');
    current = undefined;
    expect(exit.code).toBe(0);
    await expectVolumeIntact();
  });

  it('an external fusermount -u is noticed: the process logs it and exits 0, the bind mount stays', async () => {
    current = await startMount(archive, mp);
    const r = await run('fusermount3', ['-u', mp]);
    expect(r.code, r.stderr).toBe(0);
    const exit = await current.exited;
    expect(exit.code, current.stderr()).toBe(0);
    expect(current.stderr()).toContain(`hexz: ${mp} was unmounted`);
    expect(current.stderr()).not.toContain('refusing');
    await expect(fs.access(current.readyFile)).rejects.toThrow();
    current = undefined;
    await expectVolumeIntact();
  });

  it('hexz unmount removes the FUSE mount only; a second one refuses the bind mount', async () => {
    current = await startMount(archive, mp);
    const r = await hexz(['unmount', mp]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(`unmounted ${mp}\n`);
    expect((await current.exited).code).toBe(0);
    current = undefined;
    await expectVolumeIntact();
    const again = await hexz(['unmount', mp]);
    expect(again.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(again.stderr).toContain('not a FUSE mount; refusing to unmount it');
    await expectVolumeIntact();
  });

  it('refuses a live FUSE mount on top, and clears a stale one left over the bind mount', async () => {
    const first = await startMount(archive, mp);
    const busy = await hexz(['mount', archive, mp]);
    expect(busy.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(busy.stderr).toContain(`${mp} is already a live FUSE mount`);

    // Kill the server and its auto-unmount watchdog: a stale mount stays on top of the bind mount.
    for (const w of await childPids(first.child.pid!)) process.kill(w, 'SIGKILL');
    await first.stop('SIGKILL');
    expect(await fstypesAt(mp)).toEqual([expect.any(String), 'fuse.hexz']);

    current = await startMount(archive, mp);
    expect(current.stderr()).toContain(`hexz: clearing a stale mount at ${mp}`);
    expect(await fstypesAt(mp)).toHaveLength(2);
    const cat = await run('cat', [path.join(mp, 'a.txt')]);
    expect(cat.stdout.toString()).toBe('alpha\n');
    const exit = await current.stop('SIGTERM');
    current = undefined;
    expect(exit.code).toBe(0);
    await waitFor(async () => (await fstypesAt(mp)).length === 1, 'the FUSE mount to go');
    await expectVolumeIntact();
  });
});
