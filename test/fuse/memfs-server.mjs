// A small writable in-memory filesystem served through one FUSE binding, for test/fuse/binding.test.ts:
// every operation of the table, so the workspace overlay can rely on each of them. Run as
//
//   node memfs-server.mjs 3|2 MOUNTPOINT [TIMEOUT_MS]
//
// It prints one JSON line when mounted ({event: 'mounted'}) and, after SIGTERM unmounted it, one with
// what it saw ({event: 'ended', calls, stats, threads, fds}); then it lets the event loop drain, so a
// leaked thread or handle would keep it from exiting. It never touches its own mount.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const [binding, mnt, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg ?? 10_000);
const Fuse = binding === '3' ? (await import(fileURLToPath(new URL('../../dist/fuse/fuse3.js', import.meta.url)))).loadFuse3() : createRequire(import.meta.url)('fuse-native');
const E = (name) => Fuse[name];
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_TRUNC = 0o1000;
const O_ACCMODE = 3;

let ino = 1;
const node = (mode, extra = {}) => {
  const now = Date.now();
  return { mode, uid: 0, gid: 0, data: Buffer.alloc(0), size: 0, nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1, atime: now, mtime: now, ctime: now, xattrs: new Map(), ino: ino++, ...extra };
};
/** Path → node (hard links share one node). */
const nodes = new Map([['/', node(S_IFDIR | 0o755)]]);
/** A pattern file for large reads, and one opened with direct_io (the kernel sends the reader's sizes). */
const BIG = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7 + (i >> 12)) & 0xff;
nodes.set('/big', node(S_IFREG | 0o644, { data: BIG, size: BIG.length }));
nodes.set('/direct', node(S_IFREG | 0o644, { data: BIG, size: BIG.length }));
nodes.set('/hang', node(S_IFREG | 0o644, { data: Buffer.from('late answer\n'), size: 12 }));
const fds = new Map();
let nextFd = 10;
const calls = {};
let lateWrites = 0;

const parentOf = (p) => p.slice(0, p.lastIndexOf('/')) || '/';
const baseOf = (p) => p.slice(p.lastIndexOf('/') + 1);
const childrenOf = (dir) => [...nodes.keys()].filter((k) => k !== '/' && parentOf(k) === dir);
const stat = (n) => ({ mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink, ino: n.ino, blksize: 4096, blocks: Math.ceil(n.size / 512), atime: n.atime, mtime: n.mtime, ctime: n.ctime, rdev: n.rdev ?? 0 });
const touch = (n) => (n.mtime = n.ctime = Date.now());

function resize(n, size) {
  if (size > n.data.length) {
    const grown = Buffer.alloc(Math.max(size, n.data.length * 2));
    n.data.copy(grown, 0, 0, n.size);
    n.data = grown;
  } else if (size < n.size) n.data.fill(0, size, n.size);
  n.size = size;
  touch(n);
}

/** Move `src` (and everything below it) to `dest`. */
function move(src, dest) {
  for (const k of [...nodes.keys()]) {
    if (k === src || k.startsWith(`${src}/`)) {
      const n = nodes.get(k);
      nodes.delete(k);
      nodes.set(dest + k.slice(src.length), n);
    }
  }
}

function remove(p) {
  const n = nodes.get(p);
  nodes.delete(p);
  n.nlink--;
  n.ctime = Date.now();
}

