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
import { CLI, run } from '../helpers/cli.js';

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
