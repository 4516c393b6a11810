/**
 * Archive locations in the world-readable mount table (fsname), the log lines and the ready file carry
 * no secrets: `user:password@` and query strings (presigned S3 URLs) are removed.
 */
import { describe, expect, it } from 'vitest';
import { fuseMountOptions, redactLocation, redactUrls } from '@hexz/fuse/mount.js';

const PRESIGNED =
  'https://bucket.s3.eu-west-1.amazonaws.com/ds/v1.hxz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Feu-west-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=TOKENSECRET&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeefsignature';

describe('redacting archive locations', () => {
  it('drops the query string of a presigned S3 URL', () => {
    expect(redactLocation(PRESIGNED)).toBe('https://bucket.s3.eu-west-1.amazonaws.com/ds/v1.hxz');
  });

  it('drops user:password@, a query and a fragment from any URL', () => {
    expect(redactLocation('https://alice:s3cr%40t@example.org:8443/d/a.hxz?token=abc#x')).toBe('https://example.org:8443/d/a.hxz');
    expect(redactLocation('http://alice@example.org/a.hxz')).toBe('http://example.org/a.hxz');
    expect(redactLocation('https://a:p@ss@example.org?x=1')).toBe('https://example.org');
    expect(redactLocation('s3://bucket/ds/a.hxz?versionId=3')).toBe('s3://bucket/ds/a.hxz');
  });

  it('leaves plain URLs and local paths alone', () => {
    for (const s of ['s3://bucket/ds/a.hxz', 's3://bucket/with space/a.hxz', 'https://example.org/a.hxz', '/data/with space/a.hxz', 'relative/a.hxz', 'file:///tmp/a.hxz']) {
      expect(redactLocation(s)).toBe(s);
    }
  });

  it('redacts every URL inside a log line or error message', () => {
    const line = redactUrls(`hexz: error: read /a: GET ${PRESIGNED} failed (https://bob:hunter2@example.org/x.hxz?k=v answered 403)`);
    expect(line).not.toMatch(/Signature|Credential|TOKENSECRET|hunter2|bob|k=v/);
    expect(line).toContain('https://bucket.s3.eu-west-1.amazonaws.com/ds/v1.hxz');
    expect(line).toContain('https://example.org/x.hxz');
  });

  it('the fsname of the mount table is built from the redacted location, whatever label it is given', () => {
    const fsname = fuseMountOptions({ label: PRESIGNED }).find((o) => o.startsWith('fsname='));
    expect(fsname).toBe('fsname=hexz:https://bucket.s3.eu-west-1.amazonaws.com/ds/v1.hxz');
  });
});
