/*
 * hexz_fuse3: an N-API binding to libfuse3 (Debian's libfuse3-dev, 3.14) for `hexz mount` and the
 * workspace overlay. The JavaScript side (fuse/fuse3.ts) makes it a drop-in for fuse-native: the same
 * path-based operations table and callback conventions. Documented in docs/operations.md, "FUSE mounts".
 *
 * Why this file is longer than 400 lines: it covers every operation of fuse-native's table (the
 * overlay writes through it) plus fallocate and rename flags, and keeps them in one translation unit
 * with one request path; splitting it would spread one state machine over several files.
 *
 * Design
 * ------
 * API level. libfuse's high-level (path) API, not the low-level (inode) one. The low-level API would
 * let a reply be sent from any thread, so no libfuse thread would wait for JavaScript, but it would
 * make this binding re-implement what libfuse's path layer does for the overlay: the inode table and
 * lookup counts, paths across rename/link/unlink of open files, readdir offsets and readdirplus. The
 * cost of the high-level API is that a libfuse worker blocks on a condition variable for the whole JS
 * round trip. That costs one thread wake-up per request and one thread per request in flight, so the
 * loop may start up to `maxThreads` workers (default 32, above the kernel's 12 background requests
 * plus synchronous ones), and it has an upside on two cores: the reply's write to /dev/fuse (the
 * kernel copies up to 1 MiB into the reader's pages) runs on the worker, not on the JS thread, which
 * is the bottleneck. Measured on 2 cores with 4 KiB requests at queue depth 1: ~16-20 us from queueing
 * until JS runs (the event loop's wake-up: the same with the low-level API), a few us of JS, ~10 us
 * from JS's answer until the worker runs again (what the low-level API would save, a fifth of the
 * round trip); still 20 % more requests per second than fuse-native. docs/operations.md, "FUSE mounts".
 *
 * Request path. A worker takes a slot from a fixed table, fills in the request, queues the slot's id
 * on a napi_threadsafe_function and waits (with a timeout). On the JS thread, call_js turns the slot
 * into arguments and calls the JS dispatcher; JS answers later with reply(id, result, ...), which
 * copies the answer into the slot and wakes the worker. Everything crosses by slot id (index +
 * generation), never by pointer: an answer to a request that timed out finds a newer generation (or
 * a free slot) and is ignored, so no late answer can write into memory of a finished request.
 * Answers are copied into the slot itself (stat, statvfs, strings in malloc'd memory), never into
 * libfuse's buffers from the JS thread; the worker copies them out once it wakes.
 *
 * Zero-copy reads. read_buf allocates the reply memory and JS gets it as an external Buffer: JS writes
 * the file's bytes straight into the memory the reply is sent from (fuse_reply_data writes it to
 * /dev/fuse without another copy). On a normal answer the Buffer's ArrayBuffer is detached (JS can no
 * longer touch it) and the memory is handed to libfuse, which frees it after the reply. After a
 * timeout the memory belongs to the Buffer instead and is freed by its finalizer, so a late write by
 * JS lands in live memory that nobody sends. Writes are copied once from libfuse's request buffer into
 * memory the JS Buffer owns (libfuse reuses its buffer as soon as the operation returns, which a
 * timeout makes unpredictable).
 *
 * Request sizes. libfuse3 negotiates FUSE_MAX_PAGES with the kernel: max_write and max_pages become
 * 1 MiB (libfuse's buffer of 256 pages), so reads arrive in pieces of up to 1 MiB instead of libfuse2's
 * 128 KiB. The kernel's readahead (max_readahead) can only be lowered at INIT, so the mount raises it
 * through /sys/class/bdi afterwards (fuse/mount.ts). Every read's size is counted (stats()).
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>

/* Operation codes shared with fuse/fuse3.ts (keep in step with OP there). */
enum {
  OP_END = 0, OP_INIT, OP_GETATTR, OP_ACCESS, OP_STATFS, OP_READLINK, OP_OPENDIR, OP_READDIR,
  OP_RELEASEDIR, OP_FSYNCDIR, OP_OPEN, OP_CREATE, OP_READ, OP_WRITE, OP_FLUSH, OP_FSYNC, OP_RELEASE,
  OP_TRUNCATE, OP_UNLINK, OP_RENAME, OP_LINK, OP_SYMLINK, OP_MKDIR, OP_RMDIR, OP_MKNOD, OP_CHMOD,
  OP_CHOWN, OP_UTIMENS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_FALLOCATE, OP_COUNT
};

/* Open flags JS may set in its answer to open/create/opendir (OPEN_FLAGS in fuse/fuse3.ts). */
#define OPEN_KEEP_CACHE 1
#define OPEN_DIRECT_IO 2
#define OPEN_NONSEEKABLE 4
#define OPEN_CACHE_READDIR 8
#define OPEN_NOFLUSH 16

/* Numbers per stat / statvfs in the Float64Arrays JS answers with (statArray in fuse/fuse3.ts). */
#define STAT_FIELDS 13
#define STATFS_FIELDS 11
/* Slot ids: index in the low bits, generation above (doubles carry 53 bits exactly). */
#define SLOT_BITS 10
#define MAX_SLOTS (1 << SLOT_BITS)
/* Read sizes are counted in power-of-two buckets: <=4 KiB, 8 KiB, ... 1 MiB, >1 MiB. */
#define READ_BUCKETS 10

enum { FREE = 0, QUEUED, DISPATCHED, DONE };

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t id; /* 0 while free or after the waiter gave up */
  int state;
  int op;
  /* Inputs: libfuse memory, valid while the worker waits (call_js reads them under mu). */
  const char *s1, *s2;
  double n[5];
  int nn;
  const char *in_value; /* setxattr value */
  size_t in_size;
  /* Reply memory of a read (to libfuse) or copy of a write's data (to JS). */
  char *mem;
  size_t memlen;
  struct ext_mem *ext; /* set once a JS Buffer owns or shares mem */
  uid_t uid;
  gid_t gid;
  pid_t pid;
  mode_t umask;
  /* Outputs. */
  int res;
  struct stat st;
  struct statvfs sv;
  double fh;
  int open_flags;
  char *out; /* readlink target, xattr value, xattr names, readdir names */
  size_t outlen;
  double *out_stats; /* readdir: STAT_FIELDS per name */
  uint32_t out_count;
} slot_t;

