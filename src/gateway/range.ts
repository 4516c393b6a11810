/**
 * Range and conditional-request planning (RFC 9110 §13 and §14), as one pure function: request
 * method and headers plus what we know of the representation (size, strong ETag, Last-Modified) in,
 * status, response headers and byte ranges out. The route only streams what the plan says, so every
 * case is covered by table tests without a server (test/gateway/range.test.ts).
 *
 * Decisions (docs/gateway.md, "Ranges and conditional requests"):
 * - preconditions in RFC order: If-Match → If-Unmodified-Since → If-None-Match → If-Modified-Since;
 * - HEAD gets exactly the headers GET would (RFC 9110 §9.3.2), a 206 included;
 * - invalid Range syntax, an unknown unit, a failed If-Range, or more ranges than `maxRanges` are
 *   ignored (200 with the whole body), as nginx does; no satisfiable range → 416 `bytes *\/size`;
 * - overlapping or adjacent ranges are sorted and merged (a `0-,0-,0-…` request cannot amplify);
 *   otherwise parts keep the order the client asked for;
 * - a zero-length representation is always sent whole (a 206 cannot describe zero bytes);
 * - Last-Modified is never later than the response's Date (`now`, RFC 9110 §8.8.2.1); a date in
 *   If-Range matches only a *strong* Last-Modified: exactly equal and at least one second before
 *   `now` (§13.1.5, §8.8.2.2), anything else is a mismatch (whole body); an If-Modified-Since date
 *   later than `now` is ignored (treated as absent, as Apache does).
 */

/** Inclusive byte range `[start, end]`, as in `Content-Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** The request headers the planner reads (lower-case names, as Node gives them). */
export interface ConditionalHeaders {
  range?: string;
  'if-match'?: string;
  'if-none-match'?: string;
  'if-modified-since'?: string;
  'if-unmodified-since'?: string;
  'if-range'?: string;
}

export interface RangeInput {
  method: string;
  headers: ConditionalHeaders;
  /** Size of the whole representation in bytes. */
  size: number;
  /** Strong entity tag, quoted (`"abc"`). */
  etag: string;
  /** Last modification, milliseconds since the epoch (sub-second part ignored, as HTTP dates have none). */
  lastModified?: number;
  /**
   * Time of the response (milliseconds since the epoch), sent as its `Date` header: Last-Modified is
   * clamped to it, and it decides whether Last-Modified is a strong validator. A parameter so the
   * planner stays pure.
   */
  now: number;
  /** Content-Type of the representation (each part of a multipart response repeats it). */
  contentType: string;
  /** Boundary for `multipart/byteranges`; random per response, chosen by the caller to keep this pure. */
  boundary: string;
  /** Most ranges honoured in one request; more are ignored (whole body). */
  maxRanges: number;
}

/** One part of a multipart/byteranges body: its header bytes (boundary line included), then its range. */
export interface MultipartPart {
  head: string;
  range: ByteRange;
}

export interface RangePlan {
  status: 200 | 206 | 304 | 412 | 416;
  /** Response headers specific to this plan (validators, length, range, type of multipart). */
  headers: Record<string, string>;
  /** Byte ranges to send, in order: one for 200 (none if empty), one or more for 206, none otherwise. */
  ranges: ByteRange[];
  /** For multipart responses: the parts and the closing delimiter. */
  multipart?: { parts: MultipartPart[]; tail: string };
  /** Why a range was ignored or refused, for logs and error bodies. */
  note?: string;
}

/** Why `parseRange` gave up on a header. */
export type RangeParse = { kind: 'ranges'; ranges: ByteRange[] } | { kind: 'unsatisfiable' } | { kind: 'ignore'; reason: string };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Parse a `Range` header against a representation of `size` bytes (RFC 9110 §14.1.1–14.1.2):
 * clipped, satisfiable ranges in request order; `unsatisfiable` when none is; `ignore` for invalid
 * syntax or another unit.
 */
