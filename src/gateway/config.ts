/**
 * The gateway's configuration, read once at the edge into one typed, validated object
 * (docs/gateway.md, "Configuration"). Sources, first one wins: command-line flags, environment
 * variables (`HEXZ_…`), an optional JSON config file (`--config` / `HEXZ_CONFIG`), then the defaults
 * below. Nothing below the CLI reads `process.env`; `startGateway` takes the finished object.
 */
import { promises as fs } from 'node:fs';
import { DEFAULT_CACHE_BYTES } from '../../cache/block-cache.js';
import type { StorageOptions } from '../../storage/index.js';
import { globalConfig, parseInteger, parseSeconds, parseSize, type GlobalFlags } from '../config.js';
import { HexzError, toHexzError } from '../errors.js';

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
}

/** Flags of `hexz serve` (and the global ones it uses), as commander gives them. */
export interface ServeFlags extends GlobalFlags {
  storage?: string;
  host?: string;
  port?: string;
  config?: string;
  corsOrigin?: string[];
  /** Repeatable. */
  authTokenFile?: string[];
  cacheControl?: string;
  keyDir?: string;
  /** Seconds. */
  archiveTtl?: string;
  maxRanges?: string;
  /** Seconds. */
  requestTimeout?: string;
  /** Seconds. */
  shutdownTimeout?: string;
  logLevel?: string;
}

type Env = Record<string, string | undefined>;

/** Keys accepted in the JSON config file, with their expected JSON type. */
const FILE_KEYS: Record<string, 'string' | 'number' | 'boolean' | 'string[]' | 'size'> = {
  storage: 'string',
  host: 'string',
  port: 'number',
  cacheSize: 'size',
  corsOrigins: 'string[]',
  authTokenFiles: 'string[]',
  cacheControl: 'string',
  keyDir: 'string',
  s3Endpoint: 'string',
  s3Region: 'string',
  s3PathStyle: 'boolean',
  archiveTtlMs: 'number',
  maxOpenArchives: 'number',
  maxRanges: 'number',
  defaultPageSize: 'number',
  maxPageSize: 'number',
  requestTimeoutMs: 'number',
  idleTimeoutMs: 'number',
  shutdownTimeoutMs: 'number',
  etagCacheEntries: 'number',
  logLevel: 'string',
};

type FileConfig = Record<string, unknown>;

