/**
 * What every part of the S3 backend shares (docs/operations.md, "S3 configuration"): the lazily
 * imported SDK, one client per (endpoint, region, path style) per process, `s3://` URL parsing, and
 * the mapping of SDK errors to the one error table. Reads and roots are in ./s3.ts, the multipart
 * writer in ./s3-writer.ts.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { HexzError, type ErrorContext } from '../src/errors.js';
import type { S3Options } from './options.js';

/** Region when neither the options nor the AWS chain (AWS_REGION, profile) name one: where S3-compatible servers expect it. */
export const DEFAULT_S3_REGION = 'us-east-1';
/** SDK attempts per request (standard retry mode: throttling, 5xx, timeouts, resets), 4 = 3 retries with backoff. */
export const S3_MAX_ATTEMPTS = 4;
/** Connect timeout: 10 s notices an unreachable endpoint quickly but tolerates a slow TLS handshake. */
export const S3_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Socket inactivity timeout of every request: 60 s, since S3 may take a while to answer
 * CompleteMultipartUpload of a big object. Reads are bounded much tighter by their progress timeout
 * (S3Options.progressTimeoutMs, ./s3.ts).
 */
export const S3_SOCKET_TIMEOUT_MS = 60_000;
/** Sockets per client: the cache's parallel loads plus the parallel part uploads of a writer. */
const S3_MAX_SOCKETS = 64;

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkPromise: Promise<Sdk> | undefined;

/** The SDK module, imported on first use only: commands that never touch S3 never load it. */
export function sdk(): Promise<Sdk> {
  sdkPromise ??= import('@aws-sdk/client-s3');
  return sdkPromise;
}

const clients = new Map<string, Promise<S3Client>>();

/** Region from the standard chain (env, shared config), or the default when it names none. */
async function chainRegion(S3: Sdk['S3Client']): Promise<string> {
  const probe = new S3({});
  try {
    return await probe.config.region();
  } catch {
    return DEFAULT_S3_REGION;
  } finally {
    probe.destroy();
  }
}

/** The shared client for these options (created on first use). */
export function clientFor(opts: S3Options = {}): Promise<S3Client> {
  if (opts.endpoint !== undefined) {
    try {
      new URL(opts.endpoint);
    } catch {
      throw new HexzError('INVALID_ARGUMENT', `invalid S3 endpoint ${opts.endpoint} (give a URL such as http://localhost:9000)`, { url: opts.endpoint, backend: 's3' });
    }
  }
  const pathStyle = opts.forcePathStyle ?? opts.endpoint !== undefined;
  const key = JSON.stringify([opts.endpoint ?? '', opts.region ?? '', pathStyle]);
  let client = clients.get(key);
  if (!client) {
    client = (async () => {
      const { S3Client } = await sdk();
      const config: S3ClientConfig = {
        region: opts.region ?? (await chainRegion(S3Client)),
        endpoint: opts.endpoint,
        forcePathStyle: pathStyle,
        // Checksums only where S3 requires them: S3-compatible servers reject or mangle the newer
        // default CRC trailers, and every archive structure carries its own hash anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        retryMode: 'standard',
        maxAttempts: S3_MAX_ATTEMPTS,
        // On AWS a bucket in another region than configured still works (one extra round trip).
        followRegionRedirects: opts.endpoint === undefined,
        requestHandler: {
          connectionTimeout: S3_CONNECT_TIMEOUT_MS,
          socketTimeout: S3_SOCKET_TIMEOUT_MS,
          httpAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
          httpsAgent: { keepAlive: true, maxSockets: S3_MAX_SOCKETS },
        },
      };
      return new S3Client(config);
    })();
    client.catch(() => clients.delete(key));
    clients.set(key, client);
  }
  return client;
}

/** Percent-decode one key segment; a segment that is not valid escaping is taken literally. */
function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