export function parseRange(header: string, size: number): RangeParse {
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'ignore', reason: 'invalid Range syntax' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'ignore', reason: 'unknown range unit' };
  const specs = header.slice(eq + 1).split(',');
  const out: ByteRange[] = [];
  let any = false;
  for (const rawSpec of specs) {
    const spec = rawSpec.trim();
    if (spec === '') continue; // RFC list syntax tolerates empty elements
    const m = RANGE_SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return { kind: 'ignore', reason: 'invalid Range syntax' };
    any = true;
    if (m[1] === '') {
      // suffix-range: the last N bytes
      const n = Number(m[2]);
      if (!Number.isSafeInteger(n)) return { kind: 'ignore', reason: 'invalid Range syntax' };
      if (n > 0 && size > 0) out.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === '' ? Infinity : Number(m[2]);
    if (!Number.isSafeInteger(first) || (last !== Infinity && !Number.isSafeInteger(last))) return { kind: 'ignore', reason: 'invalid Range syntax' };
    if (last < first) return { kind: 'ignore', reason: 'invalid Range syntax (last < first)' };
    if (first < size) out.push({ start: first, end: Math.min(last, size - 1) });
  }
  if (!any) return { kind: 'ignore', reason: 'invalid Range syntax' };
  return out.length ? { kind: 'ranges', ranges: out } : { kind: 'unsatisfiable' };
}

/** Merge overlapping or adjacent ranges when there are any; otherwise keep the client's order. */
export function coalesceRanges(ranges: ByteRange[]): ByteRange[] {
  if (ranges.length < 2) return ranges;
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let touching = false;
  for (let i = 1; i < sorted.length; i++) if (sorted[i].start <= sorted[i - 1].end + 1) touching = true;
  if (!touching) return ranges;
  const out: ByteRange[] = [{ ...sorted[0] }];
  for (let i = 1; i < sorted.length; i++) {
    const last = out[out.length - 1];
    if (sorted[i].start <= last.end + 1) last.end = Math.max(last.end, sorted[i].end);
    else out.push({ ...sorted[i] });
  }
  return out;
}

/** Entity tags of an If-Match / If-None-Match list; `*` as the single element `'*'`. */
export function parseEtagList(header: string): string[] {
  const out: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < header.length && (m = re.exec(header))) out.push(m[1]);
  return out;
}

function isWeak(tag: string): boolean {
  return tag.startsWith('W/');
}

function opaque(tag: string): string {
  return isWeak(tag) ? tag.slice(2) : tag;
}

/** Strong comparison (RFC 9110 §8.8.3.2): both strong and identical. */
function strongMatch(a: string, b: string): boolean {
  return !isWeak(a) && !isWeak(b) && a === b;
}

/** Weak comparison: opaque tags identical, weakness ignored. */
function weakMatch(a: string, b: string): boolean {
  return opaque(a) === opaque(b);
}

/** An HTTP date in milliseconds, or undefined when it does not parse (the header is then ignored). */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : undefined;
}

/** Seconds resolution, as HTTP dates carry. */
function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** `Content-Range` value of a satisfied range. */
export function contentRange(r: ByteRange, size: number): string {
  return `bytes ${r.start}-${r.end}/${size}`;
}

/** The bytes between parts of a multipart/byteranges body (RFC 9110 §14.6). */
export function multipartLayout(ranges: ByteRange[], size: number, contentType: string, boundary: string): { parts: MultipartPart[]; tail: string; length: number } {
  let length = 0;
  const parts = ranges.map((range, i) => {
    const head = `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: ${contentRange(range, size)}\r\n\r\n`;
    length += Buffer.byteLength(head) + range.end - range.start + 1;
    return { head, range };
  });
  const tail = `\r\n--${boundary}--\r\n`;
  return { parts, tail, length: length + Buffer.byteLength(tail) };
}

/**
 * Plan the response to a GET or HEAD of a representation. Pure: same input, same plan. The caller
 * adds headers that do not depend on the request (Cache-Control, Content-Type of single responses,
 * Content-Disposition) and streams `ranges`.
 */
