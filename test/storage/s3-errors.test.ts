/**
 * The mapping of AWS SDK errors to the one error table (storage/s3-client.ts `s3Error`), for errors
 * shaped as the SDK throws them. The SDK renames connection resets `TimeoutError` so that its retry
 * strategy treats them as transient, keeping the errno in `code`: they must end as STORAGE_IO, not
 * TIMEOUT (issue 22). The same resets from a real server are in stalls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { s3Error } from '@hexz/storage/s3-client.js';

/** An error as @smithy/node-http-handler rejects it, after the SDK's retries. */
function sdkError(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(String(fields.message ?? 'failed')), { $metadata: { attempts: 4 } }, fields);
}

const URL_ = 's3://bucket/ds/v1.hxz';

describe('s3Error', () => {
  it.each([
    ['ECONNRESET renamed TimeoutError', { name: 'TimeoutError', code: 'ECONNRESET', message: 'socket hang up' }, 'STORAGE_IO'],
    ['EPIPE renamed TimeoutError', { name: 'TimeoutError', code: 'EPIPE', message: 'write EPIPE' }, 'STORAGE_IO'],
    ['ECONNREFUSED', { name: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' }, 'STORAGE_IO'],
    ['a reset as the cause', { name: 'TimeoutError', cause: { code: 'ECONNRESET' }, message: 'aborted' }, 'STORAGE_IO'],
    ['the socket inactivity timeout', { name: 'TimeoutError', message: 'the request socket timed out after 60000 ms of inactivity' }, 'TIMEOUT'],
    ['a request timeout (ETIMEDOUT)', { name: 'TimeoutError', code: 'ETIMEDOUT', message: 'a request has exceeded the configured requestTimeout' }, 'TIMEOUT'],
    ['S3 RequestTimeout', { name: 'RequestTimeout', $metadata: { httpStatusCode: 400 } }, 'TIMEOUT'],
    ['503 SlowDown', { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }, 'STORAGE_IO'],
    ['NoSuchKey', { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }, 'ARCHIVE_NOT_FOUND'],
    ['NoSuchBucket', { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, 'ARCHIVE_NOT_FOUND'],
    ['AccessDenied', { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'STORAGE_DENIED'],
    ['InvalidRange', { name: 'InvalidRange', $metadata: { httpStatusCode: 416 } }, 'OUT_OF_RANGE'],
    ['PreconditionFailed', { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }, 'ARCHIVE_CHANGED'],
    ['AbortError', { name: 'AbortError' }, 'ABORTED'],
  ])('%s → %s', (_what, fields, code) => {
    const err = s3Error(sdkError(fields), 'GetObject', URL_);
    expect(err.code).toBe(code);
    expect(err.context).toMatchObject({ url: URL_, backend: 's3' });
    if (code !== 'ABORTED') expect(err.message).toContain(URL_);
  });

  it('names the errno of a dropped connection', () => {
    const err = s3Error(sdkError({ name: 'TimeoutError', code: 'ECONNRESET', message: 'socket hang up' }), 'GetObject', URL_);
    expect(err.message).toMatch(/connection dropped \(socket hang up, ECONNRESET\)/);
    expect(err.context.errno).toBe('ECONNRESET');
  });
});
