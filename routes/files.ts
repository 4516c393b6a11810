/**
 * Content: `GET|HEAD /v1/archives/NAME/files/PATH` (a file of a directory archive) and
 * `GET|HEAD /v1/archives/NAME/disk` (the file of a single-file archive). What to answer is decided by
 * the pure `planResponse` (src/gateway/response.ts); this route finds the target and sends bytes.
 *
 * Two paths (docs/gateway.md, "Performance"):
 * - **warm**: the archive open and fresh, the target resolved before, every index page and chunk of
 *   the range cached: answered synchronously — no promise, no timer, no stream — with the status
 *   line, headers and views of the cached chunks in one corked write; the views are released when
 *   the socket is done with them;
 * - **otherwise**: the async path: open or revalidate the archive, resolve the target, load the first
 *   piece before the status line goes out (a storage failure or a replaced object still gets a proper
 *   error, and one transparent reopen on `ARCHIVE_CHANGED`), then write the pieces of the bulk reader
 *   (extents decoded on the decode threads) as views, with backpressure. A body that waits on
 *   storage longer than the request timeout is cut (the socket closed), logged and counted: a stalled
 *   origin never holds a response open.
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HexzError } from '../src/errors.js';
import { withFreshArchive } from '../src/reader/fresh.js';
import type { Archive, LeasedPiece } from '../src/reader/archive.js';
import type { FileEntry } from '../src/format/file-table.js';
import { Deadline, errorResponses, flag, FLAG_SCHEMA, sendProtocolError, type GatewayContext, type RoutePluginOptions } from '../src/gateway/http.js';
import { parseArchiveUrl, type ArchiveView } from '../src/gateway/names.js';
import type { ByteRange, ConditionalHeaders } from '../src/gateway/range.js';
import { planResponse, type ResponsePlan } from '../src/gateway/response.js';
import type { ArchiveLease } from '../src/gateway/registry.js';
import { lastModifiedOf, type ContentTarget } from '../src/gateway/content.js';

/**
 * Largest body the warm path answers from cached views in one write: bigger bodies are streamed, so
 * one response never pins more than this much of the cache at once.
 */
export const WARM_MAX_BYTES = 8 * 1024 * 1024;

/** Bytes per socket write of a streamed body. */
const WRITE_SLICE = 256 * 1024;

type ContentRequest = FastifyRequest<{ Querystring: { download?: string } }>;

/** `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 8187). */
export function contentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  const exact = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}

/** Headers every content answer carries besides the plan's. */
function baseHeaders(ctx: GatewayContext, target: ContentTarget, download: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': target.contentType,
    'cache-control': ctx.config.cacheControl,
    // Archives hold arbitrary files: never let a browser guess a more dangerous type, never run their scripts with our origin.
    'x-content-type-options': 'nosniff',
    'content-security-policy': 'sandbox',
  };
  if (download) h['content-disposition'] = contentDisposition(target.fileName);
  return h;
}

/** The archive path a view addresses: `disk` of a single-file archive, else the path in the URL. */
function contentPath(view: ArchiveView, archive: Archive, lease: ArchiveLease, path: string): { path: string; display?: string } {
  if (view !== 'disk') return { path };
  if (!archive.isSingleFile) throw new HexzError('PATH_NOT_FOUND', `archive "${lease.name}" is a directory archive: use /files/PATH`, { archive: lease.name });
  return { path: 'disk', display: archive.root.metadata.source?.name };
}

function plan(ctx: GatewayContext, request: ContentRequest, archive: Archive, target: ContentTarget, name: string): ResponsePlan {
  return planResponse({
    method: request.method,
    headers: request.headers as ConditionalHeaders,
    size: target.entry.size,
    etag: target.etag,
    lastModified: lastModifiedOf(archive, target),
    // One clock reading for the Date header and every date decision of the plan (strong Last-Modified).
    now: Date.now(),
    contentType: target.contentType,
    // Only multi-range answers need a boundary; most requests should not pay for randomness.
    boundary: request.headers.range?.includes(',') ? randomBytes(12).toString('hex') : '',
    maxRanges: ctx.config.maxRanges,
    base: baseHeaders(ctx, target, flag(request.query.download)),
    name,
  });
}

/** Answer a plan without a body (304, HEAD, empty file) or with the JSON error of a 412/416. */
function answerWithoutBody(reply: FastifyReply, p: ResponsePlan): FastifyReply {
  if (p.body.kind === 'error') return sendProtocolError(reply.headers(p.headers), p.body.code, p.body.message);
  return reply.code(p.status).headers(p.headers).send();
}

/** Take over the response from Fastify (its headers, e.g. CORS and the request id, are kept) and send the status line. */
function startRaw(reply: FastifyReply, p: ResponsePlan): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  // setHeader, not writeHead(status, headers): logs and metrics read them back (Content-Length).
  const fastify = reply.getHeaders() as OutgoingHttpHeaders;
  for (const name in fastify) res.setHeader(name, fastify[name]!);
  for (const name in p.headers) res.setHeader(name, p.headers[name]);
  res.writeHead(p.status);
  return res;
}