export function planRange(input: RangeInput): RangePlan {
  const { headers: h, size, etag, contentType } = input;
  const nowS = toSeconds(input.now);
  // Never later than the response's Date (a clock skew or a future mtime must not poison caches).
  const lastModified = input.lastModified === undefined ? undefined : Math.min(input.lastModified, input.now);
  const validators: Record<string, string> = { etag, 'accept-ranges': 'bytes' };
  if (lastModified !== undefined) validators['last-modified'] = new Date(toSeconds(lastModified) * 1000).toUTCString();
  const isGetOrHead = input.method === 'GET' || input.method === 'HEAD';

  // 1–2: If-Match, else If-Unmodified-Since.
  if (h['if-match'] !== undefined) {
    const tags = parseEtagList(h['if-match']);
    if (!tags.some((t) => t === '*' || strongMatch(t, etag))) return { status: 412, headers: validators, ranges: [], note: 'If-Match did not match' };
  } else {
    const since = parseHttpDate(h['if-unmodified-since']);
    if (since !== undefined && lastModified !== undefined && toSeconds(lastModified) > toSeconds(since)) {
      return { status: 412, headers: validators, ranges: [], note: 'modified since If-Unmodified-Since' };
    }
  }
  // 3–4: If-None-Match, else If-Modified-Since (GET/HEAD only).
  if (h['if-none-match'] !== undefined) {
    const tags = parseEtagList(h['if-none-match']);
    if (tags.some((t) => t === '*' || weakMatch(t, etag))) {
      return isGetOrHead ? { status: 304, headers: validators, ranges: [] } : { status: 412, headers: validators, ranges: [], note: 'If-None-Match matched' };
    }
  } else if (isGetOrHead) {
    const since = parseHttpDate(h['if-modified-since']);
    // A date in the future is not a date this server could have sent: ignored, as if absent.
    if (since !== undefined && toSeconds(since) <= nowS && lastModified !== undefined && toSeconds(lastModified) <= toSeconds(since)) {
      return { status: 304, headers: validators, ranges: [] };
    }
  }

  const whole = (note?: string): RangePlan => ({
    status: 200,
    headers: { ...validators, 'content-length': String(size) },
    ranges: size > 0 ? [{ start: 0, end: size - 1 }] : [],
    note,
  });
  // 5: Range, subject to If-Range.
  if (h.range === undefined || !isGetOrHead) return whole();
  if (size === 0) return whole('empty representation: Range ignored');
  if (h['if-range'] !== undefined) {
    const v = h['if-range'].trim();
    let fresh: boolean;
    if (v.startsWith('"') || v.startsWith('W/')) fresh = strongMatch(v, etag);
    else {
      // A date only validates a strong Last-Modified: one at least a second older than the response
      // (otherwise a second change within the same second would go unnoticed and splice versions).
      const t = parseHttpDate(v);
      fresh = t !== undefined && lastModified !== undefined && toSeconds(t) === toSeconds(lastModified) && nowS - toSeconds(lastModified) >= 1;
    }
    if (!fresh) return whole('If-Range did not match');
  }
  const parsed = parseRange(h.range, size);
  if (parsed.kind === 'ignore') return whole(parsed.reason);
  if (parsed.kind === 'unsatisfiable') {
    return { status: 416, headers: { ...validators, 'content-range': `bytes */${size}` }, ranges: [], note: 'no satisfiable range' };
  }
  const ranges = coalesceRanges(parsed.ranges);
  if (ranges.length > input.maxRanges) return whole(`more than ${input.maxRanges} ranges`);
  if (ranges.length === 1) {
    const r = ranges[0];
    return { status: 206, headers: { ...validators, 'content-range': contentRange(r, size), 'content-length': String(r.end - r.start + 1) }, ranges };
  }
  const layout = multipartLayout(ranges, size, contentType, input.boundary);
  return {
    status: 206,
    headers: { ...validators, 'content-type': `multipart/byteranges; boundary=${input.boundary}`, 'content-length': String(layout.length) },
    ranges,
    multipart: { parts: layout.parts, tail: layout.tail },
  };
}
