/**
 * Real FUSE mounts for tests: `hexz mount` runs in a child process (the built CLI, as users run it),
 * and every check on the mount is made by other child processes (find, stat, sha256sum, dd, cmp, a
 * small node reader). The test process itself only reads /proc/self/mounts and files outside the
 * mount: a process must never make synchronous fs calls on a mount it serves, and keeping every
 * access in children means no test can ever deadlock on one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, run } from '../helpers/cli.js';

/** The built fuse/mount.js (what `hexz mount` runs). */
const MOUNT_MODULE = fileURLToPath(new URL('../../dist/fuse/mount.js', import.meta.url));

/**
 * `HEXZ_TEST_REQUIRE_FUSE=1` (set by .ci/run): the FUSE suites must run. On a machine where FUSE is
 * not usable, every test file importing this helper then fails to load with the reason, instead of
 * its FUSE suites being skipped. Unset (local runs), a machine without /dev/fuse skips them.
 */
export const FUSE_REQUIRED = process.env.HEXZ_TEST_REQUIRE_FUSE === '1';

/**
 * Why FUSE is not usable here, in `hexz mount`'s own words (its `checkFuseAvailable`: the device
 * opens read-write, a fusermount helper exists, a binding loads — libfuse3's, or fuse-native with
 * libfuse.so.2), or undefined when it is. Runs in a child process, so the test process never loads
 * a native addon.
 */
export async function fuseUnavailableReason(): Promise<string | undefined> {
  const script = 'const m = await import(process.argv[1]); try { await m.checkFuseAvailable(); } catch (e) { console.error(e.message); process.exit(24); }';
  const r = await run(process.execPath, ['--input-type=module', '-e', script, MOUNT_MODULE]);
  return r.code === 0 ? undefined : r.stderr.trim() || `checking FUSE failed with exit code ${r.code}`;
}

if (FUSE_REQUIRED) {
  const why = await fuseUnavailableReason();
  if (why) {
    throw new Error(
      `HEXZ_TEST_REQUIRE_FUSE=1 (set by .ci/run) requires real FUSE mounts, but FUSE is not usable on this machine, ` +
        `so the FUSE suites fail instead of being skipped. ${why} ` +
        `(Unset HEXZ_TEST_REQUIRE_FUSE to skip the FUSE suites on a machine without FUSE.)`,
    );
  }
}

/**
 * The libfuse3 binding was built (npm ci compiles it when libfuse3-dev and a compiler are there; see
 * fuse/native). Without it `hexz mount` uses fuse-native, and the binding's own suites skip, unless
 * FUSE_REQUIRED, where they fail.
 */
export const FUSE3_BUILT = existsSync(fileURLToPath(new URL('../../node_modules/hexz-fuse3/build/Release/hexz_fuse3.node', import.meta.url)));

/** FUSE tests need /dev/fuse; without it the whole suite is skipped with this message. */
export const FUSE_DEVICE_PRESENT = existsSync('/dev/fuse');
export const SKIP_MESSAGE = 'skipping the FUSE suite: /dev/fuse is missing (apt-get install -y fuse3 libfuse2; in containers --device /dev/fuse --cap-add SYS_ADMIN)';
if (!FUSE_DEVICE_PRESENT) console.warn(SKIP_MESSAGE);

/** How long a mount may take to become ready (opening an S3 archive on a slow test server included). */
const READY_DEADLINE_MS = 60_000;

