/**
 * The syntax of a key under a storage root (a file name under a directory, an S3 key under a prefix),
 * checked by storage itself so that a hostile archive name never leaves its root, and so that storage
 * does not depend on the archive format (whose paths follow the same rules for other reasons).
 */
import { HexzError } from '../src/errors.js';

/** Longest key accepted, in UTF-8 bytes: 4096, PATH_MAX on Linux (S3 itself refuses keys over 1024 bytes, with its own error). */
export const MAX_KEY_BYTES = 4096;

/**
 * The key in its one spelling: `/`-separated segments relative to the root. Slashes at either end are
 * dropped (a key is always relative), and `''` or `'.'` name the root itself (returned as `''`). A NUL
 * byte, an empty, `.` or `..` segment, or more than MAX_KEY_BYTES bytes is `UNSAFE_PATH`.
 */
export function normalizeKey(input: string): string {
  if (input.includes('\0')) throw new HexzError('UNSAFE_PATH', 'path contains NUL', { path: input.replace(/\0/g, '\\0') });
  const trimmed = input.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed === '.') return '';
  for (const segment of trimmed.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new HexzError('UNSAFE_PATH', `path "${input}" has an empty, "." or ".." component`, { path: input });
    }
  }
  if (Buffer.byteLength(trimmed) > MAX_KEY_BYTES) throw new HexzError('UNSAFE_PATH', `path longer than ${MAX_KEY_BYTES} bytes`, { path: input });
  return trimmed;
}