/**
 * A single range continuing what this client read of the file before starts a prefetch of what
 * comes next (src/gateway/sequential.ts); called before the range itself is read, so a cold range
 * and the prefetch behind it are read and decoded side by side.
 */
function readAhead(ctx: GatewayContext, request: ContentRequest, lease: ArchiveLease, archive: Archive, entry: FileEntry, ranges: readonly ByteRange[]): void {
  if (ranges.length !== 1) return;
  const r = ranges[0];
  const ahead = ctx.sequential.observe(request.ip, lease.id, entry.path, r.start, r.end - r.start + 1, entry.size);
  if (ahead) archive.prefetch(entry, ahead.start, ahead.end);
}

// ---- the warm path ----------------------------------------------------------------------------------

/**
 * The whole answer from what is cached, synchronously, or undefined (nothing sent, nothing held)
 * when anything must be waited for: the archive's freshness, the target, an index page or a chunk.
 */
function answerWarm(ctx: GatewayContext, view: ArchiveView, request: ContentRequest, reply: FastifyReply): FastifyReply | undefined {
  let target: ReturnType<typeof parseArchiveUrl>;
  try {
    target = parseArchiveUrl(request.url);
  } catch {
    return undefined; // the async path gives the error
  }
  const lease = ctx.registry.leaseIfFresh(target.name);
  if (!lease) return undefined;
  let held: Array<{ release(): void }> = [];
  try {
    const { archive } = lease;
    const where = contentPath(view, archive, lease, target.path);
    const ct = ctx.content.cached(lease.id, where.path);
    if (!ct) return void lease.release();
    const p = plan(ctx, request, archive, ct, where.path || 'disk');
    if (p.body.kind !== 'bytes') {
      lease.release();
      return answerWithoutBody(reply, p);
    }
    const { ranges, multipart } = p.body;
    let total = 0;
    for (const r of ranges) total += r.end - r.start + 1;
    if (total > WARM_MAX_BYTES) return void lease.release();
    const views: Uint8Array[] = [];
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      const got = archive.cachedViews(ct.entry, r.start, r.end - r.start + 1);
      if (!got) {
        for (const h of held) h.release();
        return void lease.release();
      }
      held.push(got);
      if (multipart) views.push(Buffer.from(multipart.parts[i].head, 'latin1'));
      views.push(...got.views);
    }
    if (multipart) views.push(Buffer.from(multipart.tail, 'latin1'));
    // Only now, when the warm path answers: a range that falls through to the async path is observed
    // there, and observing it twice would count one request as two consecutive reads.
    readAhead(ctx, request, lease, archive, ct.entry, ranges);
    const res = startRaw(reply, p);
    const toRelease = held;
    held = [];
    // The socket may still hold the views after end(): they are released when it is done with them.
    res.once('close', () => {
      for (const h of toRelease) h.release();
      lease.release();
    });
    res.cork();
    for (const v of views) res.write(v);
    res.end();
    return reply;
  } catch (err) {
    for (const h of held) h.release();
    lease.release();
    throw err;
  }
}

// ---- the async path ---------------------------------------------------------------------------------

async function serveContent(ctx: GatewayContext, view: ArchiveView, request: ContentRequest, reply: FastifyReply): Promise<FastifyReply> {
  const target = parseArchiveUrl(request.url);
  const deadline = new Deadline(ctx.config.requestTimeoutMs, `${target.name}${view === 'disk' ? '/disk' : `/files/${target.path}`}`);
  try {
    // An object replaced under this version: reopen once and answer from the new one.
    return await withFreshArchive({
      open: () => deadline.race(ctx.registry.acquire(target.name)),
      run: (lease) => answer(ctx, view, target.path, lease, deadline, request, reply),
      release: (lease, changed) => {
        lease.release();
        if (changed) ctx.registry.invalidate(lease);
      },
    });
  } finally {
    deadline.clear();
  }
}

/** The pieces of one range through the bulk reader (views into the cache; each released once written). */
function readRange(archive: Archive, entry: FileEntry, r: ByteRange): AsyncGenerator<LeasedPiece> {
  return archive.leasedPieces([{ entry, start: r.start, end: r.end + 1 }]);
}

