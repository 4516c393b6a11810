# syntax=docker/dockerfile:1
#
# Hexz in one image: the `hexz` CLI, the HTTP gateway (`hexz serve`, the default command) and the
# FUSE client (`hexz mount`, run as a Kubernetes sidecar). Build and run commands, environment
# variables and the mount variant: docs/operations.md, "Docker image". The Helm chart in helm/hexz
# deploys this image.
#
#   docker build -t hexz:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/archives:/archives:ro" hexz:0.1.0
#
# Both stages are Debian 12 (bookworm) with the same Node 24 LTS (the release Hexz targets and tests;
# package.json accepts >= 22.12), so the native addons compiled in the build stage (zstd-napi, fs-ext,
# hexz-fuse3 — the libfuse3 binding in fuse/native; fuse-native ships a prebuilt one) load unchanged
# in the runtime stage.
# No Docker engine runs where this file is developed: test/deploy/dockerfile.test.ts checks it
# statically and runs its CMD and HEALTHCHECK against the built CLI.

ARG NODE_VERSION=24

# ---- build: dependencies (native addons compiled), TypeScript, then production dependencies only ----
FROM node:${NODE_VERSION}-bookworm AS build
# node-gyp's toolchain (the full bookworm image already has it; naming it keeps the build working
# should the base image ever slim down), and libfuse3's headers and pkg-config for fuse/native.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ pkg-config libfuse3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first: the dependency layer is rebuilt when they change, not on every source edit. The
# libfuse3 binding is a local `file:` dependency, so its sources come with them.
# Install scripts must run (zstd-napi, fs-ext and hexz-fuse3 compile with node-gyp; see `allowScripts`).
COPY package.json package-lock.json ./
COPY fuse/native ./fuse/native
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund \
 && test -f fuse/native/build/Release/hexz_fuse3.node
# Exactly the folders tsconfig.json compiles (its "include").
COPY tsconfig.json ./
COPY src ./src
COPY storage ./storage
COPY cache ./cache
COPY routes ./routes
COPY fuse ./fuse
# The page's static modules (routes/ui, not compiled) go next to the compiled routes, where routes/ui.ts looks first.
RUN npx tsc -p tsconfig.json \
 && cp -r routes/ui dist/routes/ui \
 && chmod 0755 dist/src/cli/main.js \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: Node, the FUSE runtime libraries, the compiled CLI and production node_modules ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ARG NODE_VERSION
# Set by release builds: docker build --build-arg VERSION=… --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=https://…
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="hexz" \
      org.opencontainers.image.description="Deduplicated, seekable single-file archives (.hxz): CLI, HTTP range gateway, read-only FUSE mount" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="docs/operations.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-bookworm-slim"

# fuse3: the setuid fusermount3 helper (also installed as `fusermount`, which libfuse2 runs);
# libfuse3-3: the library the libfuse3 binding links against (`hexz mount`'s default);
# libfuse2: the library of fuse-native, the fallback. Never the `fuse` package: it removes fuse3.
# ca-certificates: TLS to S3 and HTTPS archives.
# user_allow_other: `hexz mount --allow-other` then also works when the mount runs as a non-root user.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fuse3 libfuse3-3 libfuse2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && sed -i 's/^#[[:space:]]*user_allow_other[[:space:]]*$/user_allow_other/' /etc/fuse.conf \
 && grep -qx user_allow_other /etc/fuse.conf

# The gateway needs no privileges. A fixed numeric uid lets Kubernetes' runAsNonRoot verify it; the
# Helm chart runs as the same uid. /archives is the default storage root (a volume).
RUN groupadd --system --gid 10001 hexz \
 && useradd --system --uid 10001 --gid hexz --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hexz \
 && mkdir -p /archives \
 && chown hexz:hexz /archives

WORKDIR /app
# package.json is needed at run time: "type": "module" and the version `hexz --version` shows.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
# node_modules/hexz-fuse3 links to ../fuse/native: its manifest, loader and compiled addon.
COPY --from=build /app/fuse/native/package.json /app/fuse/native/index.js ./fuse/native/
COPY --from=build /app/fuse/native/build/Release/hexz_fuse3.node ./fuse/native/build/Release/
COPY --from=build /app/dist ./dist
# `hexz` on PATH (the package's bin). Loading the native addons here fails the build, not the first request.
RUN ln -s /app/dist/src/cli/main.js /usr/local/bin/hexz \
 && hexz --version \
 && node -e "require('zstd-napi'); require('lz4-napi'); require('@napi-rs/blake-hash'); require('fuse-native'); require('hexz-fuse3')"

# A smaller young generation for the heap (8 MiB instead of up to 32 MiB): ~30 MiB less RSS under load
# for a few percent of throughput (docs/operations.md, "Cache sizing").
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=4 \
    HEXZ_STORAGE=/archives
VOLUME ["/archives"]
EXPOSE 8080
USER 10001:10001

# curl is not in the image; node is. HEXZ_PORT is honoured when the gateway listens elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEXZ_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["hexz"]
CMD ["serve", "--host", "0.0.0.0"]
