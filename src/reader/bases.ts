/**
 * Finding and checking the bases of a thin archive (docs/format.md, section 5, "Base entry"). A base is
 * looked for where the delta's hint points, relative to the delta's own URL, unless an override says
 * otherwise. Only its trailer is read: its UUID and root hash must be the ones recorded.
 */
import path from 'node:path';
import { requireTrusted, checkSignature, type TrustedKeys } from '../crypto/signatures.js';
import { HexzError, isHexzError } from '../errors.js';
import { bytesEqual, toHex } from '../format/bytes.js';
import { MAX_TRAILER_SIZE } from '../format/constants.js';
import { formatUuid, type Trailer } from '../format/header.js';
import type { BaseEntry } from '../format/root.js';
import { openStorage, resolveLocation, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { Storage } from '../../storage/types.js';
import { readTrailer, trailerBytesOf } from './open.js';

/** How to find bases that are not where the delta says. */
export interface BaseResolution {
  /** Look for each base by its file name in this directory (path or URL) before the recorded place. */
  baseDir?: string;
  /** Explicit locations, keyed by base UUID or by the recorded hint. */
  baseMap?: Record<string, string>;
  /**
   * Full control (the gateway confines bases to its storage root): return the location to try, or
   * undefined to refuse. When set, it replaces the default lookup.
   */
  resolveBase?: (req: { uuid: string; hint: string; deltaUrl: string; defaultUrl: string }) => string | undefined | Promise<string | undefined>;
}

/** Places to look for a base, in order. */
export async function baseCandidates(deltaUrl: string, base: BaseEntry, opts: BaseResolution): Promise<string[]> {
  const uuid = formatUuid(base.uuid);
  const mapped = opts.baseMap?.[uuid] ?? opts.baseMap?.[base.hint];
  if (mapped) return [toStorageUrl(mapped)];
  const defaultUrl = resolveLocation(deltaUrl, base.hint);
  if (opts.resolveBase) {
    const url = await opts.resolveBase({ uuid, hint: base.hint, deltaUrl, defaultUrl });
    return url ? [url] : [];
  }
  const out: string[] = [];
  if (opts.baseDir) {
    const name = decodeURIComponent(path.posix.basename(new URL(defaultUrl, 'file:///').pathname));
    const dirUrl = toStorageUrl(opts.baseDir).replace(/\/?$/, '/');
    out.push(new URL(encodeURIComponent(name), dirUrl).href);
  }
  out.push(defaultUrl);
  return [...new Set(out)];
}

/** An opened base: its storage and the trailer read from it (which its signature covers). */
export interface OpenedBase {
  storage: Storage;
  trailer: Trailer;
  trailerBytes: Uint8Array;
}

/**
 * Open the storage of one base and check its identity. `BASE_MISSING` names every place looked;
 * `BASE_MISMATCH` names the expected UUID/root hash and what was found. With `trustedKeys`, the base
 * must also carry a valid signature by one of them (`UNSIGNED`, `UNTRUSTED_SIGNER`, `BAD_SIGNATURE`
 * naming it), checked after its identity: a base replaced by another archive is a mismatch, however
 * it is signed.
 */
export async function openBase(
  deltaUrl: string,
  base: BaseEntry,
  slot: number,
  opts: BaseResolution & { storage?: StorageOptions; wrapStorage?: (s: Storage) => Storage; keyCheck?: Uint8Array; encrypted: boolean; trustedKeys?: TrustedKeys },
): Promise<OpenedBase> {
  const uuid = formatUuid(base.uuid);
  const where = await baseCandidates(deltaUrl, base, opts);
  const context = { archive: deltaUrl, base: uuid, hint: base.hint, lookedAt: where, slot };
  for (const url of where) {
    let storage: Storage;
    try {
      storage = await openStorage(url, opts.storage);
    } catch (err) {
      if (isHexzError(err, 'ARCHIVE_NOT_FOUND')) continue;
      throw err;
    }
    try {
      const { trailer, tail } = await readTrailer(storage, MAX_TRAILER_SIZE);
      const problems: string[] = [];
      if (!bytesEqual(trailer.uuid, base.uuid)) problems.push(`UUID ${formatUuid(trailer.uuid)}`);
      if (!bytesEqual(trailer.rootHash, base.rootHash)) problems.push(`index hash ${toHex(trailer.rootHash).slice(0, 16)}…`);
      const encrypted = (trailer.flags & 1) !== 0;
      if (encrypted !== opts.encrypted) problems.push(encrypted ? 'it is encrypted' : 'it is not encrypted');
      else if (encrypted && opts.keyCheck && !bytesEqual(trailer.keyCheck, opts.keyCheck)) problems.push('it is encrypted under another key');
      if (problems.length) {
        throw new HexzError(
          'BASE_MISMATCH',
          `base ${uuid} of ${deltaUrl} was looked for at ${url}, but the archive there is not it (found ${problems.join(', ')}; expected UUID ${uuid}, index hash ${toHex(base.rootHash).slice(0, 16)}…)`,
          { ...context, url, expected: uuid, actual: formatUuid(trailer.uuid) },
        );
      }
      const trailerBytes = trailerBytesOf(tail, trailer);
      if (opts.trustedKeys) requireTrusted(checkSignature(trailerBytes, trailer, opts.trustedKeys), { archive: deltaUrl, url, base: uuid, slot });
      return { storage: opts.wrapStorage ? opts.wrapStorage(storage) : storage, trailer, trailerBytes };
    } catch (err) {
      await storage.close();
      if (isHexzError(err) && ['NOT_AN_ARCHIVE', 'TRUNCATED', 'CORRUPT', 'UNSUPPORTED_VERSION'].includes(err.code)) {
        throw new HexzError('BASE_MISMATCH', `base ${uuid} of ${deltaUrl}: the file at ${url} is not that archive (${err.message})`, { ...context, url }, { cause: err });
      }
      throw err;
    }
  }
  throw new HexzError(
    'BASE_MISSING',
    `base ${uuid} of ${deltaUrl} is missing: looked at ${where.length ? where.join(', ') : '(nowhere: lookup refused)'}`,
    { ...context, remedy: 'base-location' },
  );
}
