/**
 * Table tests of the pure range and conditional planner (src/gateway/range.ts) against RFC 9110:
 * open, suffix and closed ranges, clipping past the end, overlapping and unsorted multi-ranges,
 * invalid syntax and units, unsatisfiable sets, If-Range, and the precondition order.
 */
import { describe, expect, it } from 'vitest';
import { coalesceRanges, multipartLayout, parseEtagList, parseRange, planRange, type ConditionalHeaders, type RangeInput } from '@hexz/src/gateway/range.js';
import { planResponse } from '@hexz/src/gateway/response.js';

const SIZE = 1000;
const ETAG = '"abc123"';
const MTIME = Date.parse('2026-01-01T00:00:00Z') + 456; // sub-second part must be ignored
const BEFORE = 'Wed, 31 Dec 2025 23:59:59 GMT';
const AT = 'Thu, 01 Jan 2026 00:00:00 GMT';
const AFTER = 'Thu, 01 Jan 2026 00:00:01 GMT';
/** The response's time: well after the Last-Modified, so it is a strong validator. */
const NOW = Date.parse('2026-06-01T12:00:00Z');

function plan(headers: ConditionalHeaders, extra: Partial<RangeInput> = {}) {
  return planRange({ method: 'GET', headers, size: SIZE, etag: ETAG, lastModified: MTIME, contentType: 'text/plain', boundary: 'BOUNDARY', maxRanges: 4, now: NOW, ...extra });
}

