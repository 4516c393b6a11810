/**
 * What the gateway's routes share: the context they are given, the JSON error shape and its schema,
 * and the first-byte deadline. Errors are mapped through `ERROR_TABLE` (src/errors.ts) and nowhere
 * else; protocol answers decided by a route rather than thrown (401 without a valid token, 412 from a
 * failed precondition, 416) are sent by `sendProtocolError`, with their status from the same table.
 */
import type { FastifyReply } from 'fastify';
import { fileURLToPath } from 'node:url';
import { ERROR_TABLE, HexzError, toHexzError, type ErrorCode } from '../errors.js';
import { withFreshArchive } from '../reader/fresh.js';
import type { ServeConfig } from './config.js';
import type { ContentIndex } from './content.js';
import type { GatewayMetrics } from './metrics.js';
import type { ArchiveLease, ArchiveRegistry } from './registry.js';
import type { SequentialReaders } from './sequential.js';

/** Everything a route plugin needs; built once by the server, passed as plugin options. */
export interface GatewayContext {
  config: ServeConfig;
  registry: ArchiveRegistry;
  content: ContentIndex;
  metrics: GatewayMetrics;
  /** Consecutive ranges of one file from one client: what to prefetch (./sequential.ts). */
  sequential: SequentialReaders;
  /** True once shutdown began (readiness turns false, new work is refused). */
  shuttingDown(): boolean;
}

/** Options every route plugin receives. */
export interface RoutePluginOptions {
  ctx: GatewayContext;
}

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** JSON schema of `ErrorBody`, used in every route's response schemas. */
export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

/** Response schemas of the error statuses a route can answer. */
export function errorResponses(...statuses: number[]): Record<number, typeof ERROR_SCHEMA> {
  const out: Record<number, typeof ERROR_SCHEMA> = {};
  for (const s of [400, 401, 404, 500, 502, 503, 504, ...statuses]) out[s] = ERROR_SCHEMA;
  return out;
}

/** Generic text for server errors whose detail must not reach clients. */
const INTERNAL_MESSAGE = 'internal error (see the gateway log, request id in X-Request-Id)';

/**
 * A function that removes the storage root's location from messages (a client has no business
 * knowing the server's directories or bucket layout); names relative to the root remain.
 */
export function makeRedactor(rootUrl: string): (message: string) => string {
  const needles = [rootUrl];
  if (rootUrl.startsWith('file:')) {
    const dir = fileURLToPath(rootUrl);
    needles.push(dir.endsWith('/') ? dir : `${dir}/`);
  }
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A location under the root becomes its key; the root itself becomes the words "the storage root".
  const underRoot = needles.map((n) => new RegExp(`${escape(n)}(?=\\S)`, 'g'));
  const bare = needles.map((n) => new RegExp(`${escape(n)}|${escape(n.replace(/\/$/, ''))}(?![\\w/])`, 'g'));
  return (message) => {
    let out = message;
    for (const re of underRoot) out = out.replace(re, '');
    for (const re of bare) out = out.replace(re, 'the storage root');
    return out;
  };
}

/** Status and JSON body for any thrown value, mapped through ERROR_TABLE. */
export function errorResponse(err: unknown, redact: (m: string) => string): { status: number; body: ErrorBody; error: HexzError } {
  const fst = err as { validation?: unknown; statusCode?: number; code?: string; message?: string };
  let e: HexzError;
  if (fst && typeof fst === 'object' && !(err instanceof HexzError) && (fst.validation || (typeof fst.statusCode === 'number' && fst.statusCode < 500))) {
    // Fastify's own request errors (schema validation, malformed requests) are the client's fault.
    e = new HexzError('INVALID_ARGUMENT', fst.message ?? 'invalid request', {}, { cause: err });
  } else {
    e = toHexzError(err);
  }
  const status = ERROR_TABLE[e.code].http;
  const message = e.code === 'INTERNAL' ? INTERNAL_MESSAGE : redact(e.message);
  return { status, body: { error: { code: e.code, message } }, error: e };
}

/**
 * Send a JSON error for a protocol answer (401, 412, 416) decided by a route rather than thrown by the
 * library; the status comes from ERROR_TABLE like every other error.
 */
export function sendProtocolError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERROR_TABLE[code].http).type('application/json; charset=utf-8').send({ error: { code, message } } satisfies ErrorBody);
}

/**
 * A deadline for the part of a request before the first byte (opening the archive, index pages, the
 * first chunk): storage that stalls answers 504 instead of holding the connection forever. One timer
 * per request; `race` wraps each awaited step.
 */
export class Deadline {
  private timer?: NodeJS.Timeout;
  private readonly expired: Promise<never>;

  constructor(ms: number, what: string) {
    this.expired = new Promise<never>((_, reject) => {
      this.timer = setTimeout(() => reject(new HexzError('TIMEOUT', `${what}: no response from storage within ${ms} ms`)), ms);
    });
    this.expired.catch(() => {});
  }

  /** `p`, or `TIMEOUT` if the deadline passes first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.expired]);
  }

  /** Stop the timer (the first byte is out, or the request failed). */
  clear(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Run `attempt`, and once more if an archive it read was replaced under it (`ARCHIVE_CHANGED`, found
 * before anything was sent): the leases it took through `acquire` are then released and invalidated,
 * so the second run opens the new version. On success the leases are `attempt`'s to release (now, or
 * when its response ends); on failure they are released here (`release` is idempotent). `race` bounds
 * each acquisition (a request's `Deadline`).
 */
export async function withArchiveRetry<T>(
  registry: ArchiveRegistry,
  attempt: (acquire: (name: string) => Promise<ArchiveLease>) => Promise<T>,
  race: <P>(p: Promise<P>) => Promise<P> = (p) => p,
): Promise<T> {
  // The leases one attempt took; the retry rule itself is the reader's one (withFreshArchive).
  return withFreshArchive<ArchiveLease[], T>({
    open: async () => [],
    run: (leases) =>
      attempt(async (name) => {
        const lease = await race(registry.acquire(name));
        leases.push(lease);
        return lease;
      }),
    release: (leases, changed) => {
      for (const l of leases) {
        l.release();
        if (changed) registry.invalidate(l);
      }
    },
  });
}

/** A boolean query flag: present and not `0`/`false`. */
export function flag(value: string | undefined): boolean {
  return value !== undefined && value !== '0' && value !== 'false';
}

/** Schema of a boolean query flag (`?download`, `?download=1`, `?recursive=true`). */
export const FLAG_SCHEMA = { type: 'string', enum: ['', '0', '1', 'true', 'false'] } as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route name in metrics and logs (`files`, `tree`…); unmatched requests are `unmatched`. */
    route?: string;
    /** Open without a bearer token even when authentication is on (health probes). */
    public?: boolean;
  }
}