export interface RunningMount {
  mountpoint: string;
  readyFile: string;
  child: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** Resolves with the exit of the mount process. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Send a signal and wait for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Poll `check` until it is true; fails with `what` after `deadlineMs` (a deadline, not a timing assertion). */
export async function waitFor(check: () => Promise<boolean>, what: string, deadlineMs = 20_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Entries of /proc/self/mounts at `mountpoint` (canonical path). Never touches the mount itself. */
export async function mountsAt(mountpoint: string): Promise<string[]> {
  const table = await fs.readFile('/proc/self/mounts', 'utf8');
  return table.split('\n').filter((l) => l.split(' ')[1] === mountpoint.replace(/ /g, '\\040'));
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountsAt(mountpoint)).length > 0;
}

/** Unmount whatever is left at `mountpoint` (lazily, so a failed test never leaves a stale mount). */
export async function forceUnmount(mountpoint: string): Promise<void> {
  for (let i = 0; i < 5 && (await isMounted(mountpoint)); i++) {
    const r = await run('fusermount3', ['-uz', mountpoint]);
    if (r.code !== 0) await run('fusermount', ['-uz', mountpoint]);
  }
}

/**
 * Start `hexz [globalArgs] mount ARCHIVE MOUNTPOINT --ready-file … [args]` in a child process and
 * resolve once the ready file exists. Rejects with the child's stderr if it exits first.
 */
export async function startMount(
  archive: string,
  mountpoint: string,
  opts: { env?: Record<string, string>; args?: string[]; globalArgs?: string[]; detached?: boolean } = {},
): Promise<RunningMount> {
  const readyFile = path.join(path.dirname(mountpoint), `.${path.basename(mountpoint)}.ready`);
  await fs.rm(readyFile, { force: true });
  const child = spawn(process.execPath, [CLI, ...(opts.globalArgs ?? []), 'mount', archive, mountpoint, '--ready-file', readyFile, ...(opts.args ?? [])], {
    env: { ...process.env, HEXZ_PROGRESS: '0', ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: opts.detached,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  const until = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (done) throw new Error(`hexz mount exited before it was ready: ${stderr}`);
    if (existsSync(readyFile)) break;
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`hexz mount was not ready within ${READY_DEADLINE_MS} ms: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    mountpoint,
    readyFile,
    child,
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
      return exited;
    },
  };
}

/** Pids of the direct children of `pid` (fusermount's auto-unmount watchdog of a mount process). */
export async function childPids(pid: number): Promise<number[]> {
  const r = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]);
  return r.stdout
    .toString()
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

/** `sha256sum` of every regular file below `dir`, run in a child process: relative path → hex digest. */
export async function sha256Tree(dir: string): Promise<Record<string, string>> {
  const r = await run('bash', ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum', 'sha', dir]);
  if (r.code !== 0) throw new Error(`sha256sum failed in ${dir}: ${r.stderr}`);
  const out: Record<string, string> = {};
  for (const line of r.stdout.toString().split('\n')) {
    const m = /^([0-9a-f]{64}) {2}\.\/(.*)$/.exec(line);
    if (m) out[m[2]] = m[1];
  }
  return out;
}

/**
 * What a `withoutFuse` namespace takes away: the device, the fusermount helpers, both FUSE libraries
 * ('library': libfuse.so.2 and libfuse3.so.3), or only libfuse3.so.3 ('libfuse3': the mount falls
 * back to fuse-native).
 */
export type MissingFusePart = 'device' | 'helper' | 'library' | 'libfuse3';

/** Where `checkFuseAvailable` looks for fusermount (fuse/mount.ts HELPER_DIRS). */
const FUSERMOUNT_PATHS = ['/bin', '/usr/bin', '/usr/local/bin', '/sbin', '/usr/sbin'].flatMap((d) => [`${d}/fusermount`, `${d}/fusermount3`]);

/** Whether this process may make private mount namespaces (`unshare -m`: root with CAP_SYS_ADMIN). */
export async function canUnshareMounts(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const r = await run('unshare', ['-m', '--propagation', 'private', 'true']).catch(() => undefined);
  return r?.code === 0;
}

/** The shared library `lib` (a name like libfuse.so.2) that the native addon `addon` links against, from `ldd`. */
async function linkedLibrary(addon: string, lib: string): Promise<string> {
  const r = await run('ldd', [addon]);
  const m = new RegExp(`${lib.replace(/\./g, '\\.')} => (\\/\\S+)`).exec(r.stdout.toString());
  if (!m) throw new Error(`ldd ${addon} names no ${lib}: ${r.stdout.toString()}${r.stderr}`);
  return m[1];
}

/** libfuse.so.2 of fuse-native's prebuilt addon. */
const libfuse2Path = () => linkedLibrary(fileURLToPath(new URL(`../../node_modules/fuse-native/prebuilds/linux-${process.arch}/node.napi.node`, import.meta.url)), 'libfuse.so.2');
/** libfuse3.so.3 of the libfuse3 binding (fuse/native, built by npm ci). */
const libfuse3Path = () => linkedLibrary(fileURLToPath(new URL('../../node_modules/hexz-fuse3/build/Release/hexz_fuse3.node', import.meta.url)), 'libfuse3.so.3');

/**
 * The argv that runs `cmd args…` the way it would run on a machine where one part of FUSE is missing,
 * with nothing on this machine changed: in a private mount namespace (`unshare -m`, gone with the
 * process) where /dev is a fresh tmpfs holding only null, zero, random… but no fuse ('device'), every
 * fusermount is covered by an empty non-executable file ('helper'), or libfuse.so.2 and libfuse3.so.3
 * ('library') or libfuse3.so.3 alone ('libfuse3') are covered by an empty file, which the dynamic
 * loader refuses. Needs `canUnshareMounts()`.
 */
export async function withoutFuse(missing: MissingFusePart, cmd: string, args: string[]): Promise<{ cmd: string; args: string[] }> {
  // Scratch files live on a tmpfs mounted at /mnt inside the namespace: nothing outside it changes.
  const scratch = `mount -t tmpfs -o mode=755 hexz-test-no-fuse-${missing} /mnt`;
  let setup: string;
  if (missing === 'device') {
    setup =
      `${scratch} && for n in null zero full random urandom tty; do if [ -e /dev/$n ]; then : > /mnt/$n && mount --bind /dev/$n /mnt/$n; fi; done` +
      ' && ln -s /proc/self/fd /mnt/fd && ln -s /proc/self/fd/0 /mnt/stdin && ln -s /proc/self/fd/1 /mnt/stdout && ln -s /proc/self/fd/2 /mnt/stderr' +
      ' && mount --move /mnt /dev';
  } else if (missing === 'helper') {
    setup = `${scratch} && : > /mnt/empty && for p in ${FUSERMOUNT_PATHS.join(' ')}; do if [ -e "$p" ]; then mount --bind /mnt/empty "$p"; fi; done`;
  } else {
    const libs = missing === 'library' ? [await libfuse2Path(), await libfuse3Path()] : [await libfuse3Path()];
    setup = `${scratch} && : > /mnt/empty${libs.map((l) => ` && mount --bind /mnt/empty ${l}`).join('')}`;
  }
  return { cmd: 'unshare', args: ['-m', '--propagation', 'private', 'sh', '-c', `set -e; ${setup}; exec "$@"`, 'sh', cmd, ...args] };
}
