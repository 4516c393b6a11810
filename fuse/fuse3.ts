/**
 * The libfuse3 binding (fuse/native, an N-API addon built from Debian's libfuse3-dev) as a drop-in
 * for fuse-native: `new Fuse3(mountpoint, ops, opts)`, `mount(cb)`, `unmount(cb)`, errno constants as
 * statics (`Fuse3.ENOENT === -2`), and the same operations table with fuse-native's documented
 * callback conventions (its README), so ./ops.ts and ./reopen.ts run on either binding unchanged.
 * Threading, zero-copy reads and request sizes are explained at the top of fuse/native/hexz_fuse3.c;
 * docs/operations.md ("FUSE mounts") has the measurements.
 *
 * What libfuse3 adds, beyond fuse-native's table:
 * - open/create/opendir callbacks take a third argument, `{ keepCache, directIo, nonseekable,
 *   cacheReaddir, noflush }` (fuse_file_info's flags);
 * - `rename2(src, dest, flags, cb)` for renameat2's RENAME_NOREPLACE (1) / RENAME_EXCHANGE (2); without
 *   it, a rename with flags answers EINVAL; `fallocate(path, fd, mode, offset, length, cb)`;
 * - `context()`: uid, gid, pid and umask of the caller, and `flags` (open flags) for create, valid
 *   during the synchronous part of an operation (the overlay needs them for create);
 * - `stats()`: the read requests the kernel sent (count, bytes, largest, per size) and what INIT
 *   negotiated; tests and benchmarks assert large requests with it.
 *
 * Where it differs from fuse-native: fgetattr, ftruncate and utimens get what their names say (fuse-
 * native passes getattr's result, and atime twice); fsync/fsyncdir take (path, fd, datasync) as its
 * README says; paths are UTF-8 strings (a name that is not valid UTF-8 arrives mangled, as there);
 * utimens gets fractional milliseconds and NaN for UTIME_OMIT; an operation that never answers fails
 * with ETIMEDOUT after `timeout` in the native layer, so a blocked event loop cannot hang the kernel.
 *
 * Why this file is longer than 400 lines: the typed operations table (fuse-native's, documented) and
 * the one dispatcher that maps the native requests onto it belong together; split, every change of a
 * signature would have to be made in two places.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

/** Operation codes of the native dispatcher (keep in step with the enum in hexz_fuse3.c). */
const OP = {
  END: 0, INIT: 1, GETATTR: 2, ACCESS: 3, STATFS: 4, READLINK: 5, OPENDIR: 6, READDIR: 7, RELEASEDIR: 8, FSYNCDIR: 9,
  OPEN: 10, CREATE: 11, READ: 12, WRITE: 13, FLUSH: 14, FSYNC: 15, RELEASE: 16, TRUNCATE: 17, UNLINK: 18, RENAME: 19,
  LINK: 20, SYMLINK: 21, MKDIR: 22, RMDIR: 23, MKNOD: 24, CHMOD: 25, CHOWN: 26, UTIMENS: 27, SETXATTR: 28,
  GETXATTR: 29, LISTXATTR: 30, REMOVEXATTR: 31, FALLOCATE: 32,
} as const;

/** Bits of an open answer's flags (OPEN_* in hexz_fuse3.c). */
const OPEN_BITS = { keepCache: 1, directIo: 2, nonseekable: 4, cacheReaddir: 8, noflush: 16 } as const;
export type OpenInfo = Partial<Record<keyof typeof OPEN_BITS, boolean>>;

/** Numbers per stat in a reply (STAT_FIELDS in hexz_fuse3.c). */
const STAT_FIELDS = 13;
const ERRNO = Object.fromEntries(Object.entries(osConstants.errno).map(([name, n]) => [name, -n])) as Record<string, number>;
const { EIO, ENOSYS, EINVAL, ENODATA, EPERM } = ERRNO;
/** fuse-native's default operation timeout. */
const DEFAULT_TIMEOUT_MS = 15_000;
/** Upper bounds of the read-size buckets stats() reports: 4 KiB … 1 MiB, then anything larger. */
export const READ_BUCKET_BOUNDS = [4, 8, 16, 32, 64, 128, 256, 512, 1024].map((k) => k * 1024);

