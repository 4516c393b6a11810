#!/usr/bin/env python3
# Exercises every FUSE operation on a memfs-server.mjs mount (test/fuse/binding.test.ts) with plain
# POSIX calls, as editors and tools make them, and prints what it observed as one JSON object; the
# test compares it with what each operation must give. Python because it reaches the calls Node has
# no API for (xattrs, renameat2, mknod, posix_fallocate, O_DIRECT); node-gyp needs python3 anyway.
import ctypes
import errno
import hashlib
import json
import mmap
import os
import stat
import sys

m = sys.argv[1]
p = lambda *a: os.path.join(m, *a)
out = {}


def err(fn):
    """The errno name fn() fails with, or None."""
    try:
        fn()
        return None
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


# statfs, access, getattr of the root, readdir
sv = os.statvfs(m)
out['statfs'] = [sv.f_bsize, sv.f_blocks, sv.f_bfree, sv.f_bavail, sv.f_files, sv.f_ffree, sv.f_namemax]
out['access_root'] = os.access(m, os.R_OK)
out['access_missing'] = err(lambda: os.stat(p('nope')))
out['root_is_dir'] = stat.S_ISDIR(os.stat(m).st_mode)

# create (O_CREAT|O_EXCL), write, pwrite at an offset, fsync, fdatasync, flush (close), read back
fd = os.open(p('a.txt'), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
os.write(fd, b'hello ')
os.pwrite(fd, b'world\n', 6)
os.fsync(fd)
os.fdatasync(fd)
out['fstat_size'] = os.fstat(fd).st_size
os.close(fd)
out['create_exists'] = err(lambda: os.open(p('a.txt'), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))
with open(p('a.txt'), 'rb') as f:
    out['read'] = f.read().decode()
st = os.stat(p('a.txt'))
out['mode'] = oct(stat.S_IMODE(st.st_mode))
out['owner'] = [st.st_uid, st.st_gid]

# append, truncate (path), ftruncate (fd), open with O_TRUNC
with open(p('a.txt'), 'ab') as f:
    f.write(b'more\n')
out['after_append'] = open(p('a.txt'), 'rb').read().decode()
os.truncate(p('a.txt'), 5)
out['after_truncate'] = open(p('a.txt'), 'rb').read().decode()
fd = os.open(p('a.txt'), os.O_RDWR)
os.ftruncate(fd, 3)
out['after_ftruncate'] = os.pread(fd, 100, 0).decode()
os.close(fd)
with open(p('t.txt'), 'wb') as f:
    f.write(b'x' * 1000)
with open(p('t.txt'), 'wb') as f:  # O_TRUNC
    f.write(b'y')
out['after_o_trunc'] = open(p('t.txt'), 'rb').read().decode()

# a large write (1 MiB pieces) read back exactly
blob = bytes((i * 31 + (i >> 10)) & 0xFF for i in range(3 * 1024 * 1024 + 123))
with open(p('blob.bin'), 'wb') as f:
    f.write(blob)
out['blob_sha'] = hashlib.sha256(open(p('blob.bin'), 'rb').read()).hexdigest() == hashlib.sha256(blob).hexdigest()
out['blob_size'] = os.stat(p('blob.bin')).st_size

# shared mmap writes reach write()
fd = os.open(p('mm.bin'), os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, 8192)
mm = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mm[100:105] = b'MMAP!'
mm.flush()
mm.close()
os.close(fd)
out['mmap'] = open(p('mm.bin'), 'rb').read()[100:105].decode()

# chmod, chown, utimens (ns precision through ms), UTIME_OMIT via os.utime of one time only is not portable: set both
os.chmod(p('a.txt'), 0o600)
os.chown(p('a.txt'), 1234, 5678)
os.utime(p('a.txt'), ns=(1_600_000_000_123_000_000, 1_500_000_000_456_000_000))
st = os.stat(p('a.txt'))
out['chmod'] = oct(stat.S_IMODE(st.st_mode))
out['chown'] = [st.st_uid, st.st_gid]
out['utimens'] = [st.st_atime_ns // 1_000_000, st.st_mtime_ns // 1_000_000]
os.chown(p('a.txt'), -1, 99)  # uid unchanged
out['chown_gid_only'] = [os.stat(p('a.txt')).st_uid, os.stat(p('a.txt')).st_gid]

# mkdir, readdir of a subdirectory, rmdir (not empty, then empty), opendir/releasedir/fsyncdir
os.mkdir(p('d'), 0o750)
open(p('d', 'inner'), 'wb').close()
out['mkdir_mode'] = oct(stat.S_IMODE(os.stat(p('d')).st_mode))
out['listdir'] = sorted(os.listdir(p('d')))
out['rmdir_not_empty'] = err(lambda: os.rmdir(p('d')))
dfd = os.open(p('d'), os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)
os.unlink(p('d', 'inner'))
os.rmdir(p('d'))
out['rmdir_gone'] = err(lambda: os.stat(p('d')))

# symlink, readlink, lstat; hard link, nlink
os.symlink('a.txt', p('l'))
out['readlink'] = os.readlink(p('l'))
out['lstat_is_link'] = stat.S_ISLNK(os.lstat(p('l')).st_mode)
out['through_link'] = open(p('l'), 'rb').read().decode()
os.link(p('a.txt'), p('hard'))
out['nlink'] = os.stat(p('a.txt')).st_nlink
out['hard_content'] = open(p('hard'), 'rb').read().decode()

# rename over an existing file (a lock-file + rename, as git and editors do), of a directory,
# renameat2 with RENAME_NOREPLACE and RENAME_EXCHANGE
with open(p('cfg'), 'wb') as f:
    f.write(b'old')
with open(p('cfg.lock'), 'wb') as f:
    f.write(b'new')
os.rename(p('cfg.lock'), p('cfg'))
out['rename_over'] = open(p('cfg'), 'rb').read().decode()
os.mkdir(p('dir1'))
open(p('dir1', 'f'), 'wb').close()
os.rename(p('dir1'), p('dir2'))
out['rename_dir'] = sorted(os.listdir(p('dir2')))
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100


def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        return errno.errorcode[ctypes.get_errno()]
    return None


with open(p('x'), 'wb') as f:
    f.write(b'X')
with open(p('y'), 'wb') as f:
    f.write(b'Y')
out['noreplace_exists'] = renameat2(p('x'), p('y'), 1)
out['exchange'] = renameat2(p('x'), p('y'), 2)
out['exchanged'] = [open(p('x'), 'rb').read().decode(), open(p('y'), 'rb').read().decode()]
out['noreplace_ok'] = renameat2(p('x'), p('z'), 1)

# unlink, and an unlinked file stays readable through its open descriptor (fgetattr too)
fd = os.open(p('hard'), os.O_RDONLY)
os.unlink(p('hard'))
out['unlinked'] = err(lambda: os.stat(p('hard')))
out['read_unlinked_open'] = os.pread(fd, 10, 0).decode()
out['fstat_unlinked'] = os.fstat(fd).st_size
os.close(fd)

# mknod: a FIFO and a regular file
os.mknod(p('fifo'), 0o644 | stat.S_IFIFO)
os.mknod(p('reg'), 0o600 | stat.S_IFREG)
out['mknod'] = [stat.S_ISFIFO(os.lstat(p('fifo')).st_mode), stat.S_ISREG(os.lstat(p('reg')).st_mode)]

# xattrs: set, create-only, replace-only, get, list, remove
os.setxattr(p('a.txt'), 'user.color', b'blue')
out['xattr_create_exists'] = err(lambda: os.setxattr(p('a.txt'), 'user.color', b'red', os.XATTR_CREATE))
out['xattr_replace_missing'] = err(lambda: os.setxattr(p('a.txt'), 'user.size', b'1', os.XATTR_REPLACE))
os.setxattr(p('a.txt'), 'user.big', b'z' * 3000)
out['xattr_get'] = os.getxattr(p('a.txt'), 'user.color').decode()
out['xattr_big'] = len(os.getxattr(p('a.txt'), 'user.big'))
out['xattr_list'] = sorted(os.listxattr(p('a.txt')))
os.removexattr(p('a.txt'), 'user.color')
out['xattr_removed'] = err(lambda: os.getxattr(p('a.txt'), 'user.color'))

# fallocate (mode 0 extends the file)
fd = os.open(p('fa.bin'), os.O_CREAT | os.O_RDWR, 0o644)
os.posix_fallocate(fd, 0, 65536)
out['fallocate_size'] = os.fstat(fd).st_size
os.close(fd)

# large reads: through the page cache with readahead (/big), and O_DIRECT-like direct_io (/direct)
for name in ('big', 'direct'):
    h = hashlib.sha256()
    with open(p(name), 'rb', buffering=0) as f:
        while True:
            b = f.read(1024 * 1024)
            if not b:
                break
            h.update(b)
    out[name + '_sha'] = h.hexdigest()

# an operation the server answers only after the binding's timeout: the reader gets an error, the
# mount keeps working (the late answer lands in memory nobody sends)
out['hang'] = err(lambda: open(p('hang'), 'rb', buffering=0).read(100))
out['after_hang'] = open(p('a.txt'), 'rb').read().decode()

print(json.dumps(out))
