/**
 * Content: `GET|HEAD /v1/archives/NAME/files/PATH` (a file of a directory archive) and
 * `GET|HEAD /v1/archives/NAME/disk` (the file of a single-file archive). The conditional and range
 * logic is `planRange` (src/gateway/range.ts); this route resolves the target, applies the plan and
 * streams the bytes straight from the reader with backpressure.
 *
 * Hot-path choices (docs/gateway.md, "Performance"):
 * - the target (entry, ETag) is cached per archive version, so a warm request walks no index;
 * - the first piece is loaded before the status line is sent, so a storage failure or a changed object
 *   still gets a proper error (and one transparent retry on `ARCHIVE_CHANGED`) instead of a cut body;
 * - a range inside one chunk is sent as a view of the cached chunk (no copy, no stream); larger ones
 *   stream piece by piece, each piece a view; nothing is ever buffered whole;
 * - a client that goes away destroys the stream, which stops the reader's prefetching.
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HexzError } from '../src/errors.js';
import { withFreshArchive } from '../src/reader/fresh.js';
import type { ContentPiece } from '../src/reader/archive.js';
import { Deadline, errorResponses, flag, FLAG_SCHEMA, sendProtocolError, type GatewayContext, type RoutePluginOptions } from '../src/gateway/http.js';
import { parseArchiveUrl, type ArchiveView } from '../src/gateway/names.js';
import type { ByteRange, ConditionalHeaders, RangePlan } from '../src/gateway/range.js';
import { planResponse } from '../src/gateway/response.js';
import type { ArchiveLease } from '../src/gateway/registry.js';
import { lastModifiedOf, type ContentTarget } from '../src/gateway/content.js';

/**
 * Ranges up to this size that span several chunks are gathered (as views) and sent in one write
 * instead of being streamed piece by piece: the stream machinery costs more than the whole write.
 */
export const GATHER_MAX_BYTES = 256 * 1024;

/** Buffers as views of the same memory (Fastify and sockets want Buffers; the reader gives Uint8Arrays). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 8187). */
export function contentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  const exact = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}

/**
 * Send a small body made of several views without copying them together: the status line, headers
 * and every view leave in one corked write (writev). Fastify is bypassed only for the writing
 * (`hijack`); its headers (CORS, request id) are carried over, and the exchange is still logged and
 * metered (src/gateway/exchange.ts).
 */
function sendViews(reply: FastifyReply, views: Uint8Array[]): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  res.cork();
  for (const v of views) res.write(v);
  res.end();
  return reply;
}

/** The reader's pieces as Buffers (views, no copies) for the socket. */
async function* asBuffers(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const b of source) yield asBuffer(b);
}

/** The bytes of one range: the piece already loaded, then the rest of the reader's pieces. */
async function* rangeBytes(first: IteratorResult<ContentPiece>, rest: AsyncGenerator<ContentPiece>): AsyncGenerator<Uint8Array> {
  try {
    if (first.done) return;
    yield first.value.bytes;
    for (;;) {
      const n = await rest.next();
      if (n.done) return;
      yield n.value.bytes;
    }
  } finally {
    await rest.return(undefined);
  }
}

/**
 * The parts of a multipart/byteranges body. The first range's first piece is already loaded (see
 * `answer`); later ranges are read lazily when their turn comes.
 */
async function* multipartBytes(
  multipart: NonNullable<RangePlan['multipart']>,
  firstPiece: IteratorResult<ContentPiece>,
  firstRest: AsyncGenerator<ContentPiece>,
  open: (r: ByteRange) => AsyncGenerator<ContentPiece>,
): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < multipart.parts.length; i++) {
    const part = multipart.parts[i];
    yield Buffer.from(part.head, 'latin1');
    if (i === 0) yield* rangeBytes(firstPiece, firstRest);
    else for await (const p of open(part.range)) yield p.bytes;
  }
  yield Buffer.from(multipart.tail, 'latin1');
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

async function serveContent(ctx: GatewayContext, view: ArchiveView, request: FastifyRequest<{ Querystring: { download?: string } }>, reply: FastifyReply): Promise<FastifyReply> {
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

/** Answer from one leased archive version; the lease is released when the response ends (or by the caller on error). */
async function answer(
  ctx: GatewayContext,
  view: ArchiveView,
  path: string,
  lease: ArchiveLease,
  deadline: Deadline,
  request: FastifyRequest<{ Querystring: { download?: string } }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { archive } = lease;
  let display: string | undefined;
  if (view === 'disk') {
    if (!archive.isSingleFile) {
      throw new HexzError('PATH_NOT_FOUND', `archive "${lease.name}" is a directory archive: use /files/PATH`, { archive: lease.name });
    }
    path = 'disk';
    display = archive.root.metadata.source?.name;
  }
  const target = await deadline.race(ctx.content.resolve(archive, lease.id, path, display));
  const plan = planResponse({
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
    name: path || 'disk',
  });
  if (plan.body.kind !== 'bytes') {
    lease.release();
    if (plan.body.kind === 'error') return sendProtocolError(reply.headers(plan.headers), plan.body.code, plan.body.message);
    return reply.code(plan.status).headers(plan.headers).send();
  }
  const { ranges, multipart } = plan.body;
  const headers = plan.headers;

  const readRange = (r: ByteRange) => archive.pieces(target.entry, { start: r.start, end: r.end + 1 });
  let body: Buffer | Readable;
  // Load the first piece before committing to a status line (see the module comment).
  const r = ranges[0];
  const pieces = readRange(r);
  let first: IteratorResult<ContentPiece>;
  try {
    first = await deadline.race(pieces.next());
  } catch (err) {
    void pieces.return(undefined).catch(() => {});
    throw err;
  }
  const length = r.end - r.start + 1;
  if (multipart) {
    body = Readable.from(asBuffers(multipartBytes(multipart, first, pieces, readRange)), { objectMode: false });
  } else if (!first.done && first.value.bytes.byteLength === length) {
    // The whole range is one view of a cached chunk: send it as is.
    void pieces.return(undefined).catch(() => {});
    body = asBuffer(first.value.bytes);
  } else if (length <= GATHER_MAX_BYTES) {
    // A small range over a few chunks: gather the views, then send them in one corked write.
    const parts: Uint8Array[] = first.done ? [] : [first.value.bytes];
    try {
      for (let n = await deadline.race(pieces.next()); !n.done; n = await deadline.race(pieces.next())) parts.push(n.value.bytes);
    } finally {
      void pieces.return(undefined).catch(() => {});
    }
    reply.raw.once('close', lease.release);
    return sendViews(reply.code(plan.status).headers(headers), parts);
  } else {
    body = Readable.from(asBuffers(rangeBytes(first, pieces)), { objectMode: false });
  }
  // Holding the lease until the socket is done keeps the archive open for the whole body.
  reply.raw.once('close', lease.release);
  return reply.code(plan.status).headers(headers).send(body);
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
      handler: (request, reply) => serveContent(ctx, view, request, reply),
    });
  }
};