/** A stat as fuse-native takes it: times as Date or ms since the epoch. */
export interface Fuse3Stat {
  mode: number;
  uid?: number;
  gid?: number;
  size?: number;
  dev?: number;
  nlink?: number;
  ino?: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
  atime?: Date | number;
  mtime?: Date | number;
  ctime?: Date | number;
}

type Cb = (err: number | null | undefined) => void;
type CbWith<T> = (err: number | null | undefined, value?: T) => void;
type OpenCb = (err: number | null | undefined, fd?: number, info?: OpenInfo) => void;
type IoCb = (result: number) => void;

/** The operations table: fuse-native's, plus rename2 and fallocate. Every operation is optional. */
export interface Fuse3Operations {
  init?(cb: Cb): void;
  access?(path: string, mode: number, cb: Cb): void;
  statfs?(path: string, cb: CbWith<Record<string, number>>): void;
  getattr?(path: string, cb: CbWith<Fuse3Stat>): void;
  fgetattr?(path: string, fd: number, cb: CbWith<Fuse3Stat>): void;
  flush?(path: string, fd: number, cb: Cb): void;
  fsync?(path: string, fd: number, datasync: number, cb: Cb): void;
  fsyncdir?(path: string, fd: number, datasync: number, cb: Cb): void;
  readdir?(path: string, cb: (err: number | null | undefined, names?: string[], stats?: Fuse3Stat[]) => void): void;
  truncate?(path: string, size: number, cb: Cb): void;
  ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
  readlink?(path: string, cb: CbWith<string>): void;
  chown?(path: string, uid: number, gid: number, cb: Cb): void;
  chmod?(path: string, mode: number, cb: Cb): void;
  mknod?(path: string, mode: number, dev: number, cb: Cb): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
  getxattr?(path: string, name: string, position: number, cb: CbWith<Buffer>): void;
  listxattr?(path: string, cb: CbWith<string[]>): void;
  removexattr?(path: string, name: string, cb: Cb): void;
  open?(path: string, flags: number, cb: OpenCb): void;
  opendir?(path: string, flags: number, cb: OpenCb): void;
  read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: IoCb): void;
  write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: IoCb): void;
  release?(path: string, fd: number, cb: Cb): void;
  releasedir?(path: string, fd: number, cb: Cb): void;
  create?(path: string, mode: number, cb: OpenCb): void;
  utimens?(path: string, atime: number, mtime: number, cb: Cb): void;
  unlink?(path: string, cb: Cb): void;
  rename?(src: string, dest: string, cb: Cb): void;
  rename2?(src: string, dest: string, flags: number, cb: Cb): void;
  link?(src: string, dest: string, cb: Cb): void;
  symlink?(target: string, path: string, cb: Cb): void;
  mkdir?(path: string, mode: number, cb: Cb): void;
  rmdir?(path: string, cb: Cb): void;
  fallocate?(path: string, fd: number, mode: number, offset: number, length: number, cb: Cb): void;
}

export interface Fuse3Options {
  /** ms an operation may take before the kernel gets ETIMEDOUT; false or 0: never (default 15 s, as fuse-native). */
  timeout?: number | false;
  /** libfuse worker threads at most: requests in flight at once (default 32). */
  maxThreads?: number;
  /** The kernel's limit of background (readahead) requests in flight; 0 keeps the kernel's (12). */
  maxBackground?: number;
  congestionThreshold?: number;
  /**
   * Unlink an open file at once (default false: libfuse renames it to `.fuse_hidden…` until it is
   * closed, so fstat and the like keep working on it by path; the table sees that rename and unlink).
   */
  hardRemove?: boolean;
  /** Let the kernel cache symlink targets (default true). */
  cacheSymlinks?: boolean;
  // fuse-native's option flags, turned into -o options by _fuseOptions() as there.
  debug?: boolean;
  allowOther?: boolean;
  allowRoot?: boolean;
  autoUnmount?: boolean;
  defaultPermissions?: boolean;
  maxRead?: number;
  fsname?: string;
  subtype?: string;
  kernelCache?: boolean;
  autoCache?: boolean;
  umask?: number;
  uid?: number;
  gid?: number;
  entryTimeout?: number;
  attrTimeout?: number;
  acAttrTimeout?: number;
  noforget?: boolean;
}

