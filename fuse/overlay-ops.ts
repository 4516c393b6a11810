/**
 * The FUSE operations table of a writable workspace (docs/workspaces.md): the namespace and upper
 * layer of an `OverlaySession` over its HEAD archive. Reads of untouched files go through the same
 * archive reads, cache and readahead as `hexz mount` (./ops.ts); everything that changes the tree is
 * a namespace record, journaled before it is answered; data goes to upper files.
 *
 * - open for writing copies a HEAD file up first (streamed, ../src/workspace/overlay/session.ts);
 *   with O_TRUNC nothing is copied; a read-only open never copies, and still sees a copy-up made by
 *   another handle later (`byOrigin`).
 * - chmod/chown/utimens of a HEAD file change metadata only (a journaled `attr`).
 * - rename, link, unlink, mkdir, rmdir, symlink move names, never data.
 * - Every handler answers asynchronously; only namespace mutations are serialized (they are short),
 *   so a large copy-up or a commit never holds up a read of an untouched file.
 *
 * Why this file is longer than 400 lines: the table is one closure over the open handles, and each
 * content operation (read, write, truncate, fsync, release) has a whole-file and an extent-mapped
 * path that must agree on the handle's state; split, that state would be shared across modules.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { toHexzError, type ErrorCode, type HexzError } from '../src/errors.js';
import type { FileEntry } from '../src/format/file-table.js';
import type { Archive } from '../src/reader/archive.js';
import { type DirNode, type FileNode, type Found, type Node } from '../src/workspace/overlay/namespace.js';
import type { ExtentMap } from '../src/workspace/overlay/extents.js';
import type { OverlaySession } from '../src/workspace/overlay/session.js';
import type { Fuse3Context, Fuse3Operations } from './fuse3.js';
import { ReorderedReadahead } from '../cache/readahead.js';
import { archivePath, errnoOf, type FuseStat } from './ops.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
/** st_blksize: the largest FUSE read of libfuse3. */
const PREFERRED_IO_SIZE = 1024 * 1024;
const MAX_HANDLE = 0x7fff_ffff;
/** Answers to what a caller asked for: not worth a log line. */
const USER_ERRORS = new Set<ErrorCode>(['PATH_NOT_FOUND', 'NOT_A_DIRECTORY', 'NOT_A_FILE', 'NOT_EMPTY', 'EXISTS', 'INVALID_ARGUMENT', 'PERMISSION', 'WORKSPACE_BUSY']);

export interface OverlayOpsOptions {
  errno: (name: string) => number | undefined;
  /** The caller of the operation being dispatched (libfuse3's context()). */
  context?: () => Fuse3Context | undefined;
  onError?: (op: string, path: string, err: HexzError) => void;
}

interface Handle {
  /** A node of the tree, or HEAD's entry opened read-only without attaching it. */
  node?: FileNode;
  lower?: FileEntry;
  /** The upper file, open for this handle (read-write for writers). */
  fh?: FileHandle;
  writable: boolean;
  append: boolean;
  readahead: ReorderedReadahead;
  /** HEAD when it was opened (a commit may advance HEAD while it is open). */
  archive: Archive;
  /** The extent map of an extent-mapped node, once used (a commit may retire the generation). */
  map?: Promise<ExtentMap>;
}

type Cb = (err: number) => void;

