/**
 * The FUSE operations table of a read-only mount: a mapping from an open `Archive` to the callbacks
 * fuse-native calls (getattr, readdir, open, read, readlink, statfs, release). It never loads
 * fuse-native itself: the errno constants come in as an option, so this module stays testable without
 * a mount and the command table never loads the native addon.
 *
 * Why it looks the way it does:
 * - Every callback answers asynchronously; a read waits only for the chunks of its own 128 KiB piece,
 *   so many readers are served at once and the event loop never blocks on a whole file.
 * - The archive is immutable, so path → entry lookups are cached for the life of the mount (bounded
 *   LRU, in-flight lookups shared); readdir primes that cache with every child it lists, so the
 *   `getattr` storm that follows `ls -l` or `find` costs no index work.
 * - Each open file handle owns a `Readahead`, so a sequential reader prefetches a growing window
 *   through the shared block cache while random readers prefetch nothing.
 * - Errors map to errno through `ERROR_TABLE` only (one table for the whole project).
 * - Anything that would modify the tree answers EROFS. The mount is also `ro`, so the kernel refuses
 *   most writes before they reach us; these handlers are the second line.
 */
import { LRUCache } from 'lru-cache';
import { ReorderedReadahead } from '../cache/readahead.js';
import { ERROR_TABLE, toHexzError, type ErrorCode, type HexzError } from '../src/errors.js';
import type { FileEntry } from '../src/format/file-table.js';
import type { Archive } from '../src/reader/archive.js';

/** What fuse-native's getattr/readdir callbacks accept (times in ms since the epoch). */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  blksize: number;
  blocks: number;
  mtime: number;
  atime: number;
  ctime: number;
}

/** What fuse-native's statfs callback accepts (all fields are 32-bit in its binding). */
export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/**
 * fuse-native callback conventions: the first argument is 0 or a negative errno; `read` takes a
 * single number, the byte count or a negative errno.
 */
type Done = (errno: number) => void;
type DoneWith<T> = (errno: number, value?: T) => void;