/** What stats() reports. */
export interface Fuse3Stats {
  reads: number;
  readBytes: number;
  maxRead: number;
  /** Read requests per size: ≤ READ_BOUNDS[i] (last: larger than 1 MiB). */
  readBuckets: number[];
  connection: {
    protoMajor: number;
    protoMinor: number;
    maxWrite: number;
    maxRead: number;
    maxReadahead: number;
    maxBackground: number;
    congestionThreshold: number;
    capable: number;
    want: number;
    maxThreads: number;
  };
}

export interface Fuse3Context {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
  /** Open flags, for create. */
  flags?: number;
}

type Handle = { readonly __brand: 'hexz-fuse3' };
interface NativeBinding {
  mount(mnt: string, options: string, implemented: number, handler: (...args: never[]) => void, settings: Record<string, number>): Handle;
  reply(h: Handle, id: number, result: number, v1?: unknown, v2?: unknown): boolean;
  context(h: Handle, id: number): Omit<Fuse3Context, 'flags'> | undefined;
  stats(h: Handle): Fuse3Stats;
  exit(h: Handle): void;
  libfuseVersion: string;
}

let native: NativeBinding | undefined;

/**
 * Load the addon (once). Throws when it was not built (no libfuse3-dev at install time) or when
 * libfuse3.so.3 is missing; the caller falls back to fuse-native then.
 */
export function loadFuse3(): typeof Fuse3 {
  native ??= createRequire(import.meta.url)('hexz-fuse3') as NativeBinding;
  return Fuse3;
}

/** The version of the libfuse3 the addon runs with (e.g. "3.14.0"). */
export function libfuse3Version(): string {
  return loadFuse3() && native!.libfuseVersion;
}

/** A negative errno from whatever an operation answered (fuse-native: 0 or a negative number). */
function result(err: unknown): number {
  if (!err) return 0;
  if (typeof err === 'number') return Number.isInteger(err) ? err : EIO;
  const errno = (err as { errno?: unknown }).errno;
  return typeof errno === 'number' ? -Math.abs(errno) : EIO;
}

function ms(t: Date | number | undefined): number {
  if (t === undefined) return Date.now();
  return typeof t === 'number' ? t : t.getTime();
}

/** Write `st` at `at` into a stat array (the native layout: STAT_FIELDS numbers per stat). */
function putStat(a: Float64Array, at: number, st: Fuse3Stat | undefined): void {
  a[at] = st?.mode ?? 0;
  a[at + 1] = st?.uid ?? 0;
  a[at + 2] = st?.gid ?? 0;
  a[at + 3] = st?.size ?? 0;
  a[at + 4] = st?.dev ?? 0;
  a[at + 5] = st?.nlink ?? 1;
  a[at + 6] = st?.ino ?? 0;
  a[at + 7] = st?.rdev ?? 0;
  a[at + 8] = st?.blksize ?? 0;
  a[at + 9] = st?.blocks ?? 0;
  a[at + 10] = ms(st?.atime);
  a[at + 11] = ms(st?.mtime);
  a[at + 12] = ms(st?.ctime);
}

/** fuse-native's option flags and the -o options they stand for. */
const FLAG_OPTIONS = { debug: 'debug', allowOther: 'allow_other', allowRoot: 'allow_root', autoUnmount: 'auto_unmount', defaultPermissions: 'default_permissions', kernelCache: 'kernel_cache', autoCache: 'auto_cache', noforget: 'noforget' };
const VALUE_OPTIONS = { maxRead: 'max_read', fsname: 'fsname', subtype: 'subtype', umask: 'umask', uid: 'uid', gid: 'gid', entryTimeout: 'entry_timeout', attrTimeout: 'attr_timeout', acAttrTimeout: 'ac_attr_timeout' };

const STATFS_KEYS = ['bsize', 'frsize', 'blocks', 'bfree', 'bavail', 'files', 'ffree', 'favail', 'fsid', 'flag', 'namemax'];

function openBits(info: OpenInfo | undefined): number {
  let bits = 0;
  if (info) for (const [k, bit] of Object.entries(OPEN_BITS)) if (info[k as keyof OpenInfo]) bits |= bit;
  return bits;
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; missing: boolean; message: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 30_000 }, (err, _out, stderr) =>
      resolve({ ok: !err, missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT', message: err ? (stderr || err.message).trim() : '' }),
    ),
  );
}

