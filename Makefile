# Hexz — `make run` (demo gateway) and `make test` (whole suite) work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE := node
HEXZ := $(NODE) dist/src/cli/main.js
# Debian packages the tests use: FUSE for real mounts (fuse3 + libfuse2, never the `fuse` package,
# which removes fuse3), curl as a real HTTP client.
APT_PACKAGES := fuse3 libfuse2 curl
DEMO_DATA := demo-data
DEMO_ARCHIVE := archives/demo.hxz
# A single-file archive (the demo's 64 MiB sparse image), so /disk can be tried too.
DEMO_DISK := archives/disk-image.hxz

.PHONY: help install system-deps build run demo test bench clean

help:
	@echo "make run    set up, pack the demo data and serve it with the gateway"
	@echo "make test   set up and run the whole test suite"
	@echo "make bench  set up and run the benchmarks against peer tools"

# Install missing Debian packages when running as root with apt (CI, containers); otherwise say what is missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (some tests will be skipped)"; fi; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: system-deps node_modules/.package-lock.json

build: node_modules/.package-lock.json
	npx tsc -p tsconfig.json
	@chmod +x dist/src/cli/main.js

$(DEMO_DATA):
	bash scripts/demo-data.sh $(DEMO_DATA)

$(DEMO_ARCHIVE): $(DEMO_DATA) | build
	@mkdir -p archives
	$(HEXZ) pack --force $(DEMO_DATA) $(DEMO_ARCHIVE)

$(DEMO_DISK): $(DEMO_DATA) | build
	@mkdir -p archives
	$(HEXZ) pack --force $(DEMO_DATA)/data/sparse.img $(DEMO_DISK)

demo: build $(DEMO_ARCHIVE) $(DEMO_DISK)

# Serve ./archives with the gateway (docs/gateway.md) after printing URLs to try; Ctrl-C drains and stops it.
run: install build demo
	@port=$${HEXZ_PORT:-8080}; b="http://127.0.0.1:$$port/v1/archives"; \
	echo ""; \
	echo "hexz gateway: serving ./archives on http://127.0.0.1:$$port (Ctrl-C stops it; API in docs/gateway.md)"; \
	echo "  curl -s $$b                                   # archives"; \
	echo "  curl -s $$b/demo                              # info: sizes, ratios, chunking"; \
	echo "  curl -s '$$b/demo/tree/?recursive=1'          # every file"; \
	echo "  curl -s -r 0-99 $$b/demo/files/data/2026/measurements.csv   # a byte range (206)"; \
	echo "  curl -sI $$b/demo/files/images/blob-twice.bin # size, ETag, Last-Modified"; \
	echo "  curl -s -r 33554432-33554435 $$b/disk-image/disk; echo   # a single-file archive: 4 bytes in the middle of a 64 MiB sparse image"; \
	echo "  curl -s http://127.0.0.1:$$port/metrics | grep ^hexz_"; \
	echo ""
	exec $(HEXZ) serve --storage archives

test: install build
	npx tsc -p test/tsconfig.json
	npx vitest run

bench: install build
	$(NODE) bench/run.mjs $(BENCH_ARGS)

clean:
	rm -rf dist archives $(DEMO_DATA) bench/work
