/**
 * The gateway's configuration: one typed object with documented defaults, validated here
 * (docs/gateway.md, "Configuration"). `hexz serve` builds it from flags, environment variables and
 * the JSON config file (src/cli/serve-config.ts); `startGateway` takes it, so tests and embedders
 * pass only what they change. Nothing here reads `process.env`; messages name the fields (the CLI
 * names its flags), and the field at fault is in the error's `option` context.
 */
import { DEFAULT_CACHE_BYTES, MIN_CACHE_BYTES } from '../../cache/budget.js';
import type { StorageOptions } from '../../storage/index.js';
import { HexzError } from '../errors.js';

/** Where archives live when nothing is configured: next to where the gateway is started. */
export const DEFAULT_STORAGE = './archives';
/** Loopback only: exposing archives on the network must be a deliberate choice (`--host 0.0.0.0`). */
export const DEFAULT_HOST = '127.0.0.1';
/** The conventional unprivileged HTTP port. */
export const DEFAULT_PORT = 8080;
/** How long an open archive is trusted before its storage ETag is checked again: a replaced object is noticed within seconds at one HEAD per archive per TTL. */
export const DEFAULT_ARCHIVE_TTL_MS = 5_000;
/** Open archives kept (one descriptor or client handle and a decoded root each, a few KiB to ~1 MiB). */
export const DEFAULT_MAX_OPEN_ARCHIVES = 256;
/** Ranges honoured per request; more are answered with the whole body, like nginx's max_ranges. */
export const DEFAULT_MAX_RANGES = 32;
/** Listing page size when the client does not ask for one. */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest listing page: bounds the work and the JSON size of one request. */
export const DEFAULT_MAX_PAGE_SIZE = 1000;
/** Time to resolve an archive and produce the first byte of a response; storage that stalls longer answers 504. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** A connection that moves no bytes for this long is closed (stuck clients cannot pin resources); above the keep-alive timeout so idle keep-alive closes first. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/** Idle keep-alive connections close after this: longer than the 60 s idle timeout of common load balancers, so they close first and never race a reused connection. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** In-flight responses get this long to finish on SIGTERM (Kubernetes waits 30 s before SIGKILL). */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** Names are mutable (an archive can be replaced), so caches may store but must revalidate; ETags make that a cheap 304. */
export const DEFAULT_CACHE_CONTROL = 'no-cache';
/** Computed ETags and file lookups remembered (a few hundred bytes each). */
export const DEFAULT_ETAG_CACHE_ENTRIES = 100_000;
/** Gateway worker threads: 0 means one per core (every core serves, over one shared cache). */
export const DEFAULT_WORKERS = 0;
/** Request logs at info: one line per request. */
export const DEFAULT_LOG_LEVEL = 'info';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Everything the gateway needs to run; see docs/gateway.md for each field's flag and variable. */
export interface ServeConfig {
  /** Directory path, `file://` URL, or `s3://bucket/prefix` holding the archives. */
  storage: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Block cache budget of the process. */
  cacheBytes: number;
  /** Backend settings (S3 endpoint, region, path style). */
  storageOptions: StorageOptions;
  /** Allowed CORS origins (`*` for any); empty disables CORS. */
  corsOrigins: string[];
  /** Files of accepted bearer tokens (one per line); none means no authentication. */
  authTokenFiles: string[];
  cacheControl: string;
  /** Directory of `NAME.key` / `NAME.passphrase` files for encrypted archives. */
  keyDir?: string;
  /** Global fallback key (HEXZ_KEY_FILE / HEXZ_PASSPHRASE_FILE / HEXZ_PASSPHRASE). */
  keyFile?: string;
  passphraseFile?: string;
  passphrase?: string;
  /**
   * File of `.pub` lines or directory of `*.pub` files: serve only archives (and chains) signed by one
   * of these keys; others answer 403. None: signatures are not checked.
   */
  trustedKeys?: string;
  archiveTtlMs: number;
  maxOpenArchives: number;
  maxRanges: number;
  defaultPageSize: number;
  maxPageSize: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  shutdownTimeoutMs: number;
  etagCacheEntries: number;
  logLevel: LogLevel;
  /** Worker threads of `hexz serve` (src/gateway/workers.ts); 0: one per core. `startGateway` itself is one thread. */
  workers: number;
  /**
   * A second port answering only `/healthz`, for liveness probes (./health-server.ts); undefined: none.
   * Under load the main port's accept queue is long, and a probe waits in it.
   */
  healthPort?: number;
}

/** A partial configuration: what is not given takes its default. */
export type ServeConfigInput = { [K in keyof ServeConfig]?: ServeConfig[K] | undefined };