/** `fusermount3 -u` (then `fusermount`, libfuse2's name); `-uz` detaches lazily. */
async function fusermount(mnt: string, lazy: boolean): Promise<{ ok: boolean; message: string }> {
  let last = { ok: false, missing: true, message: 'no fusermount3 or fusermount found' };
  for (const helper of ['fusermount3', 'fusermount']) {
    last = await run(helper, [lazy ? '-uz' : '-u', mnt]);
    if (!last.missing) break;
  }
  return last;
}

/** The drop-in class. One instance serves one mount. */
export class Fuse3 {
  /** Negative errno constants by name, as fuse-native's statics. */
  static readonly errnos: Readonly<Record<string, number>> = ERRNO;
  readonly mnt: string;
  readonly ops: Fuse3Operations;
  readonly opts: Fuse3Options;
  /** Resolves once the FUSE loop has ended (unmounted) and its thread was joined. */
  readonly ended: Promise<void>;
  private handle?: Handle;
  private mountCb?: (err: Error | null) => void;
  private endResolve!: () => void;
  private dispatching = 0;
  private createFlags?: number;
  private lastStats?: Fuse3Stats;
  /** Scratch stat for getattr answers: the native reply copies it synchronously. */
  private readonly statScratch = new Float64Array(STAT_FIELDS);
  private readonly statfsScratch = new Float64Array(STATFS_KEYS.length);

  constructor(mnt: string, ops: Fuse3Operations, opts: Fuse3Options = {}) {
    loadFuse3();
    this.mnt = path.resolve(mnt);
    this.ops = ops;
    this.opts = opts;
    this.ended = new Promise((resolve) => (this.endResolve = resolve));
  }

  /** fuse-native's option string (`-o…`) from the option flags; subclasses may supply their own. */
  _fuseOptions(): string {
    const o = this.opts as Record<string, unknown>;
    const out = [
      ...Object.entries(FLAG_OPTIONS).filter(([key]) => o[key]).map(([, name]) => name),
      ...Object.entries(VALUE_OPTIONS).filter(([key]) => o[key] !== undefined && o[key] !== '').map(([key, name]) => `${name}=${o[key]}`),
    ];
    return out.length ? `-o${out.join(',')}` : '';
  }

  /** Mount; `cb` runs once the kernel's INIT has arrived (and ops.init answered), or with the error. */
  mount(cb: (err: Error | null) => void): void {
    if (this.handle) return process.nextTick(cb, new Error('already mounted'));
    const options = this._fuseOptions()
      .replace(/^-o/, '')
      .split(',')
      // libfuse3 dropped `nonempty`: mounting over a non-empty directory is always allowed, and
      // libfuse3 refuses the unknown option.
      .filter((o) => o && o !== 'nonempty')
      .join(',');
    const timeout = this.opts.timeout === false ? 0 : (this.opts.timeout ?? DEFAULT_TIMEOUT_MS);
    const settings = {
      timeoutMs: timeout,
      maxThreads: this.opts.maxThreads ?? 32,
      maxBackground: this.opts.maxBackground ?? 0,
      congestionThreshold: this.opts.congestionThreshold ?? 0,
      hardRemove: this.opts.hardRemove ? 1 : 0,
      cacheSymlinks: this.opts.cacheSymlinks === false ? 0 : 1,
    };
    try {
      this.handle = native!.mount(this.mnt, options, this.implemented(), this.dispatch, settings);
    } catch (err) {
      return process.nextTick(cb, err instanceof Error ? err : new Error(String(err)));
    }
    this.mountCb = cb;
  }

  /**
   * Unmount (`fusermount3 -u`, lazily with `-uz` when that fails) and call back once the FUSE loop
   * ended; after a lazy unmount, as soon as it is detached (the loop serves open files until closed).
   */
  unmount(cb: (err: Error | null) => void): void {
    if (!this.handle) return process.nextTick(cb, null);
    void (async () => {
      const plain = await fusermount(this.mnt, false);
      if (plain.ok) return this.ended;
      const lazy = await fusermount(this.mnt, true);
      if (!lazy.ok) throw new Error(`cannot unmount ${this.mnt}: ${lazy.message || plain.message}`);
    })().then(
      () => cb(null),
      (err: Error) => cb(err),
    );
  }

  /** fuse-native's static: lazy unmount of any mountpoint. */
  static unmount(mnt: string, cb: (err: Error | null) => void): void {
    void fusermount(mnt, true).then((r) => cb(r.ok ? null : new Error(r.message)));
  }