/* Owner record of memory a JS Buffer was created over (the Buffer's finalizer hint). */
typedef struct ext_mem {
  char *mem;
  int js_owns; /* 1: the finalizer frees mem; 0: it was handed to libfuse */
} ext_mem;

typedef struct {
  struct fuse *fuse;
  pthread_t thread;
  int thread_started, joined, mounted;
  napi_threadsafe_function tsfn;
  slot_t *slots;
  int nslots;
  pthread_mutex_t free_mu;
  int *free_list;
  int nfree;
  int64_t generation;
  /* Settings. */
  int timeout_ms, max_threads, max_background, congestion_threshold, hard_remove, cache_symlinks;
  /* What INIT negotiated. */
  unsigned proto_major, proto_minor, max_write, max_read, max_readahead, capable, want, conn_bg, conn_ct;
  /* fusermount3's auto_unmount socket and watchdog, closed and reaped at the end (see leftovers()). */
  int au_sock;
  pid_t au_pid;
  /* Read request sizes the kernel sent. */
  uint64_t reads, read_bytes, read_max, read_buckets[READ_BUCKETS];
} fs_t;

/* ---- slots ---------------------------------------------------------------------------------- */

static fs_t *current_fs(void) { return (fs_t *)fuse_get_context()->private_data; }

static slot_t *slot_acquire(fs_t *fs, int op) {
  pthread_mutex_lock(&fs->free_mu);
  if (fs->nfree == 0) {
    pthread_mutex_unlock(&fs->free_mu);
    return NULL;
  }
  int idx = fs->free_list[--fs->nfree];
  int64_t gen = ++fs->generation;
  pthread_mutex_unlock(&fs->free_mu);
  slot_t *s = &fs->slots[idx];
  pthread_mutex_lock(&s->mu);
  s->id = (gen << SLOT_BITS) | idx;
  s->state = QUEUED;
  s->op = op;
  s->s1 = s->s2 = NULL;
  s->nn = 0;
  s->in_value = NULL;
  s->mem = NULL;
  s->ext = NULL;
  s->res = -EIO;
  s->out = NULL;
  s->out_stats = NULL;
  s->outlen = s->out_count = 0;
  s->fh = -1;
  s->open_flags = 0;
  struct fuse_context *ctx = fuse_get_context();
  s->uid = ctx->uid;
  s->gid = ctx->gid;
  s->pid = ctx->pid;
  s->umask = ctx->umask;
  pthread_mutex_unlock(&s->mu);
  return s;
}

static void slot_release(fs_t *fs, slot_t *s) {
  pthread_mutex_lock(&s->mu);
  s->id = 0;
  s->state = FREE;
  free(s->out);
  free(s->out_stats);
  s->out = NULL;
  s->out_stats = NULL;
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_lock(&fs->free_mu);
  fs->free_list[fs->nfree++] = (int)(s - fs->slots);
  pthread_mutex_unlock(&fs->free_mu);
}

/*
 * Queue the slot to JS and wait for the answer. Returns with s->mu held and the result in s->res:
 * the answer, or -ETIMEDOUT / -EIO when there was none (then s->id is 0, so nothing can answer it
 * any more, and memory already given to JS stays JS's). The caller copies outputs, unlocks, releases.
 */
static void roundtrip(fs_t *fs, slot_t *s) {
  int64_t id = s->id;
  if (napi_call_threadsafe_function(fs->tsfn, (void *)(intptr_t)id, napi_tsfn_blocking) != napi_ok) {
    pthread_mutex_lock(&s->mu);
    s->id = 0;
    s->res = -EIO;
    return;
  }
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += fs->timeout_ms / 1000;
  until.tv_nsec += (long)(fs->timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (s->state != DONE) {
    if (fs->timeout_ms <= 0) {
      pthread_cond_wait(&s->cv, &s->mu);
    } else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->state != DONE) {
      s->id = 0; /* late answers and a late call_js now find nothing */
      s->res = -ETIMEDOUT;
      break;
    }
  }
}

/* The end of every request: unlock the slot roundtrip() returned locked, free it, return `res`. */
static int finish(fs_t *fs, slot_t *s, int res) {
  pthread_mutex_unlock(&s->mu);
  slot_release(fs, s);
  return res;
}

/* Run one request without outputs beyond the result; `value` only for setxattr. */
static int request(int op, const char *s1, const char *s2, const char *value, size_t size, int nn, double n0, double n1, double n2, double n3, double n4) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, op);
  if (!s) return -EAGAIN;
  s->s1 = s1;
  s->s2 = s2;
  s->in_value = value;
  s->in_size = size;
  s->nn = nn;
  s->n[0] = n0, s->n[1] = n1, s->n[2] = n2, s->n[3] = n3, s->n[4] = n4;
  roundtrip(fs, s);
  return finish(fs, s, s->res);
}

static int simple(int op, const char *s1, const char *s2, int nn, double n0, double n1, double n2, double n3, double n4) {
  return request(op, s1, s2, NULL, 0, nn, n0, n1, n2, n3, n4);
}

static double fh_of(struct fuse_file_info *fi) { return fi ? (double)fi->fh : -1; }

/* A stat from JS's Float64Array: mode uid gid size dev nlink ino rdev blksize blocks atime mtime ctime (ms). */
static void fill_stat(struct stat *st, const double *a) {
  memset(st, 0, sizeof *st);
  st->st_mode = (mode_t)a[0];
  st->st_uid = (uid_t)a[1];
  st->st_gid = (gid_t)a[2];
  st->st_size = (off_t)a[3];
  st->st_dev = (dev_t)a[4];
  st->st_nlink = (nlink_t)a[5];
  st->st_ino = (ino_t)a[6];
  st->st_rdev = (dev_t)a[7];
  st->st_blksize = (blksize_t)a[8];
  st->st_blocks = (blkcnt_t)a[9];
  struct timespec *ts[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
  for (int i = 0; i < 3; i++) {
    double ms = a[10 + i] == a[10 + i] ? a[10 + i] : 0; /* NaN: 0 */
    double sec = floor(ms / 1000);
    long ns = (long)floor((ms - sec * 1000) * 1e6 + 0.5);
    ts[i]->tv_sec = (time_t)sec;
    ts[i]->tv_nsec = ns < 0 ? 0 : ns > 999999999L ? 999999999L : ns;
  }
}


/* ---- libfuse operations (on libfuse's worker threads) ---------------------------------------- */

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, OP_GETATTR);
  if (!s) return -EAGAIN;
  s->s1 = path;
  s->nn = 1;
  s->n[0] = fh_of(fi);
  roundtrip(fs, s);
  int res = s->res;
  if (res == 0) *st = s->st;
  return finish(fs, s, res);
}