/**
 * Complete a partial configuration with the defaults and validate it. `startGateway` calls it, so
 * tests and benchmarks pass only what they change (`{ storage: dir, port: 0 }`).
 */
export function serveConfig(input: ServeConfigInput = {}): ServeConfig {
  const cfg: ServeConfig = {
    storage: input.storage ?? DEFAULT_STORAGE,
    host: input.host ?? DEFAULT_HOST,
    port: input.port ?? DEFAULT_PORT,
    cacheBytes: input.cacheBytes ?? DEFAULT_CACHE_BYTES,
    storageOptions: input.storageOptions ?? {},
    corsOrigins: input.corsOrigins ?? [],
    authTokenFiles: input.authTokenFiles ?? [],
    cacheControl: input.cacheControl ?? DEFAULT_CACHE_CONTROL,
    keyDir: input.keyDir,
    keyFile: input.keyFile,
    passphraseFile: input.passphraseFile,
    passphrase: input.passphrase,
    trustedKeys: input.trustedKeys,
    archiveTtlMs: input.archiveTtlMs ?? DEFAULT_ARCHIVE_TTL_MS,
    maxOpenArchives: input.maxOpenArchives ?? DEFAULT_MAX_OPEN_ARCHIVES,
    maxRanges: input.maxRanges ?? DEFAULT_MAX_RANGES,
    defaultPageSize: input.defaultPageSize ?? DEFAULT_PAGE_SIZE,
    maxPageSize: input.maxPageSize ?? DEFAULT_MAX_PAGE_SIZE,
    requestTimeoutMs: input.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: input.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    shutdownTimeoutMs: input.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    etagCacheEntries: input.etagCacheEntries ?? DEFAULT_ETAG_CACHE_ENTRIES,
    logLevel: input.logLevel ?? DEFAULT_LOG_LEVEL,
    workers: input.workers ?? DEFAULT_WORKERS,
    healthPort: input.healthPort,
  };
  const bad = (option: keyof ServeConfig, msg: string) => new HexzError('INVALID_ARGUMENT', `${option}: ${msg}`, { option });
  if (!cfg.storage) throw bad('storage', 'empty');
  if (!cfg.host) throw bad('host', 'empty');
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw bad('port', `expected 0-65535, got ${cfg.port}`);
  if (!Number.isSafeInteger(cfg.cacheBytes) || cfg.cacheBytes < MIN_CACHE_BYTES) throw bad('cacheBytes', `at least 8M, got ${cfg.cacheBytes}`);
  const positive: Array<keyof ServeConfig> = ['maxOpenArchives', 'maxRanges', 'defaultPageSize', 'maxPageSize', 'requestTimeoutMs', 'idleTimeoutMs', 'etagCacheEntries'];
  for (const k of positive) {
    const v = cfg[k] as number;
    if (!Number.isSafeInteger(v) || v < 1) throw bad(k, `expected a positive integer, got ${v}`);
  }
  if (cfg.healthPort !== undefined && (!Number.isInteger(cfg.healthPort) || cfg.healthPort < 0 || cfg.healthPort > 65535)) throw bad('healthPort', `expected 0-65535, got ${cfg.healthPort}`);
  if (cfg.healthPort !== undefined && cfg.healthPort !== 0 && cfg.healthPort === cfg.port) throw bad('healthPort', `must differ from port (${cfg.port})`);
  if (!Number.isSafeInteger(cfg.workers) || cfg.workers < 0 || cfg.workers > 256) throw bad('workers', `expected 0 (one per core) to 256, got ${cfg.workers}`);
  for (const k of ['archiveTtlMs', 'shutdownTimeoutMs'] as const) {
    if (!Number.isSafeInteger(cfg[k]) || cfg[k] < 0) throw bad(k, `expected a non-negative integer, got ${cfg[k]}`);
  }
  if (cfg.defaultPageSize > cfg.maxPageSize) throw bad('defaultPageSize', `${cfg.defaultPageSize} exceeds maxPageSize (${cfg.maxPageSize})`);
  if (!LOG_LEVELS.includes(cfg.logLevel)) throw bad('logLevel', `expected one of ${LOG_LEVELS.join(', ')}, got "${cfg.logLevel}"`);
  for (const o of cfg.corsOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/i.test(o)) throw bad('corsOrigins', `expected "*" or an origin like https://example.org (no path), got "${o}"`);
  }
  if (/[\r\n]/.test(cfg.cacheControl)) throw bad('cacheControl', 'must be one line');
  return cfg;
}