const ops = {
  init: (cb) => cb(0),
  getattr: (p, cb) => (nodes.has(p) ? cb(0, stat(nodes.get(p))) : cb(E('ENOENT'))),
  fgetattr: (p, fd, cb) => (fds.has(fd) ? cb(0, stat(fds.get(fd).node)) : cb(E('EBADF'))),
  access: (p, mode, cb) => cb(nodes.has(p) ? 0 : E('ENOENT')),
  statfs: (p, cb) => cb(0, { bsize: 4096, frsize: 4096, blocks: 1_000_000, bfree: 500_000, bavail: 400_000, files: 1000, ffree: 900, favail: 900, fsid: 42, flag: 0, namemax: 255 }),
  readdir(p, cb) {
    const n = nodes.get(p);
    if (!n) return cb(E('ENOENT'));
    if ((n.mode & S_IFMT) !== S_IFDIR) return cb(E('ENOTDIR'));
    const kids = childrenOf(p);
    cb(0, ['.', '..', ...kids.map(baseOf)], [stat(n), stat(nodes.get(parentOf(p))), ...kids.map((k) => stat(nodes.get(k)))]);
  },
  opendir: (p, flags, cb) => (nodes.has(p) ? cb(0, nextFd++) : cb(E('ENOENT'))),
  releasedir: (p, fd, cb) => cb(0),
  fsyncdir: (p, fd, datasync, cb) => cb(0),
  open(p, flags, cb) {
    const n = nodes.get(p);
    if (!n) return cb(E('ENOENT'));
    if (flags & O_TRUNC && (flags & O_ACCMODE) !== 0) resize(n, 0);
    const fd = nextFd++;
    fds.set(fd, { node: n, flags });
    cb(0, fd, p === '/direct' || p === '/hang' ? { directIo: true } : { keepCache: p === '/big' });
  },
  create(p, mode, cb) {
    const ctx = fuse.context?.();
    const n = node(S_IFREG | (mode & 0o7777), { uid: ctx?.uid ?? 0, gid: ctx?.gid ?? 0 });
    nodes.set(p, n);
    const fd = nextFd++;
    fds.set(fd, { node: n, flags: ctx?.flags ?? 0 });
    cb(0, fd);
  },
  read(p, fd, buf, len, pos, cb) {
    const h = fds.get(fd);
    if (!h) return cb(E('EBADF'));
    const n = h.node;
    const answer = () => cb(Math.max(0, n.data.copy(buf, 0, pos, Math.min(n.size, pos + len))));
    // /hang answers only after the binding gave up (ETIMEDOUT), into the buffer it was given.
    if (p === '/hang') return void setTimeout(() => (answer(), lateWrites++), timeout * 2);
    answer();
  },
  write(p, fd, buf, len, pos, cb) {
    const h = fds.get(fd);
    if (!h) return cb(E('EBADF'));
    if (pos + len > h.node.size) resize(h.node, pos + len);
    buf.copy(h.node.data, pos, 0, len);
    touch(h.node);
    cb(len);
  },
  flush: (p, fd, cb) => cb(0),
  fsync: (p, fd, datasync, cb) => cb(fds.has(fd) ? 0 : E('EBADF')),
  release: (p, fd, cb) => (fds.delete(fd), cb(0)),
  truncate: (p, size, cb) => (nodes.has(p) ? (resize(nodes.get(p), size), cb(0)) : cb(E('ENOENT'))),
  ftruncate: (p, fd, size, cb) => (fds.has(fd) ? (resize(fds.get(fd).node, size), cb(0)) : cb(E('EBADF'))),
  unlink: (p, cb) => (nodes.has(p) ? (remove(p), cb(0)) : cb(E('ENOENT'))),
  rename(src, dest, cb) {
    if (!nodes.has(src)) return cb(E('ENOENT'));
    if (nodes.has(dest)) remove(dest);
    move(src, dest);
    cb(0);
  },
  rename2(src, dest, flags, cb) {
    if (!nodes.has(src)) return cb(E('ENOENT'));
    if (flags === 1) return nodes.has(dest) ? cb(E('EEXIST')) : (move(src, dest), cb(0)); // RENAME_NOREPLACE
    if (flags === 2) {
      // RENAME_EXCHANGE
      if (!nodes.has(dest)) return cb(E('ENOENT'));
      const tmp = `${src}.exchange-${process.pid}`;
      move(src, tmp);
      move(dest, src);
      move(tmp, dest);
      return cb(0);
    }
    cb(E('EINVAL'));
  },
  link(src, dest, cb) {
    const n = nodes.get(src);
    if (!n) return cb(E('ENOENT'));
    n.nlink++;
    nodes.set(dest, n);
    cb(0);
  },
  symlink: (target, p, cb) => (nodes.set(p, node(S_IFLNK | 0o777, { target, size: Buffer.byteLength(target) })), cb(0)),
  readlink: (p, cb) => (nodes.get(p)?.target !== undefined ? cb(0, nodes.get(p).target) : cb(E('EINVAL'))),
  mkdir(p, mode, cb) {
    if (nodes.has(p)) return cb(E('EEXIST'));
    nodes.set(p, node(S_IFDIR | (mode & 0o7777)));
    nodes.get(parentOf(p)).nlink++;
    cb(0);
  },
  rmdir(p, cb) {
    if (!nodes.has(p)) return cb(E('ENOENT'));
    if (childrenOf(p).length) return cb(E('ENOTEMPTY'));
    nodes.delete(p);
    nodes.get(parentOf(p)).nlink--;
    cb(0);
  },
  mknod: (p, mode, dev, cb) => (nodes.set(p, node(mode, { rdev: dev })), cb(0)),
  chmod: (p, mode, cb) => (nodes.has(p) ? ((nodes.get(p).mode = (nodes.get(p).mode & S_IFMT) | (mode & 0o7777)), cb(0)) : cb(E('ENOENT'))),
  chown(p, uid, gid, cb) {
    const n = nodes.get(p);
    if (!n) return cb(E('ENOENT'));
    if (uid !== -1) n.uid = uid;
    if (gid !== -1) n.gid = gid;
    cb(0);
  },
  utimens(p, atime, mtime, cb) {
    const n = nodes.get(p);
    if (!n) return cb(E('ENOENT'));
    if (!Number.isNaN(atime)) n.atime = atime;
    if (!Number.isNaN(mtime)) n.mtime = mtime;
    cb(0);
  },
  setxattr(p, name, value, position, flags, cb) {
    const n = nodes.get(p);
    if (!n) return cb(E('ENOENT'));
    if (flags === 1 && n.xattrs.has(name)) return cb(E('EEXIST')); // XATTR_CREATE
    if (flags === 2 && !n.xattrs.has(name)) return cb(E('ENODATA')); // XATTR_REPLACE
    n.xattrs.set(name, Buffer.from(value)); // a copy: the binding's buffer is the request's
    cb(0);
  },
  getxattr: (p, name, position, cb) => (nodes.get(p)?.xattrs.has(name) ? cb(0, nodes.get(p).xattrs.get(name)) : cb(E('ENODATA'))),
  listxattr: (p, cb) => (nodes.has(p) ? cb(0, [...nodes.get(p).xattrs.keys()]) : cb(E('ENOENT'))),
  removexattr: (p, name, cb) => (nodes.get(p)?.xattrs.delete(name) ? cb(0) : cb(E('ENODATA'))),
  fallocate(p, fd, mode, offset, length, cb) {
    const h = fds.get(fd);
    if (!h) return cb(E('EBADF'));
    if (mode !== 0) return cb(E('EOPNOTSUPP'));
    if (offset + length > h.node.size) resize(h.node, offset + length);
    cb(0);
  },
};

