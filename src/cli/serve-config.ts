/**
 * `hexz serve`'s configuration from the edge: flags, then environment variables (`HEXZ_…`), then the
 * optional JSON config file (`--config` / `HEXZ_CONFIG`), then the gateway's defaults
 * (src/gateway/config.ts, which validates the result). Errors name the flag or variable at fault.
 */
import { promises as fs } from 'node:fs';
import { serveConfig, type LogLevel, type ServeConfig, type ServeConfigInput } from '../gateway/config.js';
import { HexzError, isHexzError, toHexzError } from '../errors.js';
import { globalConfig, parseInteger, parseSeconds, parseSize, type GlobalFlags } from './config.js';

/** The flag of each configuration field the gateway's validation may refuse (others name themselves). */
const FLAG_OF: Partial<Record<keyof ServeConfig, string>> = {
  storage: '--storage',
  host: '--host',
  port: '--port',
  cacheBytes: '--cache-size',
  corsOrigins: '--cors-origin',
  cacheControl: '--cache-control',
  authTokenFiles: '--auth-token-file',
  workers: '--workers',
  healthPort: '--health-port',
  maxRanges: '--max-ranges',
  logLevel: '--log-level',
  trustedKeys: '--trusted-keys',
};

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
  workers?: string;
  healthPort?: string;
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
  trustedKeys: 'string',
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
  workers: 'number',
  healthPort: 'number',
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
  return withFlagNames(() => serveConfig({
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
    trustedKeys: flags.trustedKeys ?? (env.HEXZ_TRUSTED_KEYS || undefined) ?? f('trustedKeys'),
    archiveTtlMs: seconds(flags.archiveTtl, '--archive-ttl') ?? int(env.HEXZ_ARCHIVE_TTL_MS ?? f<number>('archiveTtlMs'), 'HEXZ_ARCHIVE_TTL_MS', 0),
    maxOpenArchives: int(env.HEXZ_MAX_OPEN_ARCHIVES ?? f<number>('maxOpenArchives'), 'HEXZ_MAX_OPEN_ARCHIVES', 1),
    maxRanges: int(flags.maxRanges ?? env.HEXZ_MAX_RANGES ?? f<number>('maxRanges'), '--max-ranges', 1),
    defaultPageSize: int(env.HEXZ_PAGE_SIZE ?? f<number>('defaultPageSize'), 'HEXZ_PAGE_SIZE', 1),
    maxPageSize: int(env.HEXZ_MAX_PAGE_SIZE ?? f<number>('maxPageSize'), 'HEXZ_MAX_PAGE_SIZE', 1),
    requestTimeoutMs: seconds(flags.requestTimeout, '--request-timeout') ?? int(env.HEXZ_REQUEST_TIMEOUT_MS ?? f<number>('requestTimeoutMs'), 'HEXZ_REQUEST_TIMEOUT_MS', 1),
    idleTimeoutMs: int(env.HEXZ_IDLE_TIMEOUT_MS ?? f<number>('idleTimeoutMs'), 'HEXZ_IDLE_TIMEOUT_MS', 1),
    shutdownTimeoutMs: seconds(flags.shutdownTimeout, '--shutdown-timeout') ?? int(env.HEXZ_SHUTDOWN_TIMEOUT_MS ?? f<number>('shutdownTimeoutMs'), 'HEXZ_SHUTDOWN_TIMEOUT_MS', 0),
    etagCacheEntries: int(env.HEXZ_ETAG_CACHE_ENTRIES ?? f<number>('etagCacheEntries'), 'HEXZ_ETAG_CACHE_ENTRIES', 1),
    workers: int(flags.workers ?? env.HEXZ_WORKERS ?? f<number>('workers'), '--workers', 0, 256),
    healthPort: int(flags.healthPort ?? (env.HEXZ_HEALTH_PORT || undefined) ?? f<number>('healthPort'), '--health-port', 0, 65535),
    logLevel: (flags.logLevel ?? env.HEXZ_LOG_LEVEL ?? f<string>('logLevel')) as LogLevel | undefined,
  }));
}

/**
 * `err` with the flag instead of the configuration field it names (the gateway's validation and
 * start-up name fields: `port: …` becomes `--port: …`); any other error as it is.
 */
export function withFlagName(err: unknown): unknown {
  const option = isHexzError(err, 'INVALID_ARGUMENT') ? (err.context.option as keyof ServeConfig | undefined) : undefined;
  const flag = option && FLAG_OF[option];
  if (!flag) return err;
  return new HexzError('INVALID_ARGUMENT', (err as HexzError).message.replace(`${option}:`, `${flag}:`), (err as HexzError).context, { cause: err });
}

/** Run the gateway's validation, naming flags in what it refuses. */
function withFlagNames(build: () => ServeConfig): ServeConfig {
  try {
    return build();
  } catch (err) {
    throw withFlagName(err);
  }
}

export type { ServeConfigInput };