static int op_access(const char *path, int mask) { return simple(OP_ACCESS, path, NULL, 1, mask, 0, 0, 0, 0); }

static int op_statfs(const char *path, struct statvfs *sv) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, OP_STATFS);
  if (!s) return -EAGAIN;
  s->s1 = path;
  roundtrip(fs, s);
  int res = s->res;
  if (res == 0) *sv = s->sv;
  return finish(fs, s, res);
}

static int op_readlink(const char *path, char *buf, size_t size) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, OP_READLINK);
  if (!s) return -EAGAIN;
  s->s1 = path;
  roundtrip(fs, s);
  int res = s->res;
  if (res >= 0 && size > 0) {
    size_t n = s->outlen < size - 1 ? s->outlen : size - 1;
    if (n) memcpy(buf, s->out, n);
    buf[n] = 0;
    res = 0;
  }
  return finish(fs, s, res);
}

/* open, create and opendir: JS answers with a handle and open flags. */
static int open_like(int op, const char *path, double mode, struct fuse_file_info *fi) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, op);
  if (!s) return -EAGAIN;
  s->s1 = path;
  s->nn = op == OP_CREATE ? 2 : 1;
  s->n[0] = op == OP_CREATE ? mode : fi->flags;
  s->n[1] = fi->flags;
  roundtrip(fs, s);
  int res = s->res;
  if (res >= 0) {
    res = 0;
    if (s->fh >= 0) fi->fh = (uint64_t)s->fh;
    if (s->open_flags & OPEN_KEEP_CACHE) fi->keep_cache = 1;
    if (s->open_flags & OPEN_DIRECT_IO) fi->direct_io = 1;
    if (s->open_flags & OPEN_NONSEEKABLE) fi->nonseekable = 1;
    if (s->open_flags & OPEN_CACHE_READDIR) fi->cache_readdir = 1;
    if (s->open_flags & OPEN_NOFLUSH) fi->noflush = 1;
  }
  return finish(fs, s, res);
}

static int op_open(const char *path, struct fuse_file_info *fi) { return open_like(OP_OPEN, path, 0, fi); }
static int op_opendir(const char *path, struct fuse_file_info *fi) { return open_like(OP_OPENDIR, path, 0, fi); }
static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) { return open_like(OP_CREATE, path, mode, fi); }

/* JS lists the whole directory at once (fuse-native's convention); libfuse serves the offsets. */
static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off;
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, OP_READDIR);
  if (!s) return -EAGAIN;
  s->s1 = path;
  s->nn = 2;
  s->n[0] = fh_of(fi);
  s->n[1] = (flags & FUSE_READDIR_PLUS) ? 1 : 0;
  roundtrip(fs, s);
  int res = s->res;
  if (res >= 0) {
    res = 0;
    const char *name = s->out;
    int plus = s->out_stats && (flags & FUSE_READDIR_PLUS);
    for (uint32_t i = 0; i < s->out_count; i++) {
      struct stat st;
      if (s->out_stats) fill_stat(&st, s->out_stats + (size_t)i * STAT_FIELDS);
      if (filler(buf, name, s->out_stats ? &st : NULL, 0, plus ? FUSE_FILL_DIR_PLUS : 0)) break;
      name += strlen(name) + 1;
    }
  }
  return finish(fs, s, res);
}

static int op_releasedir(const char *path, struct fuse_file_info *fi) { return simple(OP_RELEASEDIR, path, NULL, 1, fh_of(fi), 0, 0, 0, 0); }
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) { return simple(OP_FSYNCDIR, path, NULL, 2, fh_of(fi), datasync, 0, 0, 0); }

static void count_read(fs_t *fs, size_t size) {
  int b = 0;
  while (b < READ_BUCKETS - 1 && size > ((size_t)4096 << b)) b++;
  __atomic_add_fetch(&fs->reads, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&fs->read_bytes, size, __ATOMIC_RELAXED);
  __atomic_add_fetch(&fs->read_buckets[b], 1, __ATOMIC_RELAXED);
  uint64_t max = __atomic_load_n(&fs->read_max, __ATOMIC_RELAXED);
  while (size > max && !__atomic_compare_exchange_n(&fs->read_max, &max, size, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

static int op_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off, struct fuse_file_info *fi) {
  fs_t *fs = current_fs();
  count_read(fs, size);
  struct fuse_bufvec *vec = malloc(sizeof *vec);
  char *mem = malloc(size ? size : 1);
  slot_t *s = vec && mem ? slot_acquire(fs, OP_READ) : NULL;
  if (!s) {
    free(vec);
    free(mem);
    return vec && mem ? -EAGAIN : -ENOMEM;
  }
  s->s1 = path;
  s->nn = 3;
  s->n[0] = fh_of(fi);
  s->n[1] = (double)size;
  s->n[2] = (double)off;
  s->mem = mem;
  s->memlen = size;
  roundtrip(fs, s);
  int res = s->res;
  if (res >= 0) {
    /* Answered: mem was detached from its Buffer (or never had one), or JS kept it and s->out is a copy. */
    *vec = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)res);
    vec->buf[0].mem = s->out ? s->out : mem;
    s->out = NULL;
    *bufp = vec; /* libfuse frees vec and its memory after the reply */
    res = 0;
  } else {
    if (!s->ext) free(mem); /* no Buffer over it: still ours; else the Buffer's finalizer frees it */
    free(vec);
  }
  return finish(fs, s, res);
}