  /** fuse-native's errno lookup: `errno('ENOENT') === -2`, -1 for unknown names. */
  errno(code: string): number {
    return (code && ERRNO[code.toUpperCase()]) || -1;
  }

  /** Read requests the kernel sent so far and what INIT negotiated (kept after the mount ended). */
  stats(): Fuse3Stats | undefined {
    if (this.handle) this.lastStats = native!.stats(this.handle);
    return this.lastStats;
  }

  /** The caller of the operation being dispatched (only during its synchronous part). */
  context(): Fuse3Context | undefined {
    if (!this.handle || !this.dispatching) return undefined;
    const c = native!.context(this.handle, this.dispatching);
    return c && (this.createFlags === undefined ? c : { ...c, flags: this.createFlags });
  }

  /** Bit mask of the native operations the table answers (the rest are not offered: ENOSYS). */
  private implemented(): number {
    const o = this.ops;
    const has: Array<[number, unknown]> = [
      [OP.ACCESS, o.access], [OP.STATFS, o.statfs], [OP.READLINK, o.readlink], [OP.OPENDIR, o.opendir], [OP.READDIR, o.readdir],
      [OP.RELEASEDIR, o.releasedir], [OP.FSYNCDIR, o.fsyncdir], [OP.OPEN, o.open], [OP.CREATE, o.create], [OP.READ, o.read],
      [OP.WRITE, o.write], [OP.FLUSH, o.flush], [OP.FSYNC, o.fsync], [OP.RELEASE, o.release], [OP.TRUNCATE, o.truncate ?? o.ftruncate],
      [OP.UNLINK, o.unlink], [OP.RENAME, o.rename ?? o.rename2], [OP.LINK, o.link], [OP.SYMLINK, o.symlink], [OP.MKDIR, o.mkdir],
      [OP.RMDIR, o.rmdir], [OP.MKNOD, o.mknod], [OP.CHMOD, o.chmod], [OP.CHOWN, o.chown], [OP.UTIMENS, o.utimens],
      [OP.SETXATTR, o.setxattr], [OP.GETXATTR, o.getxattr], [OP.LISTXATTR, o.listxattr], [OP.REMOVEXATTR, o.removexattr],
      [OP.FALLOCATE, o.fallocate],
    ];
    let mask = 0;
    for (const [op, fn] of has) if (typeof fn === 'function') mask += 2 ** op; // > 32 bits: no bitwise operators
    return mask;
  }

