/**
 * Version pinning (storage/pinning.ts), shared by the HTTP and S3 backends: the first version seen is
 * pinned, any other one is ARCHIVE_CHANGED. Table tests, no I/O.
 */
import { describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { httpDate, VersionPin, type Version } from '@hexz/storage/pinning.js';

const T1 = new Date('2024-01-01T00:00:00Z');
const T2 = new Date('2024-01-01T00:00:01Z');

function changed(first: Version, later: Version[]): string | undefined {
  const pin = new VersionPin('https://example.org/a.hxz', 'http');
  pin.observe(first);
  try {
    for (const v of later) pin.observe(v);
  } catch (err) {
    return (err as HexzError).code;
  }
  return undefined;
}

describe('VersionPin', () => {
  it.each<[string, Version, Version[], string | undefined]>([
    ['the same ETag and size', { etag: '"a"', size: 10 }, [{ etag: '"a"', size: 10 }], undefined],
    ['another ETag', { etag: '"a"', size: 10 }, [{ etag: '"b"', size: 10 }], 'ARCHIVE_CHANGED'],
    ['another size', { etag: '"a"', size: 10 }, [{ etag: '"a"', size: 11 }], 'ARCHIVE_CHANGED'],
    ['another size, no ETags at all', { size: 10 }, [{ size: 11 }], 'ARCHIVE_CHANGED'],
    ['a reply without validators', { etag: '"a"', size: 10 }, [{}], undefined],
    ['another Last-Modified without ETags', { size: 10, lastModified: T1 }, [{ size: 10, lastModified: T2 }], 'ARCHIVE_CHANGED'],
    ['another Last-Modified with equal ETags', { etag: '"a"', size: 10, lastModified: T1 }, [{ etag: '"a"', size: 10, lastModified: T2 }], undefined],
    ['the same Last-Modified, another Date object', { size: 10, lastModified: T1 }, [{ size: 10, lastModified: new Date(T1) }], undefined],
    // A first reply without validators (a 416, a bare proxy) pins what later replies add.
    ['an ETag added later, then changed', { size: 10 }, [{ etag: '"a"' }, { etag: '"b"' }], 'ARCHIVE_CHANGED'],
    ['a size added later, then changed', { etag: '"a"' }, [{ etag: '"a"', size: 10 }, { etag: '"a"', size: 12 }], 'ARCHIVE_CHANGED'],
  ])('%s', (_what, first, later, expected) => {
    expect(changed(first, later)).toBe(expected);
  });

  it('reports what changed and keeps the first version', () => {
    const pin = new VersionPin('s3://b/k.hxz', 's3');
    expect(pin.stat).toBeUndefined();
    pin.observe({ etag: '"a"' });
    expect(pin.stat).toBeUndefined(); // no size yet
    pin.observe({ size: 5, lastModified: T1 });
    expect(pin.stat).toEqual({ size: 5, etag: '"a"', lastModified: T1 });
    let err: HexzError | undefined;
    try {
      pin.observe({ etag: '"b"', size: 6 });
    } catch (e) {
      err = e as HexzError;
    }
    expect(err?.message).toBe('s3://b/k.hxz changed while it was being read (ETag "a" → "b", size 5 → 6)');
    expect(err?.context).toEqual({ url: 's3://b/k.hxz', backend: 's3', expected: '"a"', actual: '"b"' });
    expect(pin.etag).toBe('"a"');
    expect(pin.size).toBe(5);
  });
});

describe('httpDate', () => {
  it.each([
    ['Mon, 01 Jan 2024 00:00:00 GMT', T1.getTime()],
    [undefined, undefined],
    ['', undefined],
    ['yesterday', undefined],
  ])('%j', (value, ms) => {
    expect(httpDate(value)?.getTime()).toBe(ms);
  });
});
