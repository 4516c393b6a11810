/**
 * Unmounting FUSE filesystems, live or stale, and reading the mount table.
 *
 * A FUSE mount whose server died without unmounting (SIGKILL of both the server and fusermount's
 * auto-unmount watchdog, an OOM kill of the pod's sidecar…) stays in the mount table and answers
 * every access the kernel cannot answer from its caches with ENOTCONN: a "stale" mount. Nothing can
 * be using it usefully, so it is detached lazily (`fusermount -uz`), which always succeeds. A live mount is first unmounted normally, which fails while files are open (EBUSY); after a grace
 * period a lazy unmount detaches it anyway.
 *
 * Nothing here touches the mount synchronously: everything is async fs calls or child processes, so
 * the process that serves a mount can call it on its own mount without deadlocking.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError } from '../src/errors.js';

/** One line of /proc/self/mounts, unescaped. */
export interface MountRecord {
  source: string;
  mountpoint: string;
  fstype: string;
  options: string[];
}

export interface UnmountOptions {
  /** Keep retrying a plain unmount this long while the mount is busy, then detach lazily. */
  graceMs?: number;
  /** Never detach lazily: fail with the busy error after the grace period instead. */
  noLazy?: boolean;
  /**
   * Unmount exactly this mount (a serving process's own, identified right after mounting): nothing
   * else at the path, and `INVALID_ARGUMENT` "not mounted" once it is gone.
   */
  mount?: { id: number; device: string };
}

export interface UnmountResult {
  mountpoint: string;
  /** The mount was stale (its server gone). */
  stale: boolean;
  /** It had to be detached lazily (stale, or still busy after the grace period). */
  lazy: boolean;
}

/** Default grace for busy mounts: long enough for readers to close files, short of k8s' 30 s. */
export const DEFAULT_UNMOUNT_GRACE_MS = 5_000;
/** Pause between unmount attempts while busy. */
const BUSY_RETRY_MS = 200;
const MOUNTS_FILE = '/proc/self/mounts';
const MOUNTINFO_FILE = '/proc/self/mountinfo';
/** Unmount helpers, in order of preference: fuse3's, the libfuse2 name (a symlink to it on fuse3 systems). */
const FUSERMOUNTS = ['fusermount3', 'fusermount'];

/**
 * Undo the octal escapes of /proc/self/mounts and mountinfo (`\040` space, `\011` tab, `\012`
 * newline, `\134` backslash), giving the path as the kernel has it.
 */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse the text of /proc/self/mounts. Pure, for tests. */
export function parseMountTable(text: string): MountRecord[] {
  const out: MountRecord[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    out.push({ source: unescapeMountField(f[0]), mountpoint: unescapeMountField(f[1]), fstype: f[2], options: f[3].split(',') });
  }
  return out;
}

/** The mount table of this process's mount namespace (async; never touches any mount). */
export async function readMountTable(): Promise<MountRecord[]> {
  return parseMountTable(await fs.readFile(MOUNTS_FILE, 'utf8'));
}

/** One line of /proc/self/mountinfo, unescaped: a mount record with its identity. */
export interface MountInfo extends MountRecord {
  /** Mount ID: unique among the namespace's current mounts (reused only after an unmount). */
  id: number;
  /** Mount ID of the parent: for a mount stacked on another at the same path, that mount. */
  parentId: number;
  /** `major:minor` of the filesystem (FUSE: an anonymous device, one per mount). */
  device: string;
}

/** Parse the text of /proc/self/mountinfo (`proc(5)`). Pure, for tests. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields…] - fstype source superoptions
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const g = line.slice(sep + 3).split(' ');
    if (f.length < 6 || g.length < 2) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2],
      mountpoint: unescapeMountField(f[4]),
      options: f[5].split(','),
      fstype: g[0],
      source: unescapeMountField(g[1]),
    });
  }
  return out;
}

/** The mountinfo of this process's mount namespace (async; never touches any mount). */
export async function readMountInfo(): Promise<MountInfo[]> {
  return parseMountInfo(await fs.readFile(MOUNTINFO_FILE, 'utf8'));
}

