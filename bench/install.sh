#!/usr/bin/env bash
# Install the peer tools the benchmarks compare hexz with, from Debian packages, when they are missing.
# Run by bench/run.mjs (skip with --no-install). Never installs the `fuse` package (it would remove
# fuse3, which hexz mount needs): squashfuse and casync work with fuse3/libfuse2.
# Prints one line per package: "ok NAME", "installed NAME" or "unavailable NAME"; always exits 0 so a
# missing peer only becomes a note in the report.
set -u
PACKAGES=(time zstd lz4 squashfs-tools squashfuse casync restic nginx-light wrk fio fuse3 libfuse2)
# A package counts as present when dpkg knows it or (for nginx) another flavour provides the command.
present() {
  case "$1" in
    nginx-light) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ;;
    *) dpkg -s "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
for p in "${PACKAGES[@]}"; do
  if present "$p"; then echo "ok $p"; else missing+=("$p"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  for p in "${missing[@]}"; do echo "unavailable $p (not root or no apt-get)"; done
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
for p in "${missing[@]}"; do
  # One package at a time: an unavailable one must not block the others.
  if apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1; then
    echo "installed $p"
  else
    echo "unavailable $p"
  fi
done
# nginx is started by the benchmark with its own config: if we just installed it, do not leave the
# distribution's default service running on port 80.
for p in "${missing[@]}"; do
  if [ "$p" = nginx-light ]; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      systemctl disable --now nginx >/dev/null 2>&1 || true
    elif [ -f /run/nginx.pid ]; then
      /usr/sbin/nginx -s stop >/dev/null 2>&1 || true
    fi
  fi
done
exit 0
