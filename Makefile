# Hexz — `make run` (demo gateway) and `make test` (whole suite) work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# ---- Node.js: the machine's when it is >= 22.12, else the pinned Node 24 LTS (scripts/node.sh) ----
# Goals that need no Node; `make help` and `make clean` download nothing.
NO_NODE_GOALS := help clean
ifneq ($(filter-out $(NO_NODE_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
NODE := $(shell scripts/node.sh)
ifeq ($(NODE),)
$(error no usable Node.js: scripts/node.sh failed (its message is above))
endif
NODE_HOME := $(patsubst %/bin/node,%,$(NODE))
# npm, npx and every `#!/usr/bin/env node` script (tsc, vitest, node-gyp) run on that Node ...
export PATH := $(dir $(NODE)):$(PATH)
# ... and node-gyp builds native addons against its headers (nodejs.org is not reachable to fetch them).
ifneq ($(wildcard $(NODE_HOME)/include/node/node.h),)
export npm_config_nodedir := $(NODE_HOME)
endif
endif

HEXZ := $(NODE) dist/src/cli/main.js
# Debian packages the build and the tests use: FUSE for real mounts (fuse3 + libfuse2, never the
# `fuse` package, which removes fuse3); libfuse3-dev, pkg-config, g++, make and python3 to build the
# libfuse3 binding (fuse/native, compiled by npm ci with node-gyp; python3 also drives a FUSE test);
# curl and wget as real HTTP clients; chromium for the page's browser tests (driven by
# playwright-core, which downloads no browser of its own); wrk for a gateway under load; vim and
# rsync as real tools editing a workspace overlay (test/workspace/overlay.test.ts).
APT_PACKAGES := fuse3 libfuse2 libfuse3-dev pkg-config g++ make python3 curl wget chromium wrk vim rsync
DEMO_DATA := demo-data
DEMO_ARCHIVE := archives/demo.hxz
# A single-file archive (the demo's 64 MiB sparse image), so /disk can be tried too.
DEMO_DISK := archives/disk-image.hxz
# A second version of the demo as a thin delta over the first, so versions (GET /v1/diff, the page) can be tried.
DEMO_V2 := archives/demo-v2.hxz
# Where `make install` puts the `hexz` command: /usr/local/bin as root, else ~/.local/bin.
BINDIR ?= $(if $(filter 0,$(shell id -u)),/usr/local/bin,$(HOME)/.local/bin)

.PHONY: help setup system-deps deps install build run demo test bench clean

help:
	@echo "make run      set up, pack the demo data and serve it with the gateway"
	@echo "make test     set up and run the whole test suite"
	@echo "make install  set up, build and put the hexz command on PATH (BINDIR=$(BINDIR))"
	@echo "make bench    set up and run the benchmarks against peer tools"

# Install missing Debian packages when running as root with apt (CI, containers); otherwise say what is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (some tests will be skipped)"; fi; \
	fi

# npm ci when the lockfile changed or node_modules was built by another Node (native addons are
# compiled for one Node ABI).
deps:
	@stamp=node_modules/.hexz-node; want="$$(node -p 'process.version + " " + process.arch')"; \
	if [ ! -f $$stamp ] || [ "$$(cat $$stamp)" != "$$want" ] || [ package-lock.json -nt $$stamp ] || [ package.json -nt $$stamp ]; then \
	  echo "npm ci on Node $$want"; npm ci --no-audit --no-fund && echo "$$want" > $$stamp; \
	fi

setup: system-deps deps

# The libfuse3 binding is an optional dependency: npm ci builds it, or skips it when libfuse3-dev or
# the compiler is missing (hexz mount then uses fuse-native, 128 KiB reads). Rebuilt here when its
# source changed since.
NATIVE_FUSE := fuse/native/build/Release/hexz_fuse3.node

build: deps
	@if [ -e node_modules/hexz-fuse3 ] && [ fuse/native/hexz_fuse3.c -nt $(NATIVE_FUSE) -o fuse/native/binding.gyp -nt $(NATIVE_FUSE) ]; then \
	  echo "rebuilding the libfuse3 binding"; npm rebuild hexz-fuse3 --no-audit --no-fund >/dev/null; fi
	@[ -f $(NATIVE_FUSE) ] || echo "warning: the libfuse3 binding is not built (apt-get install -y libfuse3-dev pkg-config g++ python3, then npm rebuild hexz-fuse3); hexz mount will use fuse-native (128 KiB reads)"
	npx tsc -p tsconfig.json
	@chmod +x dist/src/cli/main.js

# `hexz` on PATH: a two-line launcher that runs the built CLI on the Node chosen above.
install: setup build
	@mkdir -p "$(BINDIR)"
	@printf '#!/bin/sh\n# Installed by `make install` from %s\nexec "%s" "%s" "$$@"\n' "$(CURDIR)" "$(NODE)" "$(CURDIR)/dist/src/cli/main.js" > "$(BINDIR)/hexz"
	@chmod 0755 "$(BINDIR)/hexz"
	@echo "installed $(BINDIR)/hexz (Node $$(node --version))"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: $(BINDIR) is not on your PATH; add it, e.g. export PATH=\"$(BINDIR):\$$PATH\"";; esac

$(DEMO_DATA):
	bash scripts/demo-data.sh $(DEMO_DATA)

$(DEMO_ARCHIVE): $(DEMO_DATA) | build
	@mkdir -p archives
	$(HEXZ) pack --force $(DEMO_DATA) $(DEMO_ARCHIVE)

$(DEMO_DISK): $(DEMO_DATA) | build
	@mkdir -p archives
	$(HEXZ) pack --force $(DEMO_DATA)/data/sparse.img $(DEMO_DISK)

# v2: a row appended to the CSV, the guide renamed, one blob deleted, a notes file added.
$(DEMO_V2): $(DEMO_ARCHIVE)
	rm -rf $(DEMO_DATA)-v2 && cp -a $(DEMO_DATA) $(DEMO_DATA)-v2
	echo "st3,20001,21.5,40" >> $(DEMO_DATA)-v2/data/2026/measurements.csv
	mv $(DEMO_DATA)-v2/docs/guide.md $(DEMO_DATA)-v2/docs/handbook.md && ln -sfn docs/handbook.md $(DEMO_DATA)-v2/GUIDE
	rm $(DEMO_DATA)-v2/images/blob.bin
	printf 'Version 2 of the demo dataset.\n' > $(DEMO_DATA)-v2/data/2026/notes.txt
	$(HEXZ) pack --force $(DEMO_DATA)-v2 $(DEMO_V2) --base $(DEMO_ARCHIVE)

demo: build $(DEMO_ARCHIVE) $(DEMO_DISK) $(DEMO_V2)

# Serve ./archives with the gateway (docs/gateway.md) after printing URLs to try; Ctrl-C drains and stops it.
run: setup build demo
	@port=$${HEXZ_PORT:-8080}; b="http://127.0.0.1:$$port/v1/archives"; \
	echo ""; \
	echo "hexz gateway: serving ./archives on http://127.0.0.1:$$port (Ctrl-C stops it; API in docs/gateway.md)"; \
	echo "  open http://127.0.0.1:$$port/ in a browser      # the page: archives, files, previews, versions"; \
	echo "  curl -s http://127.0.0.1:$$port/v1/archives/demo/files/data/   # a directory as an HTML index (wget -r, GDAL /vsicurl/)"; \
	echo "  curl -s 'http://127.0.0.1:$$port/v1/diff?to=demo-v2'         # what changed from demo to demo-v2"; \
	echo "  curl -s $$b                                   # archives"; \
	echo "  curl -s $$b/demo                              # info: sizes, ratios, chunking"; \
	echo "  curl -s '$$b/demo/tree/?recursive=1'          # every file"; \
	echo "  curl -s -r 0-99 $$b/demo/files/data/2026/measurements.csv   # a byte range (206)"; \
	echo "  curl -sI $$b/demo/files/images/blob-twice.bin # size, ETag, Last-Modified"; \
	echo "  curl -s -r 33554432-33554435 $$b/disk-image/disk; echo   # a single-file archive: 4 bytes in the middle of a 64 MiB sparse image"; \
	echo "  curl -s http://127.0.0.1:$$port/metrics | grep ^hexz_"; \
	echo ""
	exec $(HEXZ) serve --storage archives

test: setup build
	@echo "testing on Node $$(node --version) ($(NODE))"
	npx tsc -p test/tsconfig.json
	npx vitest run

bench: setup build
	$(NODE) bench/run.mjs $(BENCH_ARGS)

clean:
	rm -rf dist archives $(DEMO_DATA) $(DEMO_DATA)-v2 bench/work