/** True for FUSE filesystem types (`fuse`, `fuse.hexz`, `fuseblk`, `fuse3.x`). */
export function isFuseType(fstype: string): boolean {
  return /^fuse(blk|3)?(\.|$)/.test(fstype);
}

/**
 * The absolute path of a mountpoint as the mount table spells it, without stat-ing the mountpoint
 * itself (a stale one answers ENOTCONN): only its parent is resolved.
 */
export async function canonicalMountpoint(input: string): Promise<string> {
  const abs = path.resolve(input);
  if (abs === '/') return abs;
  const parent = await fs.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
  return path.join(parent, path.basename(abs));
}

/**
 * The mounts stacked at `mountpoint` (canonical), bottom first: the last one is what the path shows.
 * Mounting on a path that is already a mount point puts the new mount on top, as a child of the one
 * below, so the order follows the parent links (mount-table order where they say nothing). Pure.
 */
export function mountStack(table: MountInfo[], mountpoint: string): MountInfo[] {
  const here = table.filter((m) => m.mountpoint === mountpoint);
  const ids = new Set(here.map((m) => m.id));
  const stack: MountInfo[] = [];
  const placed = new Set<number>();
  // Bottom: parents elsewhere. Then each next one is a child of the previous; leftovers go on top.
  let next = here.filter((m) => !ids.has(m.parentId));
  while (next.length) {
    for (const m of next) {
      stack.push(m);
      placed.add(m.id);
    }
    const below = new Set(next.map((m) => m.id));
    next = here.filter((m) => !placed.has(m.id) && below.has(m.parentId));
  }
  for (const m of here) if (!placed.has(m.id)) stack.push(m);
  return stack;
}

/** The mount the path `mountpoint` (canonical) shows, whatever its type, if any. */
export async function findMount(mountpoint: string): Promise<MountInfo | undefined> {
  return mountStack(await readMountInfo(), mountpoint).at(-1);
}

/**
 * The topmost FUSE mount at `mountpoint` (canonical), and whether something else covers it. Other
 * mounts below it (a bind mount, Kubernetes' emptyDir volume) do not matter.
 */
export async function findFuseMount(mountpoint: string): Promise<{ record: MountInfo; covered?: MountInfo } | undefined> {
  const stack = mountStack(await readMountInfo(), mountpoint);
  for (let i = stack.length - 1; i >= 0; i--) {
    if (isFuseType(stack[i].fstype)) return { record: stack[i], covered: i < stack.length - 1 ? stack[stack.length - 1] : undefined };
  }
  return undefined;
}

/** The mount with this ID if it is still mounted at `mountpoint`, on `device`. */
export async function findMountById(id: number, mountpoint: string, device: string): Promise<MountInfo | undefined> {
  return (await readMountInfo()).find((m) => m.id === id && m.mountpoint === mountpoint && m.device === device);
}

/** How long a mount may take to answer an opendir before it counts as hung (and is treated as stale). */
const RESPONSE_TIMEOUT_MS = 2_000;

/**
 * True when `mountpoint` is a mount whose server is gone (ENOTCONN) or does not answer. It opens the
 * directory rather than stat-ing it: with long attribute caching the kernel answers a stat of a dead
 * mount from its cache, an open always goes to the server. Async, so safe from the serving process.
 */
export async function isStaleMount(mountpoint: string): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), RESPONSE_TIMEOUT_MS);
  });
  const probe = fs.opendir(mountpoint).then(
    async (dir) => {
      await dir.close();
      return 'ok' as const;
    },
    (err: NodeJS.ErrnoException) => (err.code === 'ENOTCONN' ? ('stale' as const) : ('ok' as const)),
  );
  try {
    return (await Promise.race([probe, timeout])) !== 'ok';
  } finally {
    clearTimeout(timer);
  }
}

interface ExecResult {
  ok: boolean;
  missing: boolean;
  message: string;
}

