/**
 * The end of every HTTP exchange, whether the response completed or was cut: one log line, the
 * request metrics, and the body bytes actually handed to the socket (docs/gateway.md, "Operations").
 *
 * Fastify's onResponse hook runs only when a response finishes, so a response cut in the middle (the
 * client went away, or the shutdown timeout closed its connection) used to appear in neither logs
 * nor metrics. The response's `close` event fires in every case; whether `finish` came first tells
 * a completed response from a cut one. Cut responses are recorded with status 499 (nginx's "client
 * closed request", and ABORTED in ERROR_TABLE), whatever status line had been sent.
 *
 * Body bytes are counted in the callbacks of the response's writes, that is once Node has handed
 * them to the kernel, not when they are queued: bytes still buffered in the process when a response
 * is cut are not counted.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { GatewayMetrics } from './metrics.js';

/** Status recorded (metrics label, log field) for a response that did not complete. */
export const ABORTED_STATUS = 499;

type WriteCallback = (err?: Error | null) => void;

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * Count the body bytes of `res` as its writes complete: `onBytes` is called for each write once it
 * has been flushed to the socket (never for writes that failed or were still queued when the
 * connection closed). The last chunk given to `end` counts when the response finishes.
 */
export function meterBody(res: ServerResponse, onBytes: (n: number) => void): void {
  const write = res.write;
  const end = res.end;
  res.write = function meteredWrite(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const n = byteLength(chunk, encoding);
    const callback = cb as WriteCallback | undefined;
    return write.call(res, chunk, encoding as BufferEncoding, (err?: Error | null) => {
      if (!err && n) onBytes(n);
      if (typeof callback === 'function') callback(err);
    });
  } as typeof res.write;
  res.end = function meteredEnd(chunk?: unknown, encoding?: unknown, cb?: unknown): ServerResponse {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const n = chunk == null ? 0 : byteLength(chunk, encoding);
    if (n) res.once('finish', () => onBytes(n));
    return end.call(res, chunk, encoding as BufferEncoding, cb as () => void);
  } as typeof res.end;
}

/**
 * Watch one exchange to its end: meter its body into `hexz_http_response_body_bytes_total`, and when
 * the response closes record it in `hexz_http_requests_total` / the latency histogram and log one line
 * (`request completed`, or `request aborted` with status 499 and the status line that had been sent).
 */
export function trackExchange(request: FastifyRequest, reply: FastifyReply, metrics: GatewayMetrics, route: string): void {
  const res = reply.raw;
  const started = performance.now();
  let finished = false;
  let bytes = 0;
  // HEAD, 204 and 304 answers have no body: Node drops what is written (and still calls back).
  const bodyless = request.method === 'HEAD';
  meterBody(res, (n) => {
    if (bodyless || res.statusCode === 304 || res.statusCode === 204) return;
    bytes += n;
    metrics.bytesServed.inc({ route }, n);
  });
  res.once('finish', () => {
    finished = true;
  });
  res.once('close', () => {
    const ms = performance.now() - started;
    const status = finished ? res.statusCode : ABORTED_STATUS;
    metrics.observeRequest(route, request.method, status, ms / 1000);
    const fields = {
      method: request.method,
      url: request.url,
      route,
      status,
      ms: Math.round(ms * 100) / 100,
      length: res.getHeader('content-length'),
      bytes,
    };
    if (finished) request.log.info(fields, 'request completed');
    else request.log.info({ ...fields, aborted: true, sentStatus: res.headersSent ? res.statusCode : undefined }, 'request aborted');
  });
}