/** The operations table over `session`; `openHandles()` counts open files. */
export function createOverlayOperations(session: OverlaySession, opts: OverlayOpsOptions): Fuse3Operations & { openHandles(): number } {
  const errno = opts.errno;
  const E = (name: string, fallback: number) => errno(name) ?? fallback;
  const ENOENT = E('ENOENT', -2);
  const EISDIR = E('EISDIR', -21);
  const EINVAL = E('EINVAL', -22);
  const EBADF = E('EBADF', -9);
  const ENOTDIR = E('ENOTDIR', -20);
  const EOPNOTSUPP = E('EOPNOTSUPP', -95);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const handles = new Map<number, Handle>();
  let nextHandle = 1;

  function fail(op: string, p: string, err: unknown): number {
    const e = toHexzError(err, { path: p });
    if (!USER_ERRORS.has(e.code)) opts.onError?.(op, p, e);
    return errnoOf(e, errno);
  }

  function allocate(h: Handle): number {
    for (;;) {
      const fd = nextHandle;
      nextHandle = nextHandle >= MAX_HANDLE ? 1 : nextHandle + 1;
      if (!handles.has(fd)) {
        handles.set(fd, h);
        return fd;
      }
    }
  }

  const ms = (ns: bigint) => (ns > 0n ? Number(ns / 1_000_000n) : 0);

  function lowerStat(e: FileEntry): FuseStat {
    const type = e.type === 'directory' ? S_IFDIR : e.type === 'symlink' ? S_IFLNK : S_IFREG;
    const t = ms(e.mtimeNs);
    return { mode: type | (e.mode & 0o7777), uid, gid, size: e.size, nlink: e.type === 'directory' ? 2 : 1, blksize: PREFERRED_IO_SIZE, blocks: Math.ceil(e.size / 512), mtime: t, atime: t, ctime: t };
  }

  async function nodeStat(n: Node): Promise<FuseStat> {
    const base = { uid: n.meta.uid ?? uid, gid: n.meta.gid ?? gid, blksize: PREFERRED_IO_SIZE, mtime: n.meta.mtimeMs, atime: n.meta.mtimeMs, ctime: n.meta.mtimeMs };
    if (n.kind === 'dir') return { ...base, mode: S_IFDIR | n.meta.mode, size: 4096, nlink: 2, blocks: 8 };
    if (n.kind === 'symlink') return { ...base, mode: S_IFLNK | 0o777, size: Buffer.byteLength(n.target), nlink: 1, blocks: 0 };
    const nlink = Math.max(1, n.links.length);
    if (!n.upper) return { ...base, mode: S_IFREG | n.meta.mode, size: n.size, nlink, blocks: Math.ceil(n.size / 512) };
    // Async on purpose: the upper file is on another filesystem, never on this mount.
    const st = await fs.stat(session.upperPath(n.upper));
    return { ...base, mode: S_IFREG | n.meta.mode, size: st.size, nlink, blocks: st.blocks, mtime: st.mtimeMs, atime: st.atimeMs, ctime: st.ctimeMs };
  }

  const statOf = (f: Found): Promise<FuseStat> | FuseStat => (f.node ? nodeStat(f.node) : lowerStat(f.lower));

  /** The node at `p`, attached; one at a time with the mutations (attaching is not journaled). */
  const attached = (p: string) => session.serialize(() => session.namespace.materialize(p));

  /** The content of a handle now: the node (maybe copied up since), or HEAD's entry. */
  function current(h: Handle): FileNode | FileEntry {
    if (h.node) return h.node;
    return (h.archive === session.archive && session.byOrigin.get(h.lower!.path)) || h.lower!;
  }

  async function upperHandle(h: Handle, node: FileNode): Promise<FileHandle> {
    h.fh ??= await fs.open(session.upperPath(node.upper!), h.writable ? (h.append ? 'a+' : 'r+') : 'r');
    return h.fh;
  }

  async function openWritable(p: string, flags: number, cb: (err: number, fd?: number) => void): Promise<void> {
    await session.whenOpen();
    const node = await attached(p);
    if (node.kind === 'dir') return cb(EISDIR);
    if (node.kind !== 'file') return cb(EINVAL);
    const trunc = (flags & O_TRUNC) !== 0;
    session.writers++;
    try {
      if (!node.upper) await session.copyUp(node, { empty: trunc });
      else if (trunc) await truncateNode(node, 0);
      const h: Handle = { node, writable: true, append: (flags & O_APPEND) !== 0, readahead: new ReorderedReadahead(), archive: session.archive };
      await upperHandle(h, node);
      cb(0, allocate(h));
    } catch (err) {
      session.writers--;
      throw err;
    }
  }

  const done = (op: string, p: string, cb: Cb) => ({
    ok: () => cb(0),
    err: (err: unknown) => cb(fail(op, p, err)),
  });

  const mutation = (op: string, p: string, cb: Cb, run: () => Promise<void>) => {
    const d = done(op, p, cb);
    run().then(d.ok, d.err);
  };

  /** Grow or shrink the content of a file by path (truncate) or handle (ftruncate). */
  async function truncateNode(node: FileNode, size: number): Promise<void> {
    await session.whenOpen();
    if (!node.upper) await session.copyUp(node, { upTo: size });
    if (!node.extents) return fs.truncate(session.upperPath(node.upper!), size);
    const fh = await fs.open(session.upperPath(node.upper!), 'r+');
    try {
      const map = await session.extentMap(node);
      await map.prepareTruncate(size, fh, session.lowerReader(node));
      await fh.truncate(size);
      await map.sync(fh);
    } finally {
      await fh.close();
    }
  }

  return {
    openHandles: () => handles.size,

    getattr(p, cb) {
      session.namespace.find(archivePath(p)).then(
        async (f) => (f ? cb(0, await statOf(f)) : cb(ENOENT)),
        (err) => cb(fail('getattr', p, err)),
      ).catch((err) => cb(fail('getattr', p, err)));
    },

    fgetattr(p, fd, cb) {
      const h = handles.get(fd);
      if (!h) return this.getattr!(p, cb);
      const c = current(h);
      Promise.resolve('kind' in c ? nodeStat(c) : lowerStat(c)).then(
        (st) => cb(0, st),
        (err) => cb(fail('fgetattr', p, err)),
      );
    },

    readdir(p, cb) {
      (async () => {
        const f = await session.namespace.find(archivePath(p));
        if (!f) return cb(ENOENT);
        let listed: Array<{ name: string; found: Found }>;
        let self: FuseStat;
        if (f.node) {
          if (f.node.kind !== 'dir') return cb(ENOTDIR);
          listed = await session.namespace.list(f.node as DirNode);
          self = await nodeStat(f.node);
        } else {
          if (f.lower.type !== 'directory') return cb(ENOTDIR);
          const entries = await session.namespace.lower.list(f.lower.path);
          listed = entries.map((e) => ({ name: e.path.slice(e.path.lastIndexOf('/') + 1), found: { lower: e } }));
          self = lowerStat(f.lower);
        }
        const names = ['.', '..', ...listed.map((l) => l.name)];
        const stats = [self, self, ...(await Promise.all(listed.map((l) => statOf(l.found))))];
        cb(0, names, stats);
      })().catch((err) => cb(fail('readdir', p, err)));
    },

    open(p, flags, cb) {
      const path = archivePath(p);
      if ((flags & O_ACCMODE) !== O_RDONLY || flags & O_TRUNC) {
        openWritable(path, flags, cb).catch((err) => cb(fail('open', p, err)));
        return;
      }
      (async () => {
        const f = await session.namespace.find(path);
        if (!f) return cb(ENOENT);
        const kind = f.node ? f.node.kind : f.lower.type;
        if (kind === 'dir' || kind === 'directory') return cb(EISDIR);
        if (kind !== 'file') return cb(EINVAL);
        const h: Handle = { node: f.node as FileNode | undefined, lower: f.lower, writable: false, append: false, readahead: new ReorderedReadahead(), archive: session.archive };
        // Opened now: a commit may delete the upper file later, the open one stays readable.
        if (h.node?.upper) await upperHandle(h, h.node);
        if (h.node?.extents) h.map = session.extentMap(h.node);
        cb(0, allocate(h));
      })().catch((err) => cb(fail('open', p, err)));
    },

    create(p, mode, cb) {
      const path = archivePath(p);
      const flags = opts.context?.()?.flags ?? 0;
      (async () => {
        await session.whenOpen();
        const upper = await session.createUpperFile();
        await session.mutate({ op: 'create', path, upper, mode: mode & 0o7777, t: Date.now() });
        const node = (await session.namespace.find(path))?.node as FileNode;
        session.writers++;
        const h: Handle = { node, writable: true, append: (flags & O_APPEND) !== 0, readahead: new ReorderedReadahead(), archive: session.archive };
        try {
          await upperHandle(h, node);
        } catch (err) {
          session.writers--;
          throw err;
        }
        cb(0, allocate(h));
      })().catch((err) => cb(fail('create', p, err)));
    },

    read(p, fd, buf, len, pos, cb) {
      const h = handles.get(fd);
      if (!h) return cb(EBADF);
      const c = current(h);
      if ('kind' in c && c.upper && c.extents) {
        (async () => {
          const fh = await upperHandle(h, c);
          const size = (await fh.stat()).size;
          if (pos >= size || len <= 0) return cb(0);
          const n = Math.min(len, size - pos);
          h.map ??= session.extentMap(c);
          await (await h.map).read(buf, 0, n, pos, fh, session.lowerReader(c, h.archive));
          cb(n);
        })().catch((err) => cb(fail('read', p, err)));
        return;
      }
      if ('kind' in c && c.upper) {
        upperHandle(h, c)
          .then((fh) => fh.read(buf, 0, len, pos))
          .then(
            (r) => cb(r.bytesRead),
            (err) => cb(fail('read', p, err)),
          );
        return;
      }
      const archive = h.archive;
      const entryP: Promise<FileEntry | undefined> = 'kind' in c ? archive.lookup(c.base!) : Promise.resolve(c);
      entryP
        .then(async (entry) => {
          if (!entry) return cb(ENOENT);
          if (pos >= entry.size || len <= 0) return cb(0);
          const n = Math.min(len, entry.size - pos);
          const ahead = h.readahead.observe(pos, n);
          if (ahead) archive.prefetch(entry, ahead.start, ahead.end);
          if (buf.length >= n && archive.readCachedInto(entry, pos, n, buf)) return cb(n);
          const ok = await archive.readInto(entry, pos, n, buf);
          cb(ok ? n : EINVAL);
        })
        .catch((err) => cb(fail('read', p, err)));
    },

    write(p, fd, buf, len, pos, cb) {
      const h = handles.get(fd);
      if (!h?.fh || !h.writable) return cb(EBADF);
      const fh = h.fh;
      const node = h.node;
      if (node?.extents) {
        (async () => {
          const at = h.append ? (await fh.stat()).size : pos;
          await (await session.extentMap(node)).prepareWrite(at, len, fh, session.lowerReader(node, h.archive));
          const r = await fh.write(buf, 0, len, h.append ? null : at);
          cb(r.bytesWritten);
        })().catch((err) => cb(fail('write', p, err)));
        return;
      }
      // O_APPEND handles write at the end whatever the offset (the upper file is open with 'a').
      fh.write(buf, 0, len, h.append ? null : pos).then(
        (r) => cb(r.bytesWritten),
        (err) => cb(fail('write', p, err)),
      );
    },

    flush(_p, _fd, cb) {
      cb(0);
    },

    fsync(p, fd, datasync, cb) {
      const h = handles.get(fd);
      if (!h?.fh) return cb(0);
      const fh = h.fh;
      // An extent-mapped file: its bytes, then the map that names them (./../src/workspace/overlay/extents.ts).
      const synced = h.node?.extents ? session.extentMap(h.node).then((m) => m.sync(fh)).then(() => fh.sync()) : datasync ? fh.datasync() : fh.sync();
      synced.then(
        () => cb(0),
        (err) => cb(fail('fsync', p, err)),
      );
    },

    release(_p, fd, cb) {
      const h = handles.get(fd);
      handles.delete(fd);
      if (!h?.fh) {
        if (h?.writable) session.writers--;
        return cb(0);
      }
      const fh = h.fh;
      const node = h.node;
      const synced = h.writable && node?.extents ? session.extentMap(node).then((m) => m.sync(fh)) : Promise.resolve();
      synced
        .catch((err) => opts.onError?.('release', _p, toHexzError(err, { path: _p })))
        .then(() => fh.close())
        .catch(() => {})
        .finally(() => {
          if (h.writable) session.writers--;
          cb(0);
        });
    },

    truncate(p, size, cb) {
      mutation('truncate', p, cb, async () => {
        const node = await attached(archivePath(p));
        if (node.kind === 'dir') throw toHexzError(Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
        if (node.kind !== 'file') throw toHexzError(Object.assign(new Error('not a file'), { code: 'EINVAL' }));
        await truncateNode(node, size);
      });
    },

    ftruncate(p, fd, size, cb) {
      const h = handles.get(fd);
      if (!h?.node) return this.truncate!(p, size, cb);
      mutation('ftruncate', p, cb, () => truncateNode(h.node!, size));
    },

    readlink(p, cb) {
      session.namespace.find(archivePath(p)).then(
        (f) => {
          if (!f) return cb(ENOENT);
          if (f.node) return f.node.kind === 'symlink' ? cb(0, f.node.target) : cb(EINVAL);
          return f.lower.type === 'symlink' ? cb(0, f.lower.target ?? '') : cb(EINVAL);
        },
        (err) => cb(fail('readlink', p, err)),
      );
    },

    statfs(_p, cb) {
      fs.statfs(session.upper).then(
        (s) => cb(0, { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }),
        (err) => cb(fail('statfs', '/', err)),
      );
    },

    mkdir(p, mode, cb) {
      mutation('mkdir', p, cb, () => session.mutate({ op: 'mkdir', path: archivePath(p), mode: mode & 0o7777, t: Date.now() }));
    },

    rmdir(p, cb) {
      mutation('rmdir', p, cb, () => session.mutate({ op: 'rmdir', path: archivePath(p), t: Date.now() }));
    },

    unlink(p, cb) {
      mutation('unlink', p, cb, () => session.mutate({ op: 'unlink', path: archivePath(p), t: Date.now() }));
    },

    symlink(target, p, cb) {
      mutation('symlink', p, cb, () => session.mutate({ op: 'symlink', path: archivePath(p), target, t: Date.now() }));
    },

    link(src, dest, cb) {
      mutation('link', dest, cb, () => session.mutate({ op: 'link', from: archivePath(src), to: archivePath(dest), t: Date.now() }));
    },

    rename(src, dest, cb) {
      mutation('rename', src, cb, () => session.mutate({ op: 'rename', from: archivePath(src), to: archivePath(dest), flags: 0, t: Date.now() }));
    },

    rename2(src, dest, flags, cb) {
      mutation('rename', src, cb, () => session.mutate({ op: 'rename', from: archivePath(src), to: archivePath(dest), flags, t: Date.now() }));
    },

    chmod(p, mode, cb) {
      mutation('chmod', p, cb, () => session.mutate({ op: 'attr', path: archivePath(p), mode: mode & 0o7777, t: Date.now() }));
    },

    chown(p, u, g, cb) {
      // -1 (as an unsigned 32-bit number) leaves that id unchanged.
      const keep = (n: number) => n === -1 || n === 0xffff_ffff;
      mutation('chown', p, cb, () => session.mutate({ op: 'attr', path: archivePath(p), ...(keep(u) ? {} : { uid: u }), ...(keep(g) ? {} : { gid: g }), t: Date.now() }));
    },

    utimens(p, atime, mtime, cb) {
      const path = archivePath(p);
      mutation('utimens', p, cb, async () => {
        const f = await session.namespace.find(path);
        if (!f) throw toHexzError(Object.assign(new Error('no such file'), { code: 'ENOENT' }));
        const node = f.node;
        if (node?.kind === 'file' && node.upper) {
          const st = await fs.stat(session.upperPath(node.upper));
          await fs.utimes(session.upperPath(node.upper), Number.isNaN(atime) ? st.atime : atime / 1000, Number.isNaN(mtime) ? st.mtime : mtime / 1000);
          return;
        }
        if (Number.isNaN(mtime)) return;
        await session.mutate({ op: 'attr', path, mtimeMs: Math.round(mtime), t: Date.now() });
      });
    },

    fallocate(p, fd, mode, offset, length, cb) {
      const h = handles.get(fd);
      if (!h?.fh || mode !== 0) return cb(h?.fh ? EOPNOTSUPP : EBADF);
      h.fh
        .stat()
        .then((st) => (offset + length > st.size ? h.fh!.truncate(offset + length) : undefined))
        .then(
          () => cb(0),
          (err) => cb(fail('fallocate', p, err)),
        );
    },
  };
}

