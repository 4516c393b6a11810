/**
 * The CLI's configuration, read once at the edge: command-line flags first, then environment
 * variables, then documented defaults, into one typed object (docs/cli.md, "Global options"). Library
 * code never reads `process.env` or names a flag; `hexz serve` builds the gateway's configuration from
 * these and its own flags in ./serve-config.ts.
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CACHE_BYTES } from '../../cache/budget.js';
import type { StorageOptions } from '../../storage/index.js';
import { HexzError } from '../errors.js';
import type { BaseResolution } from '../reader/bases.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parse a size like `64K`, `256MiB`, `1.5G` or `4096` (bytes). Single-letter and IEC units are powers
 * of 1024, `KB`/`MB`/`GB` powers of 1000. `INVALID_ARGUMENT` names the option on bad input.
 */
export function parseSize(input: string, option = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(input));
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new HexzError('INVALID_ARGUMENT', `${option}: cannot parse size "${input}" (e.g. 64K, 256M, 1G)`);
  return Math.round(Number(m[1]) * unit);
}

/** Parse a non-negative integer option. */
export function parseInteger(input: string, option: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(input);
  if (!Number.isInteger(n) || n < min || n > max) throw new HexzError('INVALID_ARGUMENT', `${option}: expected an integer in [${min}, ${max}], got "${input}"`);
  return n;
}

/** Parse a duration in seconds (`30`, `2.5`). */
export function parseSeconds(input: string, option: string): number {
  const n = Number(input);
  if (!Number.isFinite(n) || n <= 0) throw new HexzError('INVALID_ARGUMENT', `${option}: expected a number of seconds, got "${input}"`);
  return n;
}