/** Answer from one leased archive version; the lease is released when the response ends (or by the caller on error). */
async function answer(ctx: GatewayContext, view: ArchiveView, path: string, lease: ArchiveLease, deadline: Deadline, request: ContentRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { archive } = lease;
  const where = contentPath(view, archive, lease, path);
  const target = await deadline.race(ctx.content.resolve(archive, lease.id, where.path, where.display));
  const p = plan(ctx, request, archive, target, where.path || 'disk');
  if (p.body.kind !== 'bytes') {
    lease.release();
    return answerWithoutBody(reply, p);
  }
  const { ranges, multipart } = p.body;
  readAhead(ctx, request, lease, archive, target.entry, ranges);
  // Load the first piece before committing to a status line (see the module comment).
  const first = readRange(archive, target.entry, ranges[0]);
  let head: IteratorResult<LeasedPiece>;
  try {
    head = await deadline.race(first.next());
  } catch (err) {
    void first.return(undefined).catch(() => {});
    throw err;
  }
  const res = startRaw(reply, p);
  // Holding the lease until the socket is done keeps the archive open for the whole body.
  res.once('close', lease.release);
  void sendBody(ctx, res, archive, target.entry, ranges, multipart, first, head).catch((err: unknown) => {
    // The status line is out: the only honest signal left is a cut body.
    request.log.warn({ err: err instanceof Error ? err.message : String(err), url: request.url }, 'response body cut: reading the archive failed');
    res.destroy();
  });
  return reply;
}

/**
 * Write the body: the ranges' pieces as views, in order, with backpressure; each piece is released
 * when the socket has taken it. A wait for the next piece longer than the request timeout ends the
 * response (storage that stalls must not hold it open: issue "stalled origin").
 */
async function sendBody(
  ctx: GatewayContext,
  res: ServerResponse,
  archive: Archive,
  entry: FileEntry,
  ranges: ByteRange[],
  multipart: NonNullable<Extract<ResponsePlan['body'], { kind: 'bytes' }>['multipart']> | undefined,
  first: AsyncGenerator<LeasedPiece>,
  head: IteratorResult<LeasedPiece>,
): Promise<void> {
  const write = async (bytes: Uint8Array, release?: () => void): Promise<void> => {
    // In slices: backpressure and the body-bytes metric (counted as each write is flushed) keep a
    // fine grain even when a piece is a whole 4 MiB extent. The piece is released after its last slice.
    for (let at = 0; ; at += WRITE_SLICE) {
      if (res.destroyed) {
        release?.();
        throw new HexzError('ABORTED', 'the client went away');
      }
      const last = at + WRITE_SLICE >= bytes.byteLength;
      const ok = res.write(bytes.subarray(at, Math.min(bytes.byteLength, at + WRITE_SLICE)), last ? release : undefined);
      if (!ok) await drained(res);
      if (last) return;
    }
  };
  for (let i = 0; i < ranges.length; i++) {
    const pieces = i === 0 ? first : readRange(archive, entry, ranges[i]);
    try {
      if (multipart) await write(Buffer.from(multipart.parts[i].head, 'latin1'));
      let n = i === 0 ? head : await nextWithin(pieces, ctx);
      for (; !n.done; n = await nextWithin(pieces, ctx)) await write(n.value.bytes, n.value.release);
    } finally {
      // Not awaited: after a stall the generator is still inside the stalled next(), and return()
      // would wait for it (as long as storage stalls). It runs its cleanup once that settles.
      void pieces.return(undefined).catch(() => {});
    }
  }
  if (multipart) await write(Buffer.from(multipart.tail, 'latin1'));
  res.end();
}

/** Resolves when `res` can take more, or when it closed (then the next write sees it destroyed). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** The next piece, or `TIMEOUT` (counted) when storage makes it wait longer than the request timeout. */
async function nextWithin(pieces: AsyncGenerator<LeasedPiece>, ctx: GatewayContext): Promise<IteratorResult<LeasedPiece>> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctx.metrics.bodyStalls.inc();
      reject(new HexzError('TIMEOUT', `no bytes from storage for ${ctx.config.requestTimeoutMs} ms while sending a body`));
    }, ctx.config.requestTimeoutMs);
  });
  expired.catch(() => {});
  const next = pieces.next();
  try {
    return await Promise.race([next, expired]);
  } catch (err) {
    // Timed out: the piece storage may still deliver belongs to nobody; release it when it comes.
    next.then((r) => void (r.done ? undefined : r.value.release()), () => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

const QUERY_SCHEMA = {
  type: 'object',
  properties: { download: FLAG_SCHEMA },
  additionalProperties: false,
} as const;

/** File and disk content routes (GET and HEAD). */
export const fileRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  for (const view of ['files', 'disk'] as const) {
    app.route<{ Querystring: { download?: string } }>({
      method: ['GET', 'HEAD'],
      url: '/v1/archives/*',
      exposeHeadRoute: false,
      constraints: { archiveView: view },
      config: { route: view },
      schema: { querystring: QUERY_SCHEMA, response: errorResponses(403, 412, 416, 422) },
      // Not async: a warm request is answered before the handler returns (no promise at all).
      handler: (request, reply) => answerWarm(ctx, view, request, reply) ?? serveContent(ctx, view, request, reply),
    });
  }
};