/** The subset of fuse-native's operations table this mount implements. */
export interface FuseOperations {
  getattr(path: string, cb: DoneWith<FuseStat>): void;
  readdir(path: string, cb: (errno: number, names?: string[], stats?: FuseStat[]) => void): void;
  open(path: string, flags: number, cb: DoneWith<number>): void;
  read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
  release(path: string, fd: number, cb: Done): void;
  readlink(path: string, cb: DoneWith<string>): void;
  statfs(path: string, cb: DoneWith<FuseStatfs>): void;
  // Everything below only ever answers EROFS.
  write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
  create(path: string, mode: number, cb: DoneWith<number>): void;
  truncate(path: string, size: number, cb: Done): void;
  ftruncate(path: string, fd: number, size: number, cb: Done): void;
  unlink(path: string, cb: Done): void;
  rename(src: string, dest: string, cb: Done): void;
  link(src: string, dest: string, cb: Done): void;
  symlink(src: string, dest: string, cb: Done): void;
  mkdir(path: string, mode: number, cb: Done): void;
  rmdir(path: string, cb: Done): void;
  mknod(path: string, mode: number, dev: number, cb: Done): void;
  chmod(path: string, mode: number, cb: Done): void;
  chown(path: string, uid: number, gid: number, cb: Done): void;
  utimens(path: string, atime: number, mtime: number, cb: Done): void;
  setxattr(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
  removexattr(path: string, name: string, cb: Done): void;
}

export interface FuseOpsOptions {
  /** Negative errno by name (`ENOENT` → -2): fuse-native's constants, e.g. `(n) => Fuse[n]`. */
  errno: (name: string) => number | undefined;
  /** Owner of every entry; the mounting user by default. */
  uid?: number;
  gid?: number;
  /** Unexpected failures (storage, corruption, keys) are reported here; "no such file" and the like are not. */
  onError?: (op: string, path: string, err: HexzError) => void;
  /** Paths whose lookup result is kept (default `ENTRY_CACHE_ENTRIES`). */
  entryCacheEntries?: number;
}

/** Lookups kept: ~100k entries of ~300 bytes is ~30 MiB at most, outside the block-cache budget. */
export const ENTRY_CACHE_ENTRIES = 100_000;
/** st_blksize: the size of one FUSE read, so `cp` and friends ask for whole pieces. */
const PREFERRED_IO_SIZE = 128 * 1024;
/** Block size reported by statfs; grown when the archive is too big for 32-bit block counts. */
const STATFS_BLOCK = 4096;
const NAME_MAX = 255;
/** `ST_RDONLY` in statvfs.f_flag. */
const ST_RDONLY = 1;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_ACCMODE = 3;
const O_RDONLY = 0;
/** fuse-native hands fds to C as int32; handles are numbered 1..MAX_HANDLE and then wrap. */
const MAX_HANDLE = 0x7fff_ffff;

/** Answers to what a caller asked for (no such path, not a directory…): not worth a log line. */
const USER_ERRORS = new Set<ErrorCode>(['PATH_NOT_FOUND', 'NOT_A_DIRECTORY', 'NOT_A_FILE', 'UNSAFE_PATH', 'OUT_OF_RANGE', 'INVALID_ARGUMENT', 'READ_ONLY']);

/** Cached outcome of a lookup: the entry, or a marker for "not there" (also immutable). */
type Lookup = FileEntry | typeof MISSING;
const MISSING = Symbol('missing');

interface OpenFile {
  entry: FileEntry;
  readahead: ReorderedReadahead;
}

/** The archive path of a FUSE path (`/a/b` → `a/b`, `/` → ``). */
export function archivePath(fusePath: string): string {
  return fusePath.length > 1 ? fusePath.slice(1) : '';
}

/**
 * The negative errno for any thrown value: through `toHexzError` to an error code, then the code's
 * `errno` column of `ERROR_TABLE`, then fuse-native's constant of that name (EIO when it has none).
 */
export function errnoOf(err: unknown, errno: FuseOpsOptions['errno']): number {
  const name = ERROR_TABLE[toHexzError(err).code].errno;
  return errno(name) ?? errno('EIO') ?? -5;
}

/**
 * The stat of an entry as the kernel sees it: type bits from the entry type, permission bits as
 * stored, the mounting user as owner, one link (two for directories), and the stored mtime (fuse-native
 * carries times in milliseconds) as all three times, since nothing is ever accessed or changed.
 */
export function entryStat(e: FileEntry, uid: number, gid: number): FuseStat {
  const type = e.type === 'directory' ? S_IFDIR : e.type === 'symlink' ? S_IFLNK : S_IFREG;
  const ms = e.mtimeNs > 0n ? Number(e.mtimeNs / 1_000_000n) : 0;
  return {
    mode: type | (e.mode & 0o7777),
    uid,
    gid,
    size: e.size,
    nlink: e.type === 'directory' ? 2 : 1,
    blksize: PREFERRED_IO_SIZE,
    blocks: Math.ceil(e.size / 512),
    mtime: ms,
    atime: ms,
    ctime: ms,
  };
}

/**
 * statfs of the mount: the archive's logical size as used blocks, nothing free (read-only), one
 * inode per entry. The block size grows in powers of two until the block count fits the 32 bits
 * fuse-native passes, so `df` stays right for archives beyond 16 TiB.
 */
export function archiveStatfs(logicalSize: number, fileCount: number): FuseStatfs {
  let bsize = STATFS_BLOCK;
  while (Math.ceil(logicalSize / bsize) > 0xffff_ffff) bsize *= 2;
  const files = Math.min(fileCount + 1, 0xffff_ffff);
  return {
    bsize,
    frsize: bsize,
    blocks: Math.ceil(logicalSize / bsize),
    bfree: 0,
    bavail: 0,
    files,
    ffree: 0,
    favail: 0,
    fsid: 0,
    flag: ST_RDONLY,
    namemax: NAME_MAX,
  };
}

/**
 * Build the operations table for `archive`. The table holds per-mount state (entry cache, open
 * handles) and is meant for exactly one mount; `openHandles()` reports how many files are open.
 */
export function createFuseOperations(archive: Archive, opts: FuseOpsOptions): FuseOperations & { openHandles(): number } {
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const gid = opts.gid ?? process.getgid?.() ?? 0;
  const errno = opts.errno;
  const EROFS = errno('EROFS') ?? -30;
  const ENOENT = errno('ENOENT') ?? -2;
  const EISDIR = errno('EISDIR') ?? -21;
  const EINVAL = errno('EINVAL') ?? -22;
  const EBADF = errno('EBADF') ?? -9;
  const lookups = new LRUCache<string, Promise<Lookup>>({ max: opts.entryCacheEntries ?? ENTRY_CACHE_ENTRIES });
  const handles = new Map<number, OpenFile>();
  const statfs = archiveStatfs(archive.root.logicalSize, archive.root.fileCount);
  let nextHandle = 1;

  /** Lookups share one promise per path; a failed one (storage error) is forgotten so it is retried. */
  function lookup(path: string): Promise<Lookup> {
    let p = lookups.get(path);
    if (!p) {
      p = archive.lookup(path).then((e) => e ?? MISSING);
      lookups.set(path, p);
      p.catch(() => lookups.delete(path));
    }
    return p;
  }

  function fail(op: string, path: string, err: unknown): number {
    const e = toHexzError(err, { archive: archive.url, path });
    if (!USER_ERRORS.has(e.code)) opts.onError?.(op, path, e);
    return errnoOf(e, errno);
  }

  function allocateHandle(): number {
    for (;;) {
      const fd = nextHandle;
      nextHandle = nextHandle >= MAX_HANDLE ? 1 : nextHandle + 1;
      if (!handles.has(fd)) return fd;
    }
  }

  const readOnly = (...args: unknown[]) => (args[args.length - 1] as Done)(EROFS);

  return {
    openHandles: () => handles.size,

    getattr(path, cb) {
      lookup(archivePath(path)).then(
        (e) => (e === MISSING ? cb(ENOENT) : cb(0, entryStat(e, uid, gid))),
        (err) => cb(fail('getattr', path, err)),
      );
    },

    readdir(path, cb) {
      const dir = archivePath(path);
      Promise.all([lookup(dir), archive.list(dir)]).then(
        ([self, { entries }]) => {
          if (self === MISSING) return cb(ENOENT);
          const selfStat = entryStat(self, uid, gid);
          const names = ['.', '..'];
          const stats = [selfStat, selfStat];
          for (const child of entries) {
            // Children are immutable too: answer their getattr from here without another lookup.
            if (!lookups.has(child.path)) lookups.set(child.path, Promise.resolve(child));
            names.push(child.path.slice(child.path.lastIndexOf('/') + 1));
            stats.push(entryStat(child, uid, gid));
          }
          cb(0, names, stats);
        },
        (err) => cb(fail('readdir', path, err)),
      );
    },

    open(path, flags, cb) {
      if ((flags & O_ACCMODE) !== O_RDONLY) return cb(EROFS);
      lookup(archivePath(path)).then(
        (e) => {
          if (e === MISSING) return cb(ENOENT);
          if (e.type === 'directory') return cb(EISDIR);
          if (e.type !== 'file') return cb(EINVAL); // the kernel follows symlinks before open
          const fd = allocateHandle();
          handles.set(fd, { entry: e, readahead: new ReorderedReadahead() });
          cb(0, fd);
        },
        (err) => cb(fail('open', path, err)),
      );
    },

    read(path, fd, buf, len, pos, cb) {
      const h = handles.get(fd);
      if (!h) return cb(EBADF);
      const { entry } = h;
      if (pos >= entry.size || len <= 0) return cb(0);
      const n = Math.min(len, entry.size - pos);
      // Prefetch before loading this piece, so both land in the same coalesced storage request.
      const ahead = h.readahead.observe(pos, n);
      if (ahead) archive.prefetch(entry, ahead.start, ahead.end);
      // Most reads find their chunks cached (prefetched): answer them without a promise.
      try {
        if (buf.length >= n && archive.readCachedInto(entry, pos, n, buf)) return cb(n);
      } catch (err) {
        return cb(fail('read', path, err));
      }
      // fuse-native detaches the kernel's buffer when it answered a slow read with ETIMEDOUT: then
      // nothing is written (readInto resolves false) and the late answer is EINVAL, never bytes.
      archive.readInto(entry, pos, n, buf).then(
        (ok) => cb(ok ? n : EINVAL),
        (err) => cb(fail('read', path, err)),
      );
    },

    release(_path, fd, cb) {
      handles.delete(fd);
      cb(0);
    },

    readlink(path, cb) {
      lookup(archivePath(path)).then(
        (e) => {
          if (e === MISSING) return cb(ENOENT);
          if (e.type !== 'symlink') return cb(EINVAL);
          cb(0, e.target ?? '');
        },
        (err) => cb(fail('readlink', path, err)),
      );
    },

    statfs(_path, cb) {
      cb(0, statfs);
    },

    write: (_p, _fd, _b, _l, _o, cb) => cb(EROFS),
    create: readOnly,
    truncate: readOnly,
    ftruncate: readOnly,
    unlink: readOnly,
    rename: readOnly,
    link: readOnly,
    symlink: readOnly,
    mkdir: readOnly,
    rmdir: readOnly,
    mknod: readOnly,
    chmod: readOnly,
    chown: readOnly,
    utimens: readOnly,
    setxattr: readOnly,
    removexattr: readOnly,
  };
}