function exec(cmd: string, args: string[]): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve({ ok: true, missing: false, message: '' });
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      resolve({ ok: false, missing, message: (stderr || err.message).trim() });
    });
  });
}

/**
 * One unmount attempt with the first helper that exists: fusermount3, fusermount, then umount(8)
 * when running as root (containers without fuse3's helper).
 */
async function unmountOnce(mountpoint: string, lazy: boolean): Promise<ExecResult> {
  const flag = lazy ? '-uz' : '-u';
  let last: ExecResult = { ok: false, missing: true, message: 'no fusermount3, fusermount or umount found' };
  for (const helper of FUSERMOUNTS) {
    last = await exec(helper, [flag, mountpoint]);
    if (!last.missing) return last;
  }
  if (process.getuid?.() === 0) {
    const r = await exec('umount', lazy ? ['-l', mountpoint] : [mountpoint]);
    if (!r.missing) return r;
  }
  return last;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Unmount the FUSE filesystem at `mountpoint`: a stale one lazily at once, a live one normally,
 * retried for `graceMs` while busy, then lazily. Looks for the topmost FUSE mount at the path, so a
 * bind mount or volume underneath (Kubernetes' emptyDir) is never touched; refuses a path whose only
 * mounts are not FUSE (so a mistyped path never unmounts a real filesystem) and a FUSE mount that
 * something else covers. `INVALID_ARGUMENT` when nothing is mounted there.
 */
export async function unmountFuse(mountpoint: string, opts: UnmountOptions = {}): Promise<UnmountResult> {
  const mp = await canonicalMountpoint(mountpoint);
  const stack = mountStack(await readMountInfo(), mp);
  const top = stack.at(-1);
  const record = opts.mount ? stack.find((m) => m.id === opts.mount!.id && m.device === opts.mount!.device) : stack.findLast((m) => isFuseType(m.fstype));
  if (!record) {
    if (!top || opts.mount) throw new HexzError('INVALID_ARGUMENT', `${mp} is not mounted`, { path: mp });
    throw new HexzError('INVALID_ARGUMENT', `${mp} is a ${top.fstype} mount, not a FUSE mount; refusing to unmount it`, { path: mp });
  }
  if (record !== top) {
    throw new HexzError('INVALID_ARGUMENT', `the FUSE mount at ${mp} is covered by a ${top!.fstype} mount (from ${top!.source}); unmount that first`, { path: mp });
  }
  const gone = async () => !(await findMountById(record.id, mp, record.device));
  const stale = await isStaleMount(mp);
  if (stale) {
    const r = await unmountOnce(mp, true);
    if (!r.ok && !(await gone())) throw new HexzError('PERMISSION', `cannot clear the stale mount at ${mp}: ${r.message}`, { path: mp });
    return { mountpoint: mp, stale: true, lazy: true };
  }
  const deadline = Date.now() + (opts.graceMs ?? DEFAULT_UNMOUNT_GRACE_MS);
  for (;;) {
    const r = await unmountOnce(mp, false);
    // Gone either way (we unmounted it, or its server or someone else did meanwhile).
    if (r.ok || (await gone())) return { mountpoint: mp, stale: false, lazy: false };
    const busy = /busy/i.test(r.message);
    if (!busy && !r.missing && !/not connected/i.test(r.message)) {
      throw new HexzError('PERMISSION', `cannot unmount ${mp}: ${r.message}`, { path: mp });
    }
    if (r.missing) throw new HexzError('FUSE_UNAVAILABLE', `cannot unmount ${mp}: ${r.message} (install fuse3)`, { path: mp });
    if (Date.now() >= deadline) break;
    await sleep(BUSY_RETRY_MS);
  }
  if (opts.noLazy) throw new HexzError('PERMISSION', `cannot unmount ${mp}: still busy (files open or a process inside it)`, { path: mp });
  const r = await unmountOnce(mp, true);
  if (!r.ok && !(await gone())) throw new HexzError('PERMISSION', `cannot unmount ${mp}: ${r.message}`, { path: mp });
  return { mountpoint: mp, stale: false, lazy: true };
}
