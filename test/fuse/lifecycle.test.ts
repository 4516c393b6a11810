/**
 * The life of a mount process: readiness, SIGTERM/SIGINT unmount cleanly, SIGKILL leaves no stale
 * mount (auto_unmount), `hexz unmount` on live, stale and non-mounts, a stale mountpoint reused,
 * bad mountpoints, and the FUSE_UNAVAILABLE message.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE, HexzError } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { checkFuseAvailable, FUSE_INSTALL_HINT } from '@hexz/fuse/mount.js';
import { hexz, run } from '../helpers/cli.js';
import { writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { childPids, FUSE_DEVICE_PRESENT, forceUnmount, isMounted, startMount, waitFor, type RunningMount } from './mount-helper.js';

describe('FUSE availability', () => {
  it('a missing device is FUSE_UNAVAILABLE with what to install and how to run containers', async () => {
    const err = await checkFuseAvailable({ device: '/nonexistent/fuse' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HexzError);
    expect((err as HexzError).code).toBe('FUSE_UNAVAILABLE');
    expect((err as HexzError).message).toContain('/nonexistent/fuse does not exist');
    expect((err as HexzError).message).toContain('apt-get install -y fuse3 libfuse2');
    expect((err as HexzError).message).toContain('--device /dev/fuse --cap-add SYS_ADMIN');
    expect(FUSE_INSTALL_HINT).toContain('privileged');
    expect(ERROR_TABLE.FUSE_UNAVAILABLE.exit).toBe(24);
  });
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount / hexz unmount: lifecycle', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let archive: string;
  let mp: string;
  let current: RunningMount | undefined;

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-life-');
    const src = path.join(tmp.dir, 'src');
    await writeTree(src, { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' });
    archive = path.join(tmp.dir, 'life.hxz');
    await pack(src, archive, { threads: 1 });
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(mp);
  });

  afterEach(async () => {
    if (current) {
      // Kill the watchdog too only if a test left things half-done; normally stop() is enough.
      await current.stop('SIGTERM');
      current = undefined;
    }
    await forceUnmount(mp);
  });

  afterAll(async () => {
    await forceUnmount(mp);
    await tmp?.cleanup();
  });

  it('SIGTERM unmounts cleanly, removes the ready file and exits 0', async () => {
    current = await startMount(archive, mp);
    expect(await isMounted(mp)).toBe(true);
    const ready = JSON.parse(await fs.readFile(current.readyFile, 'utf8'));
    expect(ready).toMatchObject({ mountpoint: mp, archive, pid: current.child.pid });
    const cat = await run('cat', [path.join(mp, 'dir/b.txt')]);
    expect(cat.stdout.toString()).toBe('beta\n');
    const exit = await current.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(current.stderr()).toContain(`hexz: unmounted ${mp}`);
    expect(await isMounted(mp)).toBe(false);
    await expect(fs.access(current.readyFile)).rejects.toThrow();
    current = undefined;
  });

  it('SIGINT (Ctrl-C) does the same', async () => {
    current = await startMount(archive, mp);
    const exit = await current.stop('SIGINT');
    expect(exit.code).toBe(0);
    expect(await isMounted(mp)).toBe(false);
    current = undefined;
  });

  it('--quiet still prints the readiness line (and errors), nothing else', async () => {
    current = await startMount(archive, mp, { globalArgs: ['--quiet'] });
    expect(current.stderr()).toBe(`hexz: mounted ${archive} at ${mp} (read-only)\n`);
    const exit = await current.stop('SIGTERM');
    current = undefined;
    expect(exit.code).toBe(0);
    expect(await isMounted(mp)).toBe(false);
  });

  it('mount --help lists --cache-size (a global option) and what --quiet keeps', async () => {
    const r = await hexz(['mount', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/--cache-size <size>\s+block cache budget/);
    expect(r.stdout.toString()).toContain('--ready-file <path>');
    expect(r.stdout.toString()).toContain('With --quiet only errors and the readiness line');
  });

  it('SIGKILL leaves no stale mount: the auto-unmount watchdog removes it', async () => {
    current = await startMount(archive, mp);
    const exit = await current.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    current = undefined;
    await waitFor(async () => !(await isMounted(mp)), 'the watchdog to unmount after SIGKILL');
    const ls = await run('ls', ['-A', mp]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.toString()).toBe('');
  });

  it('hexz unmount clears a stale mount (server and watchdog both killed)', async () => {
    current = await startMount(archive, mp);
    const pid = current.child.pid!;
    const watchdogs = await childPids(pid);
    expect(watchdogs.length).toBeGreaterThan(0);
    for (const w of watchdogs) process.kill(w, 'SIGKILL');
    await current.stop('SIGKILL');
    current = undefined;
    expect(await isMounted(mp)).toBe(true);
    const ls = await run('ls', [mp]);
    expect(ls.stderr).toContain('Transport endpoint is not connected');

    const r = await hexz(['unmount', mp]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toContain(`unmounted ${mp} (stale mount cleared)`);
    expect(await isMounted(mp)).toBe(false);
  });

  it('mounting over a stale mount clears it first (a restarted sidecar)', async () => {
    const first = await startMount(archive, mp);
    for (const w of await childPids(first.child.pid!)) process.kill(w, 'SIGKILL');
    await first.stop('SIGKILL');
    expect(await isMounted(mp)).toBe(true);
    current = await startMount(archive, mp);
    expect(current.stderr()).toContain(`hexz: clearing a stale mount at ${mp}`);
    const cat = await run('cat', [path.join(mp, 'a.txt')]);
    expect(cat.stdout.toString()).toBe('alpha\n');
  });

  it('hexz unmount of a live mount ends the serving process; a second one says it is not mounted', async () => {
    current = await startMount(archive, mp);
    const r = await hexz(['unmount', mp]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(`unmounted ${mp}\n`);
    const exit = await current.exited;
    expect(exit.code).toBe(0);
    expect(current.stderr()).toContain(`hexz: ${mp} was unmounted`);
    current = undefined;

    const again = await hexz(['unmount', mp]);
    expect(again.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(again.stderr).toContain(`${mp} is not mounted`);
  });

  it('hexz unmount refuses a mount that is not FUSE', async () => {
    const r = await hexz(['unmount', '/proc']);
    expect(r.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(r.stderr).toContain('not a FUSE mount');
  });

  it('bad mountpoints and archives fail clearly without mounting', async () => {
    const missing = await hexz(['mount', archive, path.join(tmp.dir, 'no-such-dir')]);
    expect(missing.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(missing.stderr).toContain('does not exist');

    const file = await hexz(['mount', archive, archive]);
    expect(file.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(file.stderr).toContain('is not a directory');

    const noArchive = await hexz(['mount', path.join(tmp.dir, 'missing.hxz'), mp]);
    expect(noArchive.code).toBe(ERROR_TABLE.ARCHIVE_NOT_FOUND.exit);
    expect(await isMounted(mp)).toBe(false);

    current = await startMount(archive, mp);
    const busy = await hexz(['mount', archive, mp]);
    expect(busy.code).toBe(ERROR_TABLE.INVALID_ARGUMENT.exit);
    expect(busy.stderr).toContain('is already a live FUSE mount');
  });
});