/** Read and type-check the JSON config file; unknown keys are errors (typos must not pass silently). */
export async function readConfigFile(file: string): Promise<FileConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw toHexzError(err, { path: file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HexzError('INVALID_ARGUMENT', `config file ${file} is not valid JSON: ${(err as Error).message}`, { path: file });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new HexzError('INVALID_ARGUMENT', `config file ${file} must hold a JSON object`, { path: file });
  for (const [k, v] of Object.entries(json)) {
    const type = FILE_KEYS[k];
    if (!type) throw new HexzError('INVALID_ARGUMENT', `config file ${file}: unknown key "${k}" (known: ${Object.keys(FILE_KEYS).join(', ')})`, { path: file });
    const ok =
      type === 'string[]'
        ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : type === 'size'
          ? typeof v === 'string' || typeof v === 'number'
          : typeof v === type;
    if (!ok) throw new HexzError('INVALID_ARGUMENT', `config file ${file}: "${k}" must be ${type === 'size' ? 'a size (e.g. "512M") or a number of bytes' : `a ${type}`}`, { path: file });
  }
  return json as FileConfig;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function int(v: string | number | undefined, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  return parseInteger(String(v), option, min, max);
}

/**
 * Build the configuration from flags, environment and config file (in that order of precedence),
 * then defaults. `INVALID_ARGUMENT` names the option at fault.
 */
export async function loadServeConfig(flags: ServeFlags, env: Env): Promise<ServeConfig> {
  const configFile = flags.config ?? env.HEXZ_CONFIG;
  const file: FileConfig = configFile ? await readConfigFile(configFile) : {};
  const f = <T>(k: string) => file[k] as T | undefined;
  // Storage settings shared with every command (S3 endpoint/region/path style, HTTP options) come from
  // the one CLI configuration; the config file only fills what flags and env leave unset.
  const common = globalConfig({ ...flags, cacheSize: undefined }, env).storage;
  const endpoint = common.s3?.endpoint ?? f<string>('s3Endpoint');
  const pathStyleSet = flags.s3PathStyle !== undefined || env.HEXZ_S3_PATH_STYLE !== undefined;
  const pathStyle = pathStyleSet ? common.s3?.forcePathStyle : (f<boolean>('s3PathStyle') ?? Boolean(endpoint));
  const seconds = (v: string | undefined, name: string) => (v === undefined ? undefined : Math.round(1000 * parseSeconds(v, name)));
  const cacheSize = flags.cacheSize ?? env.HEXZ_CACHE_SIZE ?? f<string | number>('cacheSize');
  return serveConfig({
    storage: flags.storage ?? env.HEXZ_STORAGE ?? f('storage'),
    host: flags.host ?? env.HEXZ_HOST ?? f('host'),
    port: int(flags.port ?? env.HEXZ_PORT ?? f<number>('port'), '--port', 0, 65535),
    cacheBytes: cacheSize === undefined ? undefined : typeof cacheSize === 'number' ? cacheSize : parseSize(cacheSize, '--cache-size'),
    storageOptions: {
      s3: { endpoint, region: common.s3?.region ?? f('s3Region'), forcePathStyle: pathStyle },
      http: common.http ?? {},
    },
    corsOrigins: flags.corsOrigin?.length ? flags.corsOrigin : (list(env.HEXZ_CORS_ORIGINS) ?? f('corsOrigins')),
    // Like the CORS origins: the flags (all of them), else the variable, else the config file.
    authTokenFiles: flags.authTokenFile?.length ? flags.authTokenFile : (list(env.HEXZ_AUTH_TOKEN_FILE) ?? f('authTokenFiles')),
    cacheControl: flags.cacheControl ?? env.HEXZ_CACHE_CONTROL ?? f('cacheControl'),
    keyDir: flags.keyDir ?? env.HEXZ_KEY_DIR ?? f('keyDir'),
    keyFile: flags.keyFile ?? env.HEXZ_KEY_FILE,
    passphraseFile: flags.passphraseFile ?? env.HEXZ_PASSPHRASE_FILE,
    passphrase: env.HEXZ_PASSPHRASE,
    archiveTtlMs: seconds(flags.archiveTtl, '--archive-ttl') ?? int(env.HEXZ_ARCHIVE_TTL_MS ?? f<number>('archiveTtlMs'), 'HEXZ_ARCHIVE_TTL_MS', 0),
    maxOpenArchives: int(env.HEXZ_MAX_OPEN_ARCHIVES ?? f<number>('maxOpenArchives'), 'HEXZ_MAX_OPEN_ARCHIVES', 1),
    maxRanges: int(flags.maxRanges ?? env.HEXZ_MAX_RANGES ?? f<number>('maxRanges'), '--max-ranges', 1),
    defaultPageSize: int(env.HEXZ_PAGE_SIZE ?? f<number>('defaultPageSize'), 'HEXZ_PAGE_SIZE', 1),
    maxPageSize: int(env.HEXZ_MAX_PAGE_SIZE ?? f<number>('maxPageSize'), 'HEXZ_MAX_PAGE_SIZE', 1),
    requestTimeoutMs: seconds(flags.requestTimeout, '--request-timeout') ?? int(env.HEXZ_REQUEST_TIMEOUT_MS ?? f<number>('requestTimeoutMs'), 'HEXZ_REQUEST_TIMEOUT_MS', 1),
    idleTimeoutMs: int(env.HEXZ_IDLE_TIMEOUT_MS ?? f<number>('idleTimeoutMs'), 'HEXZ_IDLE_TIMEOUT_MS', 1),
    shutdownTimeoutMs: seconds(flags.shutdownTimeout, '--shutdown-timeout') ?? int(env.HEXZ_SHUTDOWN_TIMEOUT_MS ?? f<number>('shutdownTimeoutMs'), 'HEXZ_SHUTDOWN_TIMEOUT_MS', 0),
    etagCacheEntries: int(env.HEXZ_ETAG_CACHE_ENTRIES ?? f<number>('etagCacheEntries'), 'HEXZ_ETAG_CACHE_ENTRIES', 1),
    logLevel: (flags.logLevel ?? env.HEXZ_LOG_LEVEL ?? f<string>('logLevel')) as LogLevel | undefined,
  });
}

type Input = { [K in keyof ServeConfig]?: ServeConfig[K] | undefined };

/**
 * Complete a partial configuration with the defaults and validate it. `startGateway` calls it, so
 * tests and benchmarks pass only what they change (`{ storage: dir, port: 0 }`).
 */
export function serveConfig(input: Input = {}): ServeConfig {
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
  };
  const bad = (msg: string) => new HexzError('INVALID_ARGUMENT', msg);
  if (!cfg.storage) throw bad('--storage: empty');
  if (!cfg.host) throw bad('--host: empty');
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw bad(`--port: expected 0-65535, got ${cfg.port}`);
  if (!Number.isSafeInteger(cfg.cacheBytes) || cfg.cacheBytes < 1 << 20) throw bad(`--cache-size: at least 1M, got ${cfg.cacheBytes}`);
  const positive: Array<keyof ServeConfig> = ['maxOpenArchives', 'maxRanges', 'defaultPageSize', 'maxPageSize', 'requestTimeoutMs', 'idleTimeoutMs', 'etagCacheEntries'];
  for (const k of positive) {
    const v = cfg[k] as number;
    if (!Number.isSafeInteger(v) || v < 1) throw bad(`${k}: expected a positive integer, got ${v}`);
  }
  for (const k of ['archiveTtlMs', 'shutdownTimeoutMs'] as const) {
    if (!Number.isSafeInteger(cfg[k]) || cfg[k] < 0) throw bad(`${k}: expected a non-negative integer, got ${cfg[k]}`);
  }
  if (cfg.defaultPageSize > cfg.maxPageSize) throw bad(`defaultPageSize (${cfg.defaultPageSize}) exceeds maxPageSize (${cfg.maxPageSize})`);
  if (!LOG_LEVELS.includes(cfg.logLevel)) throw bad(`log level: expected one of ${LOG_LEVELS.join(', ')}, got "${cfg.logLevel}"`);
  for (const o of cfg.corsOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/i.test(o)) throw bad(`--cors-origin: expected "*" or an origin like https://example.org (no path), got "${o}"`);
  }
  if (/[\r\n]/.test(cfg.cacheControl)) throw bad('--cache-control: must be one line');
  return cfg;
}