static int op_write_buf(const char *path, struct fuse_bufvec *buf, off_t off, struct fuse_file_info *fi) {
  fs_t *fs = current_fs();
  size_t size = fuse_buf_size(buf);
  char *mem = malloc(size ? size : 1);
  if (!mem) return -ENOMEM;
  /* One copy out of libfuse's request buffer (or its splice pipe) into memory the JS Buffer owns. */
  struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
  dst.buf[0].mem = mem;
  ssize_t got = fuse_buf_copy(&dst, buf, 0);
  if (got < 0) {
    free(mem);
    return (int)got;
  }
  slot_t *s = slot_acquire(fs, OP_WRITE);
  if (!s) {
    free(mem);
    return -EAGAIN;
  }
  s->s1 = path;
  s->nn = 3;
  s->n[0] = fh_of(fi);
  s->n[1] = (double)got;
  s->n[2] = (double)off;
  s->mem = mem;
  s->memlen = (size_t)got;
  roundtrip(fs, s);
  int res = s->res;
  if (!s->ext) free(mem); /* never reached JS */
  if (res > (int)got) res = -EIO;
  return finish(fs, s, res);
}

static int op_flush(const char *path, struct fuse_file_info *fi) { return simple(OP_FLUSH, path, NULL, 1, fh_of(fi), 0, 0, 0, 0); }
static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) { return simple(OP_FSYNC, path, NULL, 2, fh_of(fi), datasync, 0, 0, 0); }
static int op_release(const char *path, struct fuse_file_info *fi) { return simple(OP_RELEASE, path, NULL, 2, fh_of(fi), fi->flags, 0, 0, 0); }
static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) { return simple(OP_TRUNCATE, path, NULL, 2, (double)size, fh_of(fi), 0, 0, 0); }
static int op_unlink(const char *path) { return simple(OP_UNLINK, path, NULL, 0, 0, 0, 0, 0, 0); }
static int op_rmdir(const char *path) { return simple(OP_RMDIR, path, NULL, 0, 0, 0, 0, 0, 0); }
static int op_rename(const char *from, const char *to, unsigned int flags) { return simple(OP_RENAME, from, to, 1, flags, 0, 0, 0, 0); }
static int op_link(const char *from, const char *to) { return simple(OP_LINK, from, to, 0, 0, 0, 0, 0, 0); }
static int op_symlink(const char *target, const char *path) { return simple(OP_SYMLINK, target, path, 0, 0, 0, 0, 0, 0); }
static int op_mkdir(const char *path, mode_t mode) { return simple(OP_MKDIR, path, NULL, 1, mode, 0, 0, 0, 0); }
static int op_mknod(const char *path, mode_t mode, dev_t dev) { return simple(OP_MKNOD, path, NULL, 2, mode, (double)dev, 0, 0, 0); }
static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) { return simple(OP_CHMOD, path, NULL, 2, mode, fh_of(fi), 0, 0, 0); }
static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  /* (uid_t)-1 / (gid_t)-1: leave unchanged, passed as -1. */
  return simple(OP_CHOWN, path, NULL, 3, uid == (uid_t)-1 ? -1 : (double)uid, gid == (gid_t)-1 ? -1 : (double)gid, fh_of(fi), 0, 0);
}

/* Times in ms since the epoch (fuse-native's unit, sub-ms kept as a fraction); UTIME_OMIT as NaN. */
static double ts_ms(const struct timespec *t) {
  if (t->tv_nsec == UTIME_OMIT) return NAN;
  struct timespec now;
  if (t->tv_nsec == UTIME_NOW) {
    clock_gettime(CLOCK_REALTIME, &now);
    t = &now;
  }
  return (double)t->tv_sec * 1000.0 + (double)t->tv_nsec / 1e6;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  if (!tv) tv = now;
  return simple(OP_UTIMENS, path, NULL, 3, ts_ms(&tv[0]), ts_ms(&tv[1]), fh_of(fi), 0, 0);
}

static int op_setxattr(const char *path, const char *name, const char *value, size_t size, int flags) {
  return request(OP_SETXATTR, path, name, value, size, 1, flags, 0, 0, 0, 0);
}

/* getxattr and listxattr: size 0 asks for the length; too small a buffer is ERANGE. */
static int xattr_like(int op, const char *path, const char *name, char *buf, size_t size) {
  fs_t *fs = current_fs();
  slot_t *s = slot_acquire(fs, op);
  if (!s) return -EAGAIN;
  s->s1 = path;
  s->s2 = name;
  s->nn = 1;
  s->n[0] = (double)size;
  roundtrip(fs, s);
  int res = s->res;
  if (res >= 0) {
    if (size == 0) res = (int)s->outlen;
    else if (s->outlen > size) res = -ERANGE;
    else {
      if (s->outlen) memcpy(buf, s->out, s->outlen);
      res = (int)s->outlen;
    }
  }
  return finish(fs, s, res);
}

static int op_getxattr(const char *path, const char *name, char *buf, size_t size) { return xattr_like(OP_GETXATTR, path, name, buf, size); }
static int op_listxattr(const char *path, char *buf, size_t size) { return xattr_like(OP_LISTXATTR, path, NULL, buf, size); }
static int op_removexattr(const char *path, const char *name) { return simple(OP_REMOVEXATTR, path, name, 0, 0, 0, 0, 0, 0); }
static int op_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  return simple(OP_FALLOCATE, path, NULL, 4, fh_of(fi), mode, (double)off, (double)len, 0);
}

/* INIT: set what the kernel should use, note what it granted, then let JS know (and run ops.init). */
static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  fs_t *fs = current_fs();
  cfg->hard_remove = fs->hard_remove; /* 0 (libfuse's default): an unlinked open file is renamed .fuse_hidden… */
  cfg->nullpath_ok = 0;               /* operations get the path whenever it still exists */
  cfg->use_ino = 0;
  if (fs->max_background > 0) conn->max_background = (unsigned)fs->max_background;
  if (fs->congestion_threshold > 0) conn->congestion_threshold = (unsigned)fs->congestion_threshold;
  if (fs->cache_symlinks && (conn->capable & FUSE_CAP_CACHE_SYMLINKS)) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  fs->proto_major = conn->proto_major;
  fs->proto_minor = conn->proto_minor;
  fs->max_write = conn->max_write;
  fs->max_read = conn->max_read;
  fs->max_readahead = conn->max_readahead;
  fs->capable = conn->capable;
  fs->want = conn->want;
  fs->conn_bg = conn->max_background;
  fs->conn_ct = conn->congestion_threshold;
  simple(OP_INIT, NULL, NULL, 0, 0, 0, 0, 0, 0);
  return fs;
}

/* ---- JS thread --------------------------------------------------------------------------------- */

