/*
 * The reference point of bench/fuse-ceiling.mjs: the same trivial filesystem (one file, /data, a fixed
 * 1 MiB pattern repeated, answered from memory) written directly against libfuse3's high-level API,
 * with no JavaScript round trip. The difference to the binding's figures is what the JS round trip
 * costs. Built by fuse-ceiling.mjs with `cc $(pkg-config --cflags --libs fuse3)`; run as
 *
 *   fuse-ceiling SIZE_BYTES -f -o OPTIONS MOUNTPOINT
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char pattern[1 << 20];
static off_t size;
/* Read requests per size: <=4 KiB, 8 KiB, ..., 1 MiB, larger (printed to stderr at the end). */
static unsigned long buckets[10];

static int getattr_(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (!strcmp(path, "/")) {
    st->st_mode = 040755;
    st->st_nlink = 2;
  } else if (!strcmp(path, "/data")) {
    st->st_mode = 0100444;
    st->st_nlink = 1;
    st->st_size = size;
  } else
    return -ENOENT;
  return 0;
}

static int readdir_(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)path, (void)off, (void)fi, (void)flags;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "data", NULL, 0, 0);
  return 0;
}

static int open_(const char *path, struct fuse_file_info *fi) {
  (void)fi;
  return strcmp(path, "/data") ? -ENOENT : 0;
}

static int read_(const char *path, char *buf, size_t len, off_t pos, struct fuse_file_info *fi) {
  (void)path, (void)fi;
  int b = 0;
  while (b < 9 && len > ((size_t)4096 << b)) b++;
  __atomic_add_fetch(&buckets[b], 1, __ATOMIC_RELAXED);
  if (pos >= size) return 0;
  if ((off_t)len > size - pos) len = (size_t)(size - pos);
  for (size_t at = 0; at < len;) {
    size_t off = (size_t)((pos + (off_t)at) % (off_t)sizeof pattern);
    size_t n = sizeof pattern - off < len - at ? sizeof pattern - off : len - at;
    memcpy(buf + at, pattern + off, n);
    at += n;
  }
  return (int)len;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  size = atoll(argv[1]);
  unsigned x = 12345;
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (char)((x = x * 1103515245u + 12345u) >> 24);
  static const struct fuse_operations ops = {.getattr = getattr_, .readdir = readdir_, .open = open_, .read = read_};
  argv[1] = argv[0];
  int rc = fuse_main(argc - 1, argv + 1, &ops, NULL);
  fprintf(stderr, "{\"readBuckets\":[");
  for (int i = 0; i < 10; i++) fprintf(stderr, "%s%lu", i ? "," : "", buckets[i]);
  fprintf(stderr, "]}\n");
  return rc;
}