// Count every call, so the test can tell each operation reached us.
for (const [name, fn] of Object.entries(ops)) {
  ops[name] = (...args) => {
    calls[name] = (calls[name] ?? 0) + 1;
    return fn(...args);
  };
}

async function census() {
  const fdList = await fs.readdir('/proc/self/fd');
  const targets = await Promise.all(fdList.map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '?')));
  return { threads: (await fs.readdir('/proc/self/task')).length, fds: fdList.length, fdTargets: targets.sort() };
}

// Warm the libuv thread pool (fs calls start it) and the /dev/null that libuv keeps after its first
// child process (the unmount runs fusermount3), so only what the binding opens differs.
await fs.readFile('/proc/self/status');
await new Promise((resolve) => execFile('true', resolve));
const before = await census();
// No default_permissions (the kernel would answer access() itself) and no caching of entries and
// attributes, so every call reaches the table.
const Sub = class extends Fuse {
  _fuseOptions() {
    return '-ofsname=memfs,subtype=memfs,auto_unmount,entry_timeout=0,attr_timeout=0,negative_timeout=0';
  }
};
const fuse = new Sub(mnt, ops, { timeout });
await new Promise((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
// The mount's readahead, as `hexz mount` raises it (root only; the kernel's default is 128 KiB).
const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
const dev = info.split('\n').find((l) => l.split(' ')[4] === mnt)?.split(' ')[2];
const readahead = await fs.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, '1024').then(
  () => true,
  () => false,
);
const during = await census();
console.log(JSON.stringify({ event: 'mounted', before, during, readahead }));

process.once('SIGTERM', () => {
  fuse.unmount(async (err) => {
    await fuse.ended;
    const stats = fuse.stats?.();
    console.log(JSON.stringify({ event: 'ended', err: err?.message, calls, stats, lateWrites, ...(await census()), before }));
  });
});
