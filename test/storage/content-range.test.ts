/**
 * Content-Range parsing and the coverage checks of ranged replies (storage/content-range.ts), shared by
 * the HTTP and S3 backends: table tests, no I/O.
 */
import { describe, expect, it } from 'vitest';
import { parseContentRange, sliceRange, sliceTail, spanOf, type Span } from '@hexz/storage/content-range.js';

describe('parseContentRange', () => {
  it.each([
    ['bytes 0-99/1000', { start: 0, end: 99, total: 1000 }],
    ['bytes 900-999/1000', { start: 900, end: 999, total: 1000 }],
    ['BYTES  5-5/6 ', { start: 5, end: 5, total: 6 }],
    ['bytes 0-99/*', { start: 0, end: 99, total: undefined }],
    ['bytes */1000', { start: undefined, end: undefined, total: 1000 }],
    ['bytes */0', { start: undefined, end: undefined, total: 0 }],
    ['bytes 0-9007199254740990/9007199254740991', { start: 0, end: 9007199254740990, total: 9007199254740991 }],
  ])('%s', (value, expected) => {
    expect(parseContentRange(value)).toEqual(expected);
  });

  it.each([undefined, '', 'bytes', 'bytes 0-99', 'bytes 10-5/100', 'bytes */*', 'items 0-9/10', 'bytes -5-9/10', 'bytes 0-9/10, 20-29/30', 'bytes 0x1-2/3'])(
    'rejects %j',
    (value) => {
      expect(parseContentRange(value)).toBeUndefined();
    },
  );
});

describe('spanOf', () => {
  const body = (n: number) => new Uint8Array(n);
  it.each([
    [{ start: 10, end: 19, total: 100 }, 10, { start: 10, total: 100 }],
    [{ start: 0, end: 0, total: 1 }, 1, { start: 0, total: 1 }],
  ])('%j with %i bytes', (cr, n, expected) => {
    expect(spanOf(cr, body(n))).toMatchObject(expected);
  });
  it.each([
    [undefined, 10],
    [{ start: 10, end: 19, total: undefined }, 10],
    [{ start: undefined, end: undefined, total: 100 }, 0],
    [{ start: 10, end: 19, total: 100 }, 9], // body shorter than claimed
    [{ start: 10, end: 19, total: 100 }, 11],
    [{ start: 10, end: 100, total: 100 }, 91], // past the end of the object
  ])('refuses %j with %i bytes', (cr, n) => {
    expect(spanOf(cr, body(n))).toBeUndefined();
  });
});

/** A span of `total`-byte object whose bytes are their own offsets (mod 256), from `start`, `length` long. */
function span(start: number, length: number, total: number): Span {
  return { bytes: Uint8Array.from({ length }, (_, i) => (start + i) & 0xff), start, total };
}

describe('sliceRange', () => {
  it.each([
    // span start, span length, offset, length → first byte of the slice
    [0, 100, 0, 100],
    [0, 100, 10, 20],
    [50, 50, 50, 50],
    [50, 50, 99, 1],
    [50, 50, 60, 0],
  ])('span %i+%i holds %i+%i', (start, n, offset, length) => {
    const s = span(start, n, 1000);
    const got = sliceRange(s, offset, length)!;
    expect(got.byteLength).toBe(length);
    if (length) expect(got[0]).toBe(offset & 0xff);
    expect(got.buffer).toBe(s.bytes.buffer); // a view, not a copy
  });
  it.each([
    [50, 50, 49, 2],
    [50, 50, 99, 2],
    [0, 100, 0, 101],
  ])('span %i+%i does not hold %i+%i', (start, n, offset, length) => {
    expect(sliceRange(span(start, n, 1000), offset, length)).toBeUndefined();
  });
});

describe('sliceTail', () => {
  it.each([
    // span start, span length, total, asked → bytes returned
    [900, 100, 1000, 100, 100],
    [900, 100, 1000, 10, 10],
    [0, 1000, 1000, 5000, 1000], // more than the object holds: all of it
    [0, 0, 0, 10, 0], // an empty object
  ])('span %i+%i of %i, last %i', (start, n, total, asked, expected) => {
    const got = sliceTail(span(start, n, total), asked)!;
    expect(got.byteLength).toBe(expected);
    if (expected) expect(got[got.byteLength - 1]).toBe((total - 1) & 0xff);
  });
  it.each([
    [0, 101, 1000, 100], // s3rver: the first bytes for a suffix range
    [910, 90, 1000, 100], // starts too late
    [800, 100, 1000, 100], // does not reach the end
  ])('span %i+%i of %i does not hold the last %i', (start, n, total, asked) => {
    expect(sliceTail(span(start, n, total), asked)).toBeUndefined();
  });
});
