/** The key syntax of storage roots (storage/keys.ts): table tests, no I/O. */
import { describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { MAX_KEY_BYTES, normalizeKey } from '@hexz/storage/keys.js';

describe('normalizeKey', () => {
  it.each([
    ['a.hxz', 'a.hxz'],
    ['team/ds/v1.hxz', 'team/ds/v1.hxz'],
    ['/a.hxz', 'a.hxz'],
    ['a/', 'a'],
    ['//a//', 'a'],
    ['', ''],
    ['.', ''],
    ['/', ''],
    ['a b%c.hxz', 'a b%c.hxz'],
    ['..a/b..', '..a/b..'],
    ['x'.repeat(MAX_KEY_BYTES), 'x'.repeat(MAX_KEY_BYTES)],
  ])('%j → %j', (input, expected) => {
    expect(normalizeKey(input)).toBe(expected);
  });

  it.each(['..', '../a', 'a/..', 'a/../b', './a', 'a/./b', 'a//b', 'a\0b', 'x'.repeat(MAX_KEY_BYTES + 1), 'é'.repeat(MAX_KEY_BYTES / 2 + 1)])('refuses %j with UNSAFE_PATH', (input) => {
    let err: unknown;
    try {
      normalizeKey(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HexzError);
    expect((err as HexzError).code).toBe('UNSAFE_PATH');
  });
});