static void free_ext(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  ext_mem *e = hint;
  if (e->js_owns) free(e->mem);
  free(e);
}

static napi_value str_or_undefined(napi_env env, const char *s) {
  napi_value v;
  if (s) napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else napi_get_undefined(env, &v);
  return v;
}

/*
 * A queued request reaches JS: handler(op, id, s1, s2, buffer, n0..n4). Runs under the slot's mutex
 * while it reads the request, so the worker cannot give up (and libfuse free the path) meanwhile.
 */
static void call_js(napi_env env, napi_value handler, void *context, void *data) {
  fs_t *fs = context;
  if (!env) return;
  napi_value argv[10], undef, global;
  napi_get_undefined(env, &undef);
  napi_get_global(env, &global);
  if (!data) { /* the loop ended */
    napi_create_int32(env, OP_END, &argv[0]);
    napi_call_function(env, global, handler, 1, argv, NULL);
    return;
  }
  int64_t id = (int64_t)(intptr_t)data;
  slot_t *s = &fs->slots[id & (MAX_SLOTS - 1)];
  pthread_mutex_lock(&s->mu);
  if (s->id != id || s->state != QUEUED) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  napi_create_int32(env, s->op, &argv[0]);
  napi_create_double(env, (double)id, &argv[1]);
  argv[2] = str_or_undefined(env, s->s1);
  argv[3] = str_or_undefined(env, s->s2);
  argv[4] = undef;
  if (s->mem) {
    ext_mem *e = malloc(sizeof *e);
    if (e) {
      e->mem = s->mem;
      e->js_owns = 1;
      if (napi_create_external_buffer(env, s->memlen, s->mem, free_ext, e, &argv[4]) == napi_ok) s->ext = e;
      else free(e);
    }
    /* A Node without external buffers (a V8 sandbox): JS gets a copy, for a read an empty one. */
    if (!s->ext) {
      void *p;
      if (s->op == OP_WRITE) napi_create_buffer_copy(env, s->memlen, s->mem, &p, &argv[4]);
      else napi_create_buffer(env, s->memlen, &p, &argv[4]);
    }
  } else if (s->in_value) {
    void *copy;
    napi_create_buffer_copy(env, s->in_size, s->in_value, &copy, &argv[4]);
  }
  for (int i = 0; i < 5; i++) {
    if (i < s->nn) napi_create_double(env, s->n[i], &argv[5 + i]);
    else argv[5 + i] = undef;
  }
  s->state = DISPATCHED;
  pthread_mutex_unlock(&s->mu);
  if (napi_call_function(env, global, handler, 10, argv, NULL) == napi_pending_exception) {
    /* A synchronous throw in an operation: the request fails with EIO, the exception is uncaught. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    pthread_mutex_lock(&s->mu);
    if (s->id == id && s->state == DISPATCHED) {
      s->res = -EIO;
      s->state = DONE;
      pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    napi_fatal_exception(env, exc);
  }
}

static fs_t *fs_of(napi_env env, napi_value v) {
  fs_t *fs = NULL;
  napi_get_value_external(env, v, (void **)&fs);
  return fs;
}

static int float64s(napi_env env, napi_value v, double **out, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, (void **)out, &ab, &off) != napi_ok) return 0;
  return type == napi_float64_array;
}

/* A JS string as malloc'd UTF-8 (NUL-terminated); its length in *len. */
static char *utf8_dup(napi_env env, napi_value v, size_t *len) {
  if (napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok) return NULL;
  char *s = malloc(*len + 1);
  if (s) napi_get_value_string_utf8(env, v, s, *len + 1, len);
  return s;
}

/* Names (an array of strings) packed as "a\0b\0…"; count in *count, bytes in *len. */
static char *pack_names(napi_env env, napi_value arr, uint32_t *count, size_t *len) {
  bool is;
  *count = 0;
  *len = 0;
  if (napi_is_array(env, arr, &is) != napi_ok || !is) return NULL;
  napi_get_array_length(env, arr, count);
  size_t cap = 256, used = 0;
  char *out = malloc(cap);
  for (uint32_t i = 0; out && i < *count; i++) {
    napi_value el;
    size_t n = 0;
    napi_get_element(env, arr, i, &el);
    if (napi_get_value_string_utf8(env, el, NULL, 0, &n) != napi_ok) n = 0;
    if (used + n + 1 > cap) {
      while (used + n + 1 > cap) cap *= 2;
      char *grown = realloc(out, cap);
      if (!grown) {
        free(out);
        return NULL;
      }
      out = grown;
    }
    if (n) napi_get_value_string_utf8(env, el, out + used, n + 1, &n);
    out[used + n] = 0;
    used += n + 1;
  }
  *len = used;
  return out;
}

/* The slot of request `idv` of mount `handle`, locked, if it is being dispatched; else NULL. */
static slot_t *dispatched(napi_env env, napi_value handle, napi_value idv) {
  fs_t *fs = fs_of(env, handle);
  double idd = 0;
  napi_get_value_double(env, idv, &idd);
  int64_t id = (int64_t)idd;
  if (!fs || !fs->slots || id <= 0) return NULL;
  slot_t *s = &fs->slots[id & (MAX_SLOTS - 1)];
  pthread_mutex_lock(&s->mu);
  if (s->id == id && s->state == DISPATCHED) return s;
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/*
 * reply(handle, id, result, v1, v2): the answer to one request; ignored (returns false) when that
 * request is no longer waiting (answered already, or timed out).
 */
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], ret;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t res = -EIO;
  napi_get_value_int32(env, argv[2], &res);
  napi_get_boolean(env, false, &ret);
  slot_t *s = argc >= 3 ? dispatched(env, argv[0], argv[1]) : NULL;
  if (!s) return ret;
  double *a;
  size_t n;
  if (res >= 0) {
    switch (s->op) {
      case OP_GETATTR:
        if (argc > 3 && float64s(env, argv[3], &a, &n) && n >= STAT_FIELDS) fill_stat(&s->st, a);
        else res = -EIO;
        break;
      case OP_STATFS:
        if (argc > 3 && float64s(env, argv[3], &a, &n) && n >= STATFS_FIELDS) {
          memset(&s->sv, 0, sizeof s->sv);
          s->sv.f_bsize = (unsigned long)a[0];
          s->sv.f_frsize = (unsigned long)a[1];
          s->sv.f_blocks = (fsblkcnt_t)a[2];
          s->sv.f_bfree = (fsblkcnt_t)a[3];
          s->sv.f_bavail = (fsblkcnt_t)a[4];
          s->sv.f_files = (fsfilcnt_t)a[5];
          s->sv.f_ffree = (fsfilcnt_t)a[6];
          s->sv.f_favail = (fsfilcnt_t)a[7];
          s->sv.f_fsid = (unsigned long)a[8];
          s->sv.f_flag = (unsigned long)a[9];
          s->sv.f_namemax = (unsigned long)a[10];
        } else res = -EIO;
        break;
      case OP_READLINK:
        s->out = argc > 3 ? utf8_dup(env, argv[3], &s->outlen) : NULL;
        if (!s->out) res = -EIO;
        break;
      case OP_OPEN:
      case OP_OPENDIR:
      case OP_CREATE: {
        double fh = -1;
        int32_t fl = 0;
        if (argc > 3 && napi_get_value_double(env, argv[3], &fh) == napi_ok && fh > 0) s->fh = fh;
        if (argc > 4) napi_get_value_int32(env, argv[4], &fl);
        s->open_flags = fl;
        break;
      }
      case OP_READDIR: {
        s->out = argc > 3 ? pack_names(env, argv[3], &s->out_count, &s->outlen) : NULL;
        if (!s->out) {
          res = -EIO;
          break;
        }
        if (argc > 4 && float64s(env, argv[4], &a, &n) && n >= (size_t)s->out_count * STAT_FIELDS && s->out_count) {
          s->out_stats = malloc((size_t)s->out_count * STAT_FIELDS * sizeof(double));
          if (s->out_stats) memcpy(s->out_stats, a, (size_t)s->out_count * STAT_FIELDS * sizeof(double));
        }
        break;
      }
      case OP_READ: {
        /* The answer comes with the Buffer the request gave: detach it and hand its memory over. */
        void *data = NULL;
        size_t blen = 0;
        if (res > (int32_t)s->memlen || argc < 4 || napi_get_buffer_info(env, argv[3], &data, &blen) != napi_ok) {
          res = -EIO;
          break;
        }
        if (!s->ext) { /* a copying Buffer (see call_js): copy into the reply memory, which is ours */
          if (blen < (size_t)res) res = -EIO;
          else memcpy(s->mem, data, (size_t)res);
          break;
        }
        napi_typedarray_type type;
        napi_value ab;
        size_t off;
        void *p;
        if (data != s->mem) res = -EIO;
        else if (napi_get_typedarray_info(env, argv[3], &type, &blen, &p, &ab, &off) == napi_ok && napi_detach_arraybuffer(env, ab) == napi_ok)
          s->ext->js_owns = 0; /* libfuse frees it after the reply; the finalizer frees only the record */
        else if ((s->out = malloc(res ? (size_t)res : 1)) != NULL)
          memcpy(s->out, s->mem, (size_t)res); /* not detachable: JS keeps its Buffer, libfuse gets a copy */
        else res = -ENOMEM;
        break;
      }
      case OP_GETXATTR: {
        void *data = NULL;
        size_t blen = 0;
        bool is = false;
        if (argc > 3 && napi_is_buffer(env, argv[3], &is) == napi_ok && is && napi_get_buffer_info(env, argv[3], &data, &blen) == napi_ok) {
          s->out = malloc(blen ? blen : 1);
          if (s->out) {
            memcpy(s->out, data, blen);
            s->outlen = blen;
          } else res = -ENOMEM;
        } else res = -ENODATA;
        break;
      }
      case OP_LISTXATTR:
        s->out = argc > 3 ? pack_names(env, argv[3], &s->out_count, &s->outlen) : NULL;
        if (!s->out) res = -EIO;
        break;
      default:
        break;
    }
  }
  s->res = res;
  s->state = DONE;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  napi_get_boolean(env, true, &ret);
  return ret;
}

/* context(handle, id): the caller of a request being dispatched ({uid, gid, pid, umask}), or undefined. */
static napi_value js_context(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ret;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_undefined(env, &ret);
  slot_t *s = argc >= 2 ? dispatched(env, argv[0], argv[1]) : NULL;
  if (s) {
    napi_value v;
    napi_create_object(env, &ret);
    napi_create_uint32(env, s->uid, &v);
    napi_set_named_property(env, ret, "uid", v);
    napi_create_uint32(env, s->gid, &v);
    napi_set_named_property(env, ret, "gid", v);
    napi_create_int32(env, s->pid, &v);
    napi_set_named_property(env, ret, "pid", v);
    napi_create_uint32(env, s->umask, &v);
    napi_set_named_property(env, ret, "umask", v);
    pthread_mutex_unlock(&s->mu);
  }
  return ret;
}

/* Numbers in a /proc directory listing (fds of /proc/self/fd, pids of /proc), at most max. */
static int proc_numbers(const char *dir, long *out, int max) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return 0;
  for (struct dirent *e; n < max && (e = readdir(d));) {
    char *end;
    long v = strtol(e->d_name, &end, 10);
    if (*e->d_name && !*end) out[n++] = v;
  }
  closedir(d);
  return n;
}