/** Key as it appears in a URL: each segment escaped, like `relativeLocation` does. */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** `s3://bucket/key` → bucket and (decoded) key. */
export function parseS3Url(url: string, what: 'object' | 'prefix'): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/i.exec(url);
  if (!m) throw new HexzError('INVALID_ARGUMENT', `invalid S3 URL ${url} (expected s3://bucket/${what === 'object' ? 'key' : 'prefix/'})`, { url, backend: 's3' });
  const key = (m[2] ?? '').split('/').map(decodeSegment).join('/');
  if (what === 'object' && (key === '' || key.endsWith('/'))) {
    throw new HexzError('INVALID_ARGUMENT', `S3 URL ${url} names no object (expected s3://bucket/key)`, { url, backend: 's3' });
  }
  return { bucket: m[1], key };
}

/** The fields of an SDK error this module looks at. */
export interface AwsError {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  cause?: { code?: string };
  $metadata?: { httpStatusCode?: number };
}

/** Name of an SDK error: the service's error code, or the JS error's name. */
export function awsErrorName(err: unknown): string {
  const e = (err ?? {}) as AwsError;
  return e.name ?? e.Code ?? e.code ?? '';
}

/**
 * Connections the other side dropped. The SDK renames such errors `TimeoutError` (so that its retry
 * strategy treats them as transient) but keeps their errno in `code`: a reset is a failed read
 * (`STORAGE_IO`), not a timeout.
 */
const CONNECTION_DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED']);
const DENIED = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);
const TIMEOUTS = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

/** Map an SDK error to the one error table; `op` and `url` name what failed. */
export function s3Error(err: unknown, op: string, url: string, signal?: AbortSignal, extra: ErrorContext = {}): HexzError {
  if (err instanceof HexzError) return err;
  const e = (err ?? {}) as AwsError;
  const name = awsErrorName(err);
  const status = e.$metadata?.httpStatusCode;
  const errno = typeof e.code === 'string' ? e.code : e.cause?.code;
  const ctx: ErrorContext = { url, backend: 's3', ...(status ? { status } : {}), ...(errno && CONNECTION_DROPPED.has(errno) ? { errno } : {}), ...extra };
  const detail = e.message && e.message !== 'UnknownError' ? e.message : name || `HTTP ${status ?? '?'}`;
  if (signal?.aborted || name === 'AbortError') return new HexzError('ABORTED', 'aborted', ctx, { cause: err });
  if (name === 'NoSuchBucket') return new HexzError('ARCHIVE_NOT_FOUND', `${op} ${url}: the bucket does not exist`, ctx, { cause: err });
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return new HexzError('ARCHIVE_NOT_FOUND', `${url} not found`, ctx, { cause: err });
  if (name === 'CredentialsProviderError' || name === 'ProviderError') {
    return new HexzError(
      'STORAGE_DENIED',
      `${op} ${url}: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance/pod role)`,
      ctx,
      { cause: err },
    );
  }
  if (DENIED.has(name) || status === 401 || status === 403) return new HexzError('STORAGE_DENIED', `${op} ${url}: access denied (${detail})`, ctx, { cause: err });
  if (name === 'InvalidRange' || status === 416) return new HexzError('OUT_OF_RANGE', `${op} ${url}: range not satisfiable`, ctx, { cause: err });
  if (name === 'PreconditionFailed' || status === 412) return new HexzError('ARCHIVE_CHANGED', `${url} changed while it was being read (If-Match failed)`, ctx, { cause: err });
  if (errno && CONNECTION_DROPPED.has(errno)) return new HexzError('STORAGE_IO', `${op} ${url} failed: connection dropped (${detail}${detail.includes(errno) ? '' : `, ${errno}`})`, ctx, { cause: err });
  if (TIMEOUTS.has(name)) return new HexzError('TIMEOUT', `${op} ${url} timed out (${detail})`, ctx, { cause: err });
  return new HexzError('STORAGE_IO', `${op} ${url} failed: ${detail}`, ctx, { cause: err });
}
