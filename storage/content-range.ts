/**
 * Ranged replies, as pure functions shared by the HTTP and S3 backends: parsing `Content-Range`
 * (RFC 9110 §14.4) and deciding whether the bytes a server sent cover what was asked. Servers do not
 * always send what was asked (s3rver answers a suffix range with the object's first bytes, some
 * servers clip or widen ranges), so the backends trust `Content-Range`, never the request.
 */

/** `Content-Range: bytes a-b/total`, or `bytes * /total` on a 416; `total` undefined when it is `*`. */
export interface ContentRange {
  start?: number;
  end?: number;
  total?: number;
}

/** Parse a `Content-Range` header value; undefined when absent or malformed (including `end < start`). */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const cr: ContentRange = {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === '*' ? undefined : Number(m[3]),
  };
  if (cr.start !== undefined && cr.end! < cr.start) return undefined;
  if (cr.start === undefined && cr.total === undefined) return undefined; // `bytes */*` says nothing
  return cr;
}

/** Bytes of an object as a server sent them: where they start, and the object's whole size. */
export interface Span {
  bytes: Uint8Array;
  start: number;
  total: number;
}

/**
 * The span a 206's body covers, when its Content-Range is complete (start, end and total) and agrees
 * with the body's length; undefined otherwise.
 */
export function spanOf(cr: ContentRange | undefined, bytes: Uint8Array): Span | undefined {
  if (cr?.start === undefined || cr.end === undefined || cr.total === undefined) return undefined;
  if (bytes.byteLength !== cr.end - cr.start + 1 || cr.end >= cr.total) return undefined;
  return { bytes, start: cr.start, total: cr.total };
}

/** `length` bytes at `offset` out of `span` (a view, no copy), or undefined when it does not hold them all. */
export function sliceRange(span: Span, offset: number, length: number): Uint8Array | undefined {
  if (span.start > offset || span.start + span.bytes.byteLength < offset + length) return undefined;
  return span.bytes.subarray(offset - span.start, offset - span.start + length);
}

/** The last `min(length, total)` bytes of the object out of `span`, or undefined when it does not reach them. */
export function sliceTail(span: Span, length: number): Uint8Array | undefined {
  const want = Math.max(0, span.total - length);
  if (span.start > want || span.start + span.bytes.byteLength !== span.total) return undefined;
  return span.bytes.subarray(want - span.start);
}