/* Children of the calling thread (/proc/thread-self/children), else every pid of /proc. */
static int child_pids(long *out, int max) {
  FILE *f = fopen("/proc/thread-self/children", "r");
  if (!f) return proc_numbers("/proc", out, max);
  int n = 0;
  while (n < max && fscanf(f, "%ld", &out[n]) == 1) n++;
  fclose(f);
  return n;
}

static int contains(const long *xs, int n, long x) {
  for (int i = 0; i < n; i++)
    if (xs[i] == x) return 1;
  return 0;
}

/* Whether pid is a child of this process named fusermount3. */
static int is_fusermount_child(long pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *close_paren = strrchr(buf, ')');
  long ppid = 0;
  char st;
  if (!close_paren || sscanf(close_paren + 1, " %c %ld", &st, &ppid) != 2) return 0;
  return ppid == (long)getpid() && strstr(buf, "(fusermount3)") != NULL;
}

#define MAX_SCAN 65536
/*
 * libfuse 3.14 mounts with auto_unmount through fusermount3, which stays as a watchdog child until the
 * socket to it closes, and never closes that socket nor reaps the child before the process exits. A
 * process that mounts, unmounts and keeps running (tests, the workspace overlay) would keep one fd and
 * one process per mount, so the socket and the watchdog that appeared during fuse_mount are noted
 * here and released by the loop thread at the end.
 */
