#!/usr/bin/env bash
# Generates the small demo dataset that `make run` packs and serves: text, CSV, JSON, a binary with
# a repeated block (dedup), a sparse file (holes), nested directories and a symlink. Deterministic.
set -euo pipefail
out=${1:-demo-data}
mkdir -p "$out/docs" "$out/data/2026" "$out/images"
cat > "$out/README.md" <<'MD'
# Hexz demo dataset

Files to try the gateway with: `curl -r 0-99 http://127.0.0.1:8080/v1/archives/demo/files/data/2026/measurements.csv`.
MD
for i in $(seq 1 40); do
  echo "## Section $i"; echo
  for j in $(seq 1 25); do echo "Line $j of section $i: the quick brown fox jumps over the lazy dog."; done; echo
done > "$out/docs/guide.md"
{ echo "station,day,temperature,humidity"; for d in $(seq 1 20000); do echo "st$((d % 17)),$d,$(( (d * 37) % 40 - 5 )).$((d % 10)),$(( (d * 13) % 100 ))"; done; } > "$out/data/2026/measurements.csv"
printf '{"name":"demo","version":1,"tags":["hexz","example"]}\n' > "$out/data/manifest.json"
# 4 MiB of pseudo-random bytes, written twice into one file: the second copy deduplicates.
# (openssl exits with SIGPIPE when head has enough: expected, hence the subshell without pipefail.)
(set +o pipefail; openssl enc -aes-128-ctr -pass pass:hexz-demo -nosalt -md sha256 </dev/zero 2>/dev/null | head -c 4194304 > "$out/images/blob.bin")
[ "$(stat -c %s "$out/images/blob.bin")" = 4194304 ]
cat "$out/images/blob.bin" "$out/images/blob.bin" > "$out/images/blob-twice.bin"
# A 64 MiB sparse file with a little data in the middle: stored as holes.
truncate -s 64M "$out/data/sparse.img"
printf 'hexz' | dd of="$out/data/sparse.img" bs=1 seek=33554432 conv=notrunc status=none
ln -sf docs/guide.md "$out/GUIDE"
touch -d '2026-01-01T00:00:00Z' "$out" "$out"/* "$out"/*/* "$out"/data/2026/* 2>/dev/null || true
echo "demo data in $out"
