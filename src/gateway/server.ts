/**
 * The gateway server: opens the storage root, builds the app plugin's dependencies, listens, and shuts
 * down gracefully. `startGateway(config)` is the programmatic entry point used by `hexz serve`, the
 * tests and the benchmarks (docs/gateway.md, "Embedding").
 */
import type { FastifyInstance } from 'fastify';
import { promises as fs } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { BlockCache } from '../../cache/block-cache.js';
import { meterStorage, newCounters, type StorageCounters } from '../../cache/metered.js';
import { openStorageRoot } from '../../storage/index.js';
import type { TrustedKeys } from '../crypto/signatures.js';
import { loadTrustedKeys } from '../crypto/signing-keys.js';
import { HexzError, isHexzError, toHexzError } from '../errors.js';
import { buildApp, serverOptions } from './app.js';
import { DEFAULT_STORAGE, serveConfig, type ServeConfig } from './config.js';
import { ContentIndex } from './content.js';
import { createKeyResolver } from './keys.js';
import { GatewayMetrics } from './metrics.js';
import { ArchiveRegistry } from './registry.js';

/** While draining, idle keep-alive connections are reaped this often (a response that just ended leaves its socket idle). */
const DRAIN_REAP_INTERVAL_MS = 100;

export interface GatewayOptions {
  /** Block cache; a new one of `config.cacheBytes` by default (`hexz serve` passes the process's shared cache). */
  cache?: BlockCache;
  /** Node process metrics in /metrics (default true). */
  processMetrics?: boolean;
  /** Where the JSON log lines go (default: stdout). */
  logStream?: { write(line: string): unknown };
  /** Listen with SO_REUSEPORT, so several gateway worker threads share the port (src/gateway/workers.ts). */
  reusePort?: boolean;
  /** `/metrics` of the whole server when this gateway is one of several workers. */
  aggregateMetrics?: () => Promise<string>;
  /** Threads that decode bulk reads (default: a pool of one per core; 0: on the gateway's own thread). */
  decodeThreads?: number;
}

/** A running gateway. */
export interface Gateway {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  config: ServeConfig;
  app: FastifyInstance;
  registry: ArchiveRegistry;
  metrics: GatewayMetrics;
  cache: BlockCache;
  /** Requests, bytes and time spent on storage since start. */
  storageCounters: StorageCounters;
  /**
   * Graceful shutdown: stop accepting, let in-flight responses finish (at most
   * `config.shutdownTimeoutMs`, then cut), close archives. Safe to call more than once.
   */
  close(): Promise<void>;
}

/**
 * Tokens from token files: one per line; blank lines and `#` comments ignored. A file that cannot be
 * read is a configuration error (`INVALID_ARGUMENT`, exit 2) naming the option, not a missing path.
 */
export async function readTokenFiles(files: string[]): Promise<string[]> {
  const tokens: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : toHexzError(err).message;
      throw new HexzError('INVALID_ARGUMENT', `authTokenFiles: cannot read ${file}: ${why}`, { path: file, option: 'authTokenFiles' }, { cause: err });
    }
    const found = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    // Failing closed: a configured but empty token file must not silently disable authentication.
    if (!found.length) throw new HexzError('INVALID_ARGUMENT', `authTokenFiles: ${file} holds no token`, { path: file, option: 'authTokenFiles' });
    tokens.push(...found);
  }
  return tokens;
}

/**
 * The trusted keys of `trustedKeys`, read once at start; a location that cannot be read or holds no
 * key stops the gateway (fail closed), with the option named.
 */
async function readTrustedKeys(location: string | undefined): Promise<TrustedKeys | undefined> {
  if (!location) return undefined;
  try {
    return await loadTrustedKeys(location);
  } catch (err) {
    if (!isHexzError(err, 'INVALID_ARGUMENT')) throw err;
    throw new HexzError('INVALID_ARGUMENT', `trustedKeys: ${err.message}`, { ...err.context, option: 'trustedKeys' }, { cause: err });
  }
}

function urlOf(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host;
  return `http://${h}:${port}`;
}