static void leftovers(fs_t *fs, const long *fds0, int nfd0, const long *pids0, int npid0) {
  long *now = malloc(MAX_SCAN * sizeof(long));
  if (!now) return;
  int n = proc_numbers("/proc/self/fd", now, MAX_SCAN);
  int fuse_fd = fuse_session_fd(fuse_get_session(fs->fuse));
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (now[i] != fuse_fd && !contains(fds0, nfd0, now[i]) && fstat((int)now[i], &st) == 0 && S_ISSOCK(st.st_mode)) fs->au_sock = (int)now[i];
  }
  n = child_pids(now, MAX_SCAN);
  for (int i = 0; i < n; i++)
    if (!contains(pids0, npid0, now[i]) && is_fusermount_child(now[i])) fs->au_pid = (pid_t)now[i];
  free(now);
}

static void *loop_thread(void *arg) {
  fs_t *fs = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, (unsigned)fs->max_threads);
  fuse_loop_mt(fs->fuse, cfg); /* until unmounted; joins its workers before it returns */
  fuse_loop_cfg_destroy(cfg);
  fuse_unmount(fs->fuse);      /* nothing when the kernel already dropped the mount */
  fuse_destroy(fs->fuse);
  fs->fuse = NULL;
  if (fs->au_sock >= 0) close(fs->au_sock); /* the watchdog sees EOF, finds the mount gone, exits */
  for (int i = 0; fs->au_pid > 0 && i < 200 && waitpid(fs->au_pid, NULL, WNOHANG) == 0; i++) usleep(5000);
  napi_call_threadsafe_function(fs->tsfn, NULL, napi_tsfn_blocking);
  napi_release_threadsafe_function(fs->tsfn, napi_tsfn_release);
  return NULL;
}

/* The threadsafe function is gone (after the END call): the loop thread has returned or is about to. */
static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fs_t *fs = data;
  if (fs->thread_started && !fs->joined) pthread_join(fs->thread, NULL);
  fs->joined = 1;
  fs->mounted = 0;
}

static void fs_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fs_t *fs = data;
  if (fs->thread_started && !fs->joined) return; /* still running: leak rather than free under it */
  for (int i = 0; i < fs->nslots; i++) {
    pthread_mutex_destroy(&fs->slots[i].mu);
    pthread_cond_destroy(&fs->slots[i].cv);
  }
  free(fs->slots);
  free(fs->free_list);
  pthread_mutex_destroy(&fs->free_mu);
  free(fs);
}

static int get_int(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  int32_t n;
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, key, &v);
  return napi_get_value_int32(env, v, &n) == napi_ok ? n : dflt;
}

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, "EFUSE", msg);
  return NULL;
}