  /** One request from the native layer: call the operation, answer through reply(). */
  private readonly dispatch = (op: number, id: number, s1?: string, s2?: string, buf?: Buffer, n0?: number, n1?: number, n2?: number, n3?: number): void => {
    if (op === OP.END) return this.onEnd();
    const h = this.handle!;
    const o = this.ops;
    const p = s1 ?? '';
    const done: Cb = (err) => void native!.reply(h, id, result(err));
    const io: IoCb = (res) => void native!.reply(h, id, result(res), buf);
    const opened: OpenCb = (err, fd, info) => void native!.reply(h, id, result(err), fd ?? 0, openBits(info));
    const stat: CbWith<Fuse3Stat> = (err, st) => {
      if (err) return done(err);
      putStat(this.statScratch, 0, st);
      native!.reply(h, id, 0, this.statScratch);
    };
    const fd = n0 ?? -1;
    this.dispatching = id;
    this.createFlags = op === OP.CREATE ? n1 : undefined;
    try {
      switch (op) {
        case OP.INIT:
          this.mountCb?.(null);
          this.mountCb = undefined;
          return o.init ? o.init(done) : done(0);
        case OP.GETATTR:
          if (fd >= 0 && o.fgetattr) return o.fgetattr(p, fd, stat);
          if (o.getattr) return o.getattr(p, stat);
          // fuse-native without getattr: the root is an empty directory, anything else EPERM.
          return p === '/' ? stat(0, { mode: 0o40755, size: 4096, atime: 0, mtime: 0, ctime: 0 }) : done(EPERM);
        case OP.ACCESS:
          return o.access!(p, n0!, done);
        case OP.STATFS:
          return o.statfs!(p, (err, sf) => {
            if (err) return done(err);
            STATFS_KEYS.forEach((k, i) => (this.statfsScratch[i] = sf?.[k] ?? 0));
            native!.reply(h, id, 0, this.statfsScratch);
          });
        case OP.READLINK:
          return o.readlink!(p, (err, target) => (err ? done(err) : native!.reply(h, id, 0, String(target ?? ''))));
        case OP.OPENDIR:
          return o.opendir!(p, n0!, opened);
        case OP.READDIR:
          return o.readdir!(p, (err, names, stats) => {
            if (err) return done(err);
            const list = names ?? [];
            let a: Float64Array | undefined;
            if (stats && stats.length === list.length) {
              a = new Float64Array(list.length * STAT_FIELDS);
              for (let i = 0; i < list.length; i++) putStat(a, i * STAT_FIELDS, stats[i]);
            }
            native!.reply(h, id, 0, list, a);
          });
        case OP.RELEASEDIR:
          return o.releasedir!(p, fd, done);
        case OP.FSYNCDIR:
          return o.fsyncdir!(p, fd, n1!, done);
        case OP.OPEN:
          return o.open!(p, n0!, opened);
        case OP.CREATE:
          return o.create!(p, n0!, opened);
        case OP.READ:
          if (!buf) return done(EIO);
          return o.read!(p, fd, buf, n1!, n2!, io);
        case OP.WRITE:
          if (!buf) return done(EIO);
          return o.write!(p, fd, buf, n1!, n2!, io);
        case OP.FLUSH:
          return o.flush!(p, fd, done);
        case OP.FSYNC:
          return o.fsync!(p, fd, n1!, done);
        case OP.RELEASE:
          return o.release!(p, fd, done);
        case OP.TRUNCATE: {
          const f = n1 ?? -1;
          if (f >= 0 && o.ftruncate) return o.ftruncate(p, f, n0!, done);
          return o.truncate ? o.truncate(p, n0!, done) : done(ENOSYS);
        }
        case OP.UNLINK:
          return o.unlink!(p, done);
        case OP.RENAME:
          if (n0) return o.rename2 ? o.rename2(p, s2 ?? '', n0, done) : done(EINVAL);
          return o.rename ? o.rename(p, s2 ?? '', done) : o.rename2!(p, s2 ?? '', 0, done);
        case OP.LINK:
          return o.link!(p, s2 ?? '', done);
        case OP.SYMLINK:
          return o.symlink!(p, s2 ?? '', done);
        case OP.MKDIR:
          return o.mkdir!(p, n0!, done);
        case OP.RMDIR:
          return o.rmdir!(p, done);
        case OP.MKNOD:
          return o.mknod!(p, n0!, n1!, done);
        case OP.CHMOD:
          return o.chmod!(p, n0!, done);
        case OP.CHOWN:
          return o.chown!(p, n0!, n1!, done);
        case OP.UTIMENS:
          return o.utimens!(p, n0!, n1!, done);
        case OP.SETXATTR:
          return o.setxattr!(p, s2 ?? '', buf ?? Buffer.alloc(0), 0, n0!, done);
        case OP.GETXATTR:
          return o.getxattr!(p, s2 ?? '', 0, (err, value) => {
            if (err) return done(err);
            if (!value) return done(ENODATA);
            native!.reply(h, id, 0, Buffer.isBuffer(value) ? value : Buffer.from(value));
          });
        case OP.LISTXATTR:
          return o.listxattr!(p, (err, list) => (err ? done(err) : native!.reply(h, id, 0, list ?? [])));
        case OP.REMOVEXATTR:
          return o.removexattr!(p, s2 ?? '', done);
        case OP.FALLOCATE:
          return o.fallocate!(p, fd, n1!, n2!, n3!, done);
        default:
          return done(ENOSYS);
      }
    } finally {
      this.dispatching = 0;
      this.createFlags = undefined;
    }
  };

  private onEnd(): void {
    if (this.handle) this.lastStats = native!.stats(this.handle);
    this.handle = undefined;
    // INIT never came (the kernel refused the mount after all): say so to whoever waits.
    this.mountCb?.(new Error('fuse failed: the FUSE session ended before INIT'));
    this.mountCb = undefined;
    this.endResolve();
  }
}

// fuse-native exposes the errno constants as statics of the class (`Fuse.ENOENT`).
Object.assign(Fuse3, ERRNO);