/**
 * Start a gateway. `config` may be partial: defaults fill the rest (`{ storage: dir, port: 0 }` is a
 * complete test setup). Resolves once it listens.
 */
/**
 * Connections the kernel queues before the gateway accepts them (capped by net.core.somaxconn, 4096 on
 * current kernels). Node's default, 511, overflows when a thousand clients connect at once: the kernel
 * drops SYNs, and a client (a liveness probe among them) waits for TCP's retransmissions, 1 + 2 + 4 + 8
 * s: /healthz was measured answering after 17 s that way, then in 2 ms once connected.
 */
const LISTEN_BACKLOG = 4096;

export async function startGateway(config: Partial<ServeConfig>, opts: GatewayOptions = {}): Promise<Gateway> {
  const cfg = serveConfig(config);
  // Only the default store is created when missing (so `make run` and a first start just work); a
  // mistyped --storage must fail readiness, not quietly serve an empty directory.
  const root = await openStorageRoot(cfg.storage, { ...cfg.storageOptions, create: cfg.storage === DEFAULT_STORAGE });
  const keys = await createKeyResolver(cfg);
  const trustedKeys = await readTrustedKeys(cfg.trustedKeys);
  const authTokens = await readTokenFiles(cfg.authTokenFiles);
  const cache = opts.cache ?? new BlockCache({ maxBytes: cfg.cacheBytes });
  let registry: ArchiveRegistry | undefined;
  const metrics = new GatewayMetrics({ cache, openArchives: () => registry?.openCount ?? 0, processMetrics: opts.processMetrics, aggregate: opts.aggregateMetrics });
  const storageCounters = newCounters();
  registry = new ArchiveRegistry({
    root,
    storage: cfg.storageOptions,
    cache,
    keys,
    trustedKeys,
    ttlMs: cfg.archiveTtlMs,
    maxOpen: cfg.maxOpenArchives,
    openTimeoutMs: cfg.requestTimeoutMs,
    wrapStorage: (s) => meterStorage(s, storageCounters, metrics.observeStorage),
    decodeThreads: opts.decodeThreads,
    onOpen: (outcome) => metrics.archiveOpens.inc({ outcome }),
    onRefused: (code) => metrics.archiveRefusals.inc({ reason: code.toLowerCase() }),
  });
  let shuttingDown = false;
  const app = await buildApp({
    config: cfg,
    registry,
    content: new ContentIndex(cfg.etagCacheEntries),
    metrics,
    shuttingDown: () => shuttingDown,
    authTokens,
  }, serverOptions(cfg, opts.logStream));
  // Nagle off: a response's last partial segment must not wait for the client's delayed ACK (~40 ms).
  app.server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  try {
    // reusePort (Node ≥ 22.12) is passed through Fastify to net.Server.listen.
    await app.listen({ host: cfg.host, port: cfg.port, backlog: LISTEN_BACKLOG, ...(opts.reusePort ? { reusePort: true } : {}) } as { host: string; port: number });
  } catch (err) {
    await app.close().catch(() => {});
    await registry.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new HexzError('INVALID_ARGUMENT', `port ${cfg.port} on ${cfg.host} is already in use`, { remedy: 'other-port' }, { cause: err });
    throw toHexzError(err);
  }
  const port = (app.server.address() as AddressInfo).port;
  const reg = registry;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      shuttingDown = true;
      const reaper = setInterval(() => app.server.closeIdleConnections(), DRAIN_REAP_INTERVAL_MS);
      let timer: NodeJS.Timeout | undefined;
      const drained = app.close();
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), cfg.shutdownTimeoutMs)));
      if ((await Promise.race([drained.then(() => 'drained' as const), timedOut])) === 'timeout') {
        app.log.warn({ timeoutMs: cfg.shutdownTimeoutMs }, 'shutdown: in-flight responses did not finish in time; closing their connections');
        app.server.closeAllConnections();
        await drained;
      }
      clearTimeout(timer);
      clearInterval(reaper);
      await reg.close();
    })());

  return { url: urlOf(cfg.host, port), port, config: cfg, app, registry: reg, metrics, cache, storageCounters, close };
}