/*
 * mount(mountpoint, options, implemented, handler, settings) → handle. `options` is the -o string,
 * `implemented` a bit mask of OP_* that JS answers (the others are not offered to libfuse: ENOSYS),
 * `handler` the JS dispatcher, settings {timeoutMs, maxThreads, maxBackground, congestionThreshold,
 * hardRemove, cacheSymlinks}. Mounts synchronously (fusermount3 for auto_unmount), then serves on a
 * new thread. Throws "fuse failed" when libfuse refuses (it printed why to stderr).
 */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_error(env, "mount: 5 arguments expected");
  size_t len;
  char mnt[4096], opts[4096];
  if (napi_get_value_string_utf8(env, argv[0], mnt, sizeof mnt, &len) != napi_ok || len >= sizeof mnt - 1) return throw_error(env, "mount: bad mountpoint");
  if (napi_get_value_string_utf8(env, argv[1], opts, sizeof opts, &len) != napi_ok || len >= sizeof opts - 1) return throw_error(env, "mount: bad options");
  double mask = 0; /* more than 32 operations: a double carries the bits exactly */
  napi_get_value_double(env, argv[2], &mask);
  uint64_t implemented = (uint64_t)mask;

  fs_t *fs = calloc(1, sizeof *fs);
  if (!fs) return throw_error(env, "out of memory");
  fs->timeout_ms = get_int(env, argv[4], "timeoutMs", 60000);
  fs->max_threads = get_int(env, argv[4], "maxThreads", 32);
  if (fs->max_threads < 1) fs->max_threads = 1;
  if (fs->max_threads > MAX_SLOTS - 8) fs->max_threads = MAX_SLOTS - 8;
  fs->max_background = get_int(env, argv[4], "maxBackground", 0);
  fs->congestion_threshold = get_int(env, argv[4], "congestionThreshold", 0);
  fs->hard_remove = get_int(env, argv[4], "hardRemove", 0);
  fs->cache_symlinks = get_int(env, argv[4], "cacheSymlinks", 1);
  /* One slot per worker (each runs one request at a time) and a few spare. */
  fs->nslots = fs->max_threads + 8;
  fs->slots = calloc((size_t)fs->nslots, sizeof(slot_t));
  fs->free_list = calloc((size_t)fs->nslots, sizeof(int));
  pthread_mutex_init(&fs->free_mu, NULL);
  if (!fs->slots || !fs->free_list) {
    fs_free(env, fs, NULL);
    return throw_error(env, "out of memory");
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  for (int i = 0; i < fs->nslots; i++) {
    pthread_mutex_init(&fs->slots[i].mu, NULL);
    pthread_cond_init(&fs->slots[i].cv, &ca);
    fs->free_list[fs->nfree++] = fs->nslots - 1 - i;
  }
  pthread_condattr_destroy(&ca);

  struct fuse_operations ops;
  memset(&ops, 0, sizeof ops);
  ops.init = op_init;
  ops.getattr = op_getattr; /* libfuse needs it; JS answers the root itself when ops lack it */
#define OFFER(code, field, fn) if (implemented & (1ull << (code))) ops.field = fn
  OFFER(OP_ACCESS, access, op_access);
  OFFER(OP_STATFS, statfs, op_statfs);
  OFFER(OP_READLINK, readlink, op_readlink);
  OFFER(OP_OPENDIR, opendir, op_opendir);
  OFFER(OP_READDIR, readdir, op_readdir);
  OFFER(OP_RELEASEDIR, releasedir, op_releasedir);
  OFFER(OP_FSYNCDIR, fsyncdir, op_fsyncdir);
  OFFER(OP_OPEN, open, op_open);
  OFFER(OP_CREATE, create, op_create);
  OFFER(OP_READ, read_buf, op_read_buf);
  OFFER(OP_WRITE, write_buf, op_write_buf);
  OFFER(OP_FLUSH, flush, op_flush);
  OFFER(OP_FSYNC, fsync, op_fsync);
  OFFER(OP_RELEASE, release, op_release);
  OFFER(OP_TRUNCATE, truncate, op_truncate);
  OFFER(OP_UNLINK, unlink, op_unlink);
  OFFER(OP_RENAME, rename, op_rename);
  OFFER(OP_LINK, link, op_link);
  OFFER(OP_SYMLINK, symlink, op_symlink);
  OFFER(OP_MKDIR, mkdir, op_mkdir);
  OFFER(OP_RMDIR, rmdir, op_rmdir);
  OFFER(OP_MKNOD, mknod, op_mknod);
  OFFER(OP_CHMOD, chmod, op_chmod);
  OFFER(OP_CHOWN, chown, op_chown);
  OFFER(OP_UTIMENS, utimens, op_utimens);
  OFFER(OP_SETXATTR, setxattr, op_setxattr);
  OFFER(OP_GETXATTR, getxattr, op_getxattr);
  OFFER(OP_LISTXATTR, listxattr, op_listxattr);
  OFFER(OP_REMOVEXATTR, removexattr, op_removexattr);
  OFFER(OP_FALLOCATE, fallocate, op_fallocate);
#undef OFFER

  char *args_v[] = {(char *)"hexz", (char *)"-o", opts, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(opts[0] ? 3 : 1, args_v);
  fs->fuse = fuse_new(&args, &ops, sizeof ops, fs);
  fuse_opt_free_args(&args);
  if (!fs->fuse) {
    fs_free(env, fs, NULL);
    return throw_error(env, "fuse failed");
  }
  fs->au_sock = -1;
  long *fds0 = malloc(MAX_SCAN * sizeof(long)), *pids0 = malloc(MAX_SCAN * sizeof(long));
  int nfd0 = fds0 ? proc_numbers("/proc/self/fd", fds0, MAX_SCAN) : 0, npid0 = pids0 ? child_pids(pids0, MAX_SCAN) : 0;
  if (fuse_mount(fs->fuse, mnt) != 0) {
    free(fds0);
    free(pids0);
    fuse_destroy(fs->fuse);
    fs_free(env, fs, NULL);
    return throw_error(env, "fuse failed");
  }
  if (fds0 && pids0 && strstr(opts, "auto_unmount")) leftovers(fs, fds0, nfd0, pids0, npid0);
  free(fds0);
  free(pids0);
  napi_value name, handle;
  napi_create_string_utf8(env, "hexz-fuse3", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, fs, tsfn_finalize, fs, call_js, &fs->tsfn) != napi_ok) {
    fuse_unmount(fs->fuse);
    fuse_destroy(fs->fuse);
    fs_free(env, fs, NULL);
    return throw_error(env, "mount: cannot create the threadsafe function");
  }
  /* Signals stay with Node's main thread: the loop and its workers block them all. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = pthread_create(&fs->thread, NULL, loop_thread, fs);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    napi_release_threadsafe_function(fs->tsfn, napi_tsfn_abort);
    fuse_unmount(fs->fuse);
    fuse_destroy(fs->fuse);
    fs->joined = 1; /* tsfn_finalize may still run: nothing to join */
    return throw_error(env, "mount: cannot start the FUSE thread");
  }
  fs->thread_started = 1;
  fs->mounted = 1;
  napi_create_external(env, fs, fs_free, NULL, &handle);
  return handle;
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

/* stats(handle): read requests the kernel sent (count, bytes, largest, per size bucket) and what INIT negotiated. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, buckets;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fs_t *fs = argc ? fs_of(env, argv[0]) : NULL;
  if (!fs) return throw_error(env, "stats: bad handle");
  napi_create_object(env, &out);
  set_num(env, out, "reads", (double)__atomic_load_n(&fs->reads, __ATOMIC_RELAXED));
  set_num(env, out, "readBytes", (double)__atomic_load_n(&fs->read_bytes, __ATOMIC_RELAXED));
  set_num(env, out, "maxRead", (double)__atomic_load_n(&fs->read_max, __ATOMIC_RELAXED));
  napi_create_array_with_length(env, READ_BUCKETS, &buckets);
  for (uint32_t i = 0; i < READ_BUCKETS; i++) {
    napi_value n;
    napi_create_double(env, (double)__atomic_load_n(&fs->read_buckets[i], __ATOMIC_RELAXED), &n);
    napi_set_element(env, buckets, i, n);
  }
  napi_set_named_property(env, out, "readBuckets", buckets);
  napi_value conn;
  napi_create_object(env, &conn);
  set_num(env, conn, "protoMajor", fs->proto_major);
  set_num(env, conn, "protoMinor", fs->proto_minor);
  set_num(env, conn, "maxWrite", fs->max_write);
  set_num(env, conn, "maxRead", fs->max_read);
  set_num(env, conn, "maxReadahead", fs->max_readahead);
  set_num(env, conn, "maxBackground", fs->conn_bg);
  set_num(env, conn, "congestionThreshold", fs->conn_ct);
  set_num(env, conn, "capable", fs->capable);
  set_num(env, conn, "want", fs->want);
  set_num(env, conn, "maxThreads", fs->max_threads);
  napi_set_named_property(env, out, "connection", conn);
  return out;
}

/* exit(handle): ask the loop to stop after its current requests (unmounting is the caller's job). */
static napi_value js_exit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fs_t *fs = argc ? fs_of(env, argv[0]) : NULL;
  if (fs && fs->mounted && fs->fuse) fuse_exit(fs->fuse);
  return NULL;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
      {"context", NULL, js_context, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"exit", NULL, js_exit, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_create_string_utf8(env, fuse_pkgversion(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, exports, "libfuseVersion", v);
  napi_create_int32(env, READ_BUCKETS, &v);
  napi_set_named_property(env, exports, "readBuckets", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