/** `Name: value` lines → a header object (empty lines ignored). */
function parseHeaders(lines: string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const line of lines) {
    if (!line.trim()) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new HexzError('INVALID_ARGUMENT', `--http-header expects "Name: value", got "${line}"`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}

/** Options every command understands (see docs/cli.md, "Global options"). */
export interface GlobalFlags {
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  cacheSize?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  keyFile?: string;
  passphraseFile?: string;
  baseDir?: string;
  baseMap?: string[];
  baseHosts?: string;
  httpHeader?: string[];
  httpTimeout?: string;
  httpRetries?: string;
  storageTimeout?: string;
  decodeThreads?: string;
  trustedKeys?: string;
  /** Per command (pack, sign, flatten, commit), but read with the rest. */
  signKey?: string;
}

export interface GlobalConfig {
  json: boolean;
  quiet: boolean;
  /** Show progress bars (only ever on a TTY). */
  progress: boolean;
  cacheBytes: number;
  /** Decode threads of bulk reads (undefined: one per core). */
  decodeThreads?: number;
  storage: StorageOptions;
  /** Where the key comes from, if any (read lazily: only commands that need it open the file). */
  keyFile?: string;
  passphraseFile?: string;
  passphrase?: string;
  bases: BaseResolution;
  /** File or directory of trusted public keys (read lazily): archives not signed by one are refused. */
  trustedKeys?: string;
  /** Signing key file of the commands that write archives (read lazily). */
  signKeyFile?: string;
  /** Where workspaces keep their state (`<home>/workspaces/<id>/`): HEXZ_HOME, else ~/.hexz. */
  home: string;
  /** Workspace files from this size copy up by extent (HEXZ_EXTENT_MIN; default 64 MiB). */
  extentCopyUpMin?: number;
  /** Workspace journals are considered for compaction from this many lines (HEXZ_JOURNAL_COMPACT; default 10,000). */
  journalCompactMin?: number;
}

type Env = Record<string, string | undefined>;

/** `--base-hosts`: `*`, or a comma-separated list of `scheme://host[:port]` origins. */
function parseBaseHosts(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const list = value.split(',').map((v) => v.trim()).filter(Boolean);
  for (const o of list) {
    if (o !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[^/]*$/i.test(o)) throw new HexzError('INVALID_ARGUMENT', `--base-hosts expects * or scheme://host[:port] origins separated by commas, got "${o}"`);
  }
  return list;
}

/** Merge flags and environment into the typed configuration. */
export function globalConfig(flags: GlobalFlags, env: Env): GlobalConfig {
  const endpoint = flags.s3Endpoint ?? env.HEXZ_S3_ENDPOINT ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const pathStyleEnv = env.HEXZ_S3_PATH_STYLE;
  const httpTimeout = flags.httpTimeout ?? env.HEXZ_HTTP_TIMEOUT;
  const httpRetries = flags.httpRetries ?? env.HEXZ_HTTP_RETRIES;
  const storageTimeout = flags.storageTimeout ?? env.HEXZ_STORAGE_TIMEOUT;
  const baseMap: Record<string, string> = {};
  for (const pair of flags.baseMap ?? []) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new HexzError('INVALID_ARGUMENT', `--base-map expects UUID=LOCATION, got "${pair}"`);
    baseMap[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return {
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    progress: flags.progress !== false && env.HEXZ_PROGRESS !== '0',
    cacheBytes: parseSize(flags.cacheSize ?? env.HEXZ_CACHE_SIZE ?? `${DEFAULT_CACHE_BYTES}`, '--cache-size'),
    decodeThreads: (flags.decodeThreads ?? env.HEXZ_DECODE_THREADS) === undefined ? undefined : parseInteger((flags.decodeThreads ?? env.HEXZ_DECODE_THREADS)!, '--decode-threads', 0, 64),
    storage: {
      s3: {
        endpoint,
        region: flags.s3Region ?? env.HEXZ_S3_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
        // Custom endpoints (MinIO, Ceph, s3rver) almost always need path-style addressing.
        forcePathStyle: flags.s3PathStyle ?? (pathStyleEnv !== undefined ? pathStyleEnv !== '0' : Boolean(endpoint)),
      },
      http: {
        headers: parseHeaders([...(env.HEXZ_HTTP_HEADERS ? env.HEXZ_HTTP_HEADERS.split('\n') : []), ...(flags.httpHeader ?? [])]),
        timeoutMs: httpTimeout === undefined ? undefined : Math.round(1000 * parseSeconds(httpTimeout, '--http-timeout')),
        retries: httpRetries === undefined ? undefined : parseInteger(httpRetries, '--http-retries', 0, 20),
      },
      progressTimeoutMs: storageTimeout === undefined ? undefined : Math.round(1000 * parseSeconds(storageTimeout, '--storage-timeout')),
    },
    keyFile: flags.keyFile ?? env.HEXZ_KEY_FILE,
    passphraseFile: flags.passphraseFile ?? env.HEXZ_PASSPHRASE_FILE,
    passphrase: env.HEXZ_PASSPHRASE,
    bases: {
      baseDir: flags.baseDir ?? env.HEXZ_BASE_DIR,
      baseMap: Object.keys(baseMap).length ? baseMap : undefined,
      baseHosts: parseBaseHosts(flags.baseHosts ?? env.HEXZ_BASE_HOSTS),
    },
    trustedKeys: flags.trustedKeys ?? (env.HEXZ_TRUSTED_KEYS || undefined),
    signKeyFile: flags.signKey ?? (env.HEXZ_SIGN_KEY || undefined),
    home: path.resolve(env.HEXZ_HOME || path.join(os.homedir(), '.hexz')),
    extentCopyUpMin: env.HEXZ_EXTENT_MIN ? parseSize(env.HEXZ_EXTENT_MIN, 'HEXZ_EXTENT_MIN') : undefined,
    journalCompactMin: env.HEXZ_JOURNAL_COMPACT ? parseInteger(env.HEXZ_JOURNAL_COMPACT, 'HEXZ_JOURNAL_COMPACT', 1, Number.MAX_SAFE_INTEGER) : undefined,
  };
}
