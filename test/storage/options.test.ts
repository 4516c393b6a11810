/** Which progress timeout applies (storage/options.ts): a backend's own setting, then the storage-wide one, then the default. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROGRESS_TIMEOUT_MS, httpOptionsOf, s3OptionsOf } from '@hexz/storage/options.js';

describe('progress timeout options', () => {
  it.each([
    [{}, DEFAULT_PROGRESS_TIMEOUT_MS],
    [{ progressTimeoutMs: 700 }, 700],
    [{ progressTimeoutMs: 700, http: { timeoutMs: 800 } }, 800], // --http-timeout's field
    [{ progressTimeoutMs: 700, http: { timeoutMs: 800, progressTimeoutMs: 900 } }, 900],
    [{ http: { progressTimeoutMs: 0 } }, DEFAULT_PROGRESS_TIMEOUT_MS],
  ])('http %j → %i ms', (opts, ms) => {
    expect(httpOptionsOf(opts).progressTimeoutMs).toBe(ms);
  });

  it.each([
    [{}, DEFAULT_PROGRESS_TIMEOUT_MS],
    [{ progressTimeoutMs: 700 }, 700],
    [{ progressTimeoutMs: 700, s3: { progressTimeoutMs: 900, endpoint: 'http://x:9000' } }, 900],
  ])('s3 %j → %i ms', (opts, ms) => {
    expect(s3OptionsOf(opts).progressTimeoutMs).toBe(ms);
  });

  it('keeps the other settings', () => {
    expect(s3OptionsOf({ s3: { endpoint: 'http://x:9000', region: 'r' } })).toMatchObject({ endpoint: 'http://x:9000', region: 'r' });
    expect(httpOptionsOf({ http: { retries: 1, headers: { a: 'b' } } })).toMatchObject({ retries: 1, headers: { a: 'b' } });
  });
});