describe('parseRange', () => {
  const cases: Array<[string, string, number, unknown]> = [
    ['closed range', 'bytes=0-99', SIZE, { kind: 'ranges', ranges: [{ start: 0, end: 99 }] }],
    ['single byte', 'bytes=5-5', SIZE, { kind: 'ranges', ranges: [{ start: 5, end: 5 }] }],
    ['open range', 'bytes=900-', SIZE, { kind: 'ranges', ranges: [{ start: 900, end: 999 }] }],
    ['suffix range', 'bytes=-100', SIZE, { kind: 'ranges', ranges: [{ start: 900, end: 999 }] }],
    ['suffix longer than the file', 'bytes=-5000', SIZE, { kind: 'ranges', ranges: [{ start: 0, end: 999 }] }],
    ['last clipped to the end', 'bytes=990-2000', SIZE, { kind: 'ranges', ranges: [{ start: 990, end: 999 }] }],
    ['last byte', 'bytes=999-999', SIZE, { kind: 'ranges', ranges: [{ start: 999, end: 999 }] }],
    ['whitespace and case', ' Bytes = 0-1 , 5-6 ', SIZE, { kind: 'ranges', ranges: [{ start: 0, end: 1 }, { start: 5, end: 6 }] }],
    ['empty list elements tolerated', 'bytes=0-1,,5-6', SIZE, { kind: 'ranges', ranges: [{ start: 0, end: 1 }, { start: 5, end: 6 }] }],
    ['unsatisfiable ones dropped', 'bytes=0-1,5000-6000', SIZE, { kind: 'ranges', ranges: [{ start: 0, end: 1 }] }],
    ['first at the size', 'bytes=1000-', SIZE, { kind: 'unsatisfiable' }],
    ['first past the size', 'bytes=5000-6000', SIZE, { kind: 'unsatisfiable' }],
    ['zero suffix', 'bytes=-0', SIZE, { kind: 'unsatisfiable' }],
    ['suffix of an empty file', 'bytes=-10', 0, { kind: 'unsatisfiable' }],
    ['last < first', 'bytes=10-5', SIZE, { kind: 'ignore', reason: 'invalid Range syntax (last < first)' }],
    ['no dash', 'bytes=10', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['only a dash', 'bytes=-', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['negative number', 'bytes=-5-10', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['garbage', 'bytes=a-b', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['no equals sign', 'bytes 0-1', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['empty set', 'bytes=', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
    ['another unit', 'items=0-5', SIZE, { kind: 'ignore', reason: 'unknown range unit' }],
    ['absurdly large number', 'bytes=0-99999999999999999999999', SIZE, { kind: 'ignore', reason: 'invalid Range syntax' }],
  ];
  it.each(cases)('%s: %s', (_name, header, size, want) => {
    expect(parseRange(header, size)).toEqual(want);
  });
});

describe('coalesceRanges', () => {
  const cases: Array<[string, Array<[number, number]>, Array<[number, number]>]> = [
    ['disjoint keep the requested order', [[500, 599], [0, 99]], [[500, 599], [0, 99]]],
    ['overlapping are sorted and merged', [[50, 150], [0, 99], [400, 499]], [[0, 150], [400, 499]]],
    ['adjacent are merged', [[0, 99], [100, 199]], [[0, 199]]],
    ['duplicates collapse (no amplification)', [[0, 999], [0, 999], [0, 999]], [[0, 999]]],
    ['contained range disappears', [[0, 999], [10, 20]], [[0, 999]]],
  ];
  it.each(cases)('%s', (_name, input, want) => {
    const r = coalesceRanges(input.map(([start, end]) => ({ start, end })));
    expect(r.map((x) => [x.start, x.end])).toEqual(want);
  });
});

describe('parseEtagList', () => {
  it.each([
    ['"a"', ['"a"']],
    ['"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']],
    ['*', ['*']],
    ['""', ['""']],
    ['garbage', []],
  ])('%s', (header, want) => expect(parseEtagList(header)).toEqual(want));
});

describe('planRange', () => {
  type Row = [name: string, headers: ConditionalHeaders, status: number, ranges: Array<[number, number]>, extra?: Partial<RangeInput>, contentRange?: string];
  const rows: Row[] = [
    // plain
    ['no Range: whole body', {}, 200, [[0, 999]]],
    ['single range', { range: 'bytes=0-99' }, 206, [[0, 99]], undefined, 'bytes 0-99/1000'],
    ['open range', { range: 'bytes=100-' }, 206, [[100, 999]], undefined, 'bytes 100-999/1000'],
    ['suffix range', { range: 'bytes=-1' }, 206, [[999, 999]], undefined, 'bytes 999-999/1000'],
    ['range past the end is clipped', { range: 'bytes=500-5000' }, 206, [[500, 999]], undefined, 'bytes 500-999/1000'],
    ['whole file as a range', { range: 'bytes=0-' }, 206, [[0, 999]], undefined, 'bytes 0-999/1000'],
    ['unsatisfiable', { range: 'bytes=1000-1001' }, 416, [], undefined, 'bytes */1000'],
    ['all parts unsatisfiable', { range: 'bytes=2000-,3000-3001,-0' }, 416, [], undefined, 'bytes */1000'],
    ['invalid syntax ignored', { range: 'bytes=9-1' }, 200, [[0, 999]]],
    ['unknown unit ignored', { range: 'lines=1-2' }, 200, [[0, 999]]],
    ['multi-range', { range: 'bytes=0-9,500-509' }, 206, [[0, 9], [500, 509]]],
    ['unsorted multi-range keeps order', { range: 'bytes=500-509,0-9' }, 206, [[500, 509], [0, 9]]],
    ['overlapping multi-range merged to one', { range: 'bytes=0-99,50-149' }, 206, [[0, 149]], undefined, 'bytes 0-149/1000'],
    ['overlapping and disjoint', { range: 'bytes=600-700,0-99,50-149' }, 206, [[0, 149], [600, 700]]],
    ['too many ranges: whole body', { range: 'bytes=0-0,2-2,4-4,6-6,8-8' }, 200, [[0, 999]]],
    ['as many as allowed', { range: 'bytes=0-0,2-2,4-4,6-6' }, 206, [[0, 0], [2, 2], [4, 4], [6, 6]]],
    ['empty file ignores Range', { range: 'bytes=0-' }, 200, [], { size: 0 }],
    ['empty file, no Range', {}, 200, [], { size: 0 }],
    ['HEAD gets the GET headers', { range: 'bytes=0-9' }, 206, [[0, 9]], { method: 'HEAD' }, 'bytes 0-9/1000'],
    ['other methods ignore Range', { range: 'bytes=0-9' }, 200, [[0, 999]], { method: 'POST' }],
    // If-Range
    ['If-Range matching ETag', { range: 'bytes=0-9', 'if-range': ETAG }, 206, [[0, 9]]],
    ['If-Range other ETag: whole body', { range: 'bytes=0-9', 'if-range': '"other"' }, 200, [[0, 999]]],
    ['If-Range weak ETag never matches', { range: 'bytes=0-9', 'if-range': `W/${ETAG}` }, 200, [[0, 999]]],
    ['If-Range equal date', { range: 'bytes=0-9', 'if-range': AT }, 206, [[0, 9]]],
    ['If-Range older date: whole body', { range: 'bytes=0-9', 'if-range': BEFORE }, 200, [[0, 999]]],
    ['If-Range later date: whole body (only an exact date matches)', { range: 'bytes=0-9', 'if-range': AFTER }, 200, [[0, 999]]],
    // A Last-Modified less than a second before the response is weak (RFC 9110 §8.8.2.2): no date matches it.
    ['If-Range equal date, Last-Modified in the same second as now: weak, whole body', { range: 'bytes=0-9', 'if-range': AT }, 200, [[0, 999]], { now: MTIME + 300 }],
    ['If-Range equal date, Last-Modified one second before now: strong', { range: 'bytes=0-9', 'if-range': AT }, 206, [[0, 9]], { now: MTIME - 456 + 1000 }],
    ['If-Range with the ETag is unaffected by a weak Last-Modified', { range: 'bytes=0-9', 'if-range': ETAG }, 206, [[0, 9]], { now: MTIME }],
    ['If-Range without Range is ignored', { 'if-range': '"other"' }, 200, [[0, 999]]],
    ['If-Range match, unsatisfiable range', { range: 'bytes=5000-', 'if-range': ETAG }, 416, []],
    ['If-Range mismatch beats unsatisfiable', { range: 'bytes=5000-', 'if-range': '"x"' }, 200, [[0, 999]]],
    // If-Match / If-Unmodified-Since
    ['If-Match same', { 'if-match': ETAG, range: 'bytes=0-9' }, 206, [[0, 9]]],
    ['If-Match in a list', { 'if-match': `"x", ${ETAG}` }, 200, [[0, 999]]],
    ['If-Match star', { 'if-match': '*' }, 200, [[0, 999]]],
    ['If-Match other', { 'if-match': '"x"' }, 412, []],
    ['If-Match weak never matches', { 'if-match': `W/${ETAG}` }, 412, []],
    ['If-Match failure beats Range', { 'if-match': '"x"', range: 'bytes=0-9' }, 412, []],
    ['If-Unmodified-Since later', { 'if-unmodified-since': AFTER }, 200, [[0, 999]]],
    ['If-Unmodified-Since equal', { 'if-unmodified-since': AT }, 200, [[0, 999]]],
    ['If-Unmodified-Since earlier', { 'if-unmodified-since': BEFORE }, 412, []],
    ['If-Unmodified-Since invalid date ignored', { 'if-unmodified-since': 'yesterday' }, 200, [[0, 999]]],
    ['If-Match wins over If-Unmodified-Since', { 'if-match': ETAG, 'if-unmodified-since': BEFORE }, 200, [[0, 999]]],
    // If-None-Match / If-Modified-Since
    ['If-None-Match same', { 'if-none-match': ETAG }, 304, []],
    ['If-None-Match weak compare', { 'if-none-match': `W/${ETAG}` }, 304, []],
    ['If-None-Match star', { 'if-none-match': '*' }, 304, []],
    ['If-None-Match other', { 'if-none-match': '"x"', range: 'bytes=0-9' }, 206, [[0, 9]]],
    ['If-None-Match beats Range', { 'if-none-match': ETAG, range: 'bytes=0-9' }, 304, []],
    ['If-None-Match on HEAD', { 'if-none-match': ETAG }, 304, [], { method: 'HEAD' }],
    ['If-None-Match on other methods: 412', { 'if-none-match': ETAG }, 412, [], { method: 'POST' }],
    ['If-Modified-Since equal', { 'if-modified-since': AT }, 304, []],
    ['If-Modified-Since later', { 'if-modified-since': AFTER }, 304, []],
    ['If-Modified-Since earlier', { 'if-modified-since': BEFORE }, 200, [[0, 999]]],
    ['If-Modified-Since invalid ignored', { 'if-modified-since': 'soon' }, 200, [[0, 999]]],
    ['If-Modified-Since in the future ignored', { 'if-modified-since': 'Tue, 01 Jun 2027 00:00:00 GMT' }, 200, [[0, 999]]],
    ['If-Modified-Since equal to now still applies', { 'if-modified-since': 'Mon, 01 Jun 2026 12:00:00 GMT' }, 304, []],
    ['If-None-Match mismatch overrides If-Modified-Since', { 'if-none-match': '"x"', 'if-modified-since': AFTER }, 200, [[0, 999]]],
    ['If-Match ok then If-None-Match match', { 'if-match': ETAG, 'if-none-match': ETAG }, 304, []],
    ['If-Match fail beats If-None-Match', { 'if-match': '"x"', 'if-none-match': ETAG }, 412, []],
    ['If-Unmodified-Since fail beats If-Modified-Since', { 'if-unmodified-since': BEFORE, 'if-modified-since': AFTER }, 412, []],
    ['no Last-Modified: date conditions ignored', { 'if-modified-since': AFTER, 'if-unmodified-since': BEFORE }, 200, [[0, 999]], { lastModified: undefined }],
  ];
  it.each(rows)('%s', (_name, headers, status, ranges, extra, contentRange) => {
    const p = plan(headers, extra);
    expect(p.status).toBe(status);
    expect(p.ranges.map((r) => [r.start, r.end])).toEqual(ranges);
    expect(p.headers.etag).toBe(ETAG);
    expect(p.headers['accept-ranges']).toBe('bytes');
    if (contentRange) expect(p.headers['content-range']).toBe(contentRange);
    if (status === 200) expect(p.headers['content-length']).toBe(String(extra?.size ?? SIZE));
    if (status === 206 && ranges.length === 1) expect(p.headers['content-length']).toBe(String(ranges[0][1] - ranges[0][0] + 1));
    if (status === 304 || status === 412) expect(p.headers['content-length']).toBeUndefined();
  });

  it('Last-Modified is the mtime in seconds', () => {
    expect(plan({}).headers['last-modified']).toBe(AT);
  });

  it('Last-Modified is never later than the response (a future mtime is clamped to now)', () => {
    const p = plan({ 'if-modified-since': AT }, { lastModified: NOW + 86_400_000 });
    expect(p.headers['last-modified']).toBe(new Date(NOW).toUTCString());
    expect(p.status).toBe(200);
  });

  it('multipart: Content-Type, exact Content-Length, parts in order', () => {
    const p = plan({ range: 'bytes=500-509,0-9' });
    expect(p.headers['content-type']).toBe('multipart/byteranges; boundary=BOUNDARY');
    expect(p.multipart!.parts.map((x) => x.head)).toEqual([
      '--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 500-509/1000\r\n\r\n',
      '\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/1000\r\n\r\n',
    ]);
    expect(p.multipart!.tail).toBe('\r\n--BOUNDARY--\r\n');
    const bodyLength = p.multipart!.parts.reduce((n, x) => n + Buffer.byteLength(x.head) + x.range.end - x.range.start + 1, 0) + Buffer.byteLength(p.multipart!.tail);
    expect(p.headers['content-length']).toBe(String(bodyLength));
    expect(multipartLayout(p.ranges, SIZE, 'text/plain', 'BOUNDARY').length).toBe(bodyLength);
  });

  it('is pure: same input, same plan', () => {
    const h = { range: 'bytes=0-9,20-29', 'if-none-match': '"x"' };
    expect(plan(h)).toEqual(plan(h));
  });
});

describe('planResponse: status, headers and body kind of a content answer', () => {
  const BASE = { 'content-type': 'text/plain', 'cache-control': 'no-cache', 'content-disposition': 'attachment; filename="x.txt"', 'x-content-type-options': 'nosniff' };
  const respond = (headers: ConditionalHeaders, extra: Partial<RangeInput> = {}) =>
    planResponse({ method: 'GET', headers, size: SIZE, etag: ETAG, lastModified: MTIME, contentType: 'text/plain', boundary: 'BOUNDARY', maxRanges: 4, now: NOW, base: BASE, name: 'x.txt', ...extra });
  const date = new Date(NOW).toUTCString();

  const cases: Array<[string, ConditionalHeaders, Partial<RangeInput>, number, string]> = [
    ['whole file', {}, {}, 200, 'bytes'],
    ['one range', { range: 'bytes=0-9' }, {}, 206, 'bytes'],
    ['several ranges', { range: 'bytes=0-9,20-29' }, {}, 206, 'bytes'],
    ['HEAD: the same status, no body', { range: 'bytes=0-9' }, { method: 'HEAD' }, 206, 'none'],
    ['an empty file', {}, { size: 0 }, 200, 'none'],
    ['If-None-Match hit', { 'if-none-match': ETAG }, {}, 304, 'none'],
    ['If-Match miss', { 'if-match': '"other"' }, {}, 412, 'error'],
    ['unsatisfiable range', { range: 'bytes=5000-' }, {}, 416, 'error'],
  ];
  it.each(cases)('%s → %i with a %s body', (_what, headers, extra, status, kind) => {
    const p = respond(headers, extra);
    expect(p.status).toBe(status);
    expect(p.body.kind).toBe(kind);
    expect(p.headers.date).toBe(date);
    expect(p.headers.etag).toBe(ETAG);
  });

  it('a 304 keeps the validators and Cache-Control but drops what describes a body', () => {
    const p = respond({ 'if-none-match': ETAG });
    expect(p.headers['cache-control']).toBe('no-cache');
    expect(p.headers['last-modified']).toBeDefined();
    for (const h of ['content-type', 'content-length', 'content-disposition']) expect(p.headers[h]).toBeUndefined();
  });

  it('412 and 416 are the JSON error of their code, with the validators (and bytes */size for 416)', () => {
    const pre = respond({ 'if-match': '"other"' });
    expect(pre.body).toMatchObject({ kind: 'error', code: 'PRECONDITION_FAILED' });
    expect(pre.headers['content-type']).toBeUndefined(); // the error body sets its own
    const out = respond({ range: 'bytes=5000-' });
    expect(out.body).toMatchObject({ kind: 'error', code: 'OUT_OF_RANGE', message: `range not satisfiable: x.txt has ${SIZE} bytes` });
    expect(out.headers['content-range']).toBe(`bytes */${SIZE}`);
  });

  it('GET and HEAD of the same request differ only in the body', () => {
    const get = respond({ range: 'bytes=0-9,20-29' });
    const head = respond({ range: 'bytes=0-9,20-29' }, { method: 'HEAD' });
    expect(head.headers).toEqual(get.headers);
    expect(get.body).toMatchObject({ kind: 'bytes', ranges: [{ start: 0, end: 9 }, { start: 20, end: 29 }] });
  });
});
