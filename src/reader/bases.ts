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
   * Other origins (`scheme://host[:port]`, or `*` for any) whose location hints may be followed. By
   * default a hint is only followed on the archive's own scheme and host.
   */
  baseHosts?: readonly string[];
  /**
   * Full control (the gateway confines bases to its storage root): return the location to try, or
   * undefined to refuse. When set, it replaces the default lookup.
   */
  resolveBase?: (req: { uuid: string; hint: string; deltaUrl: string; defaultUrl: string }) => string | undefined | Promise<string | undefined>;
}

/**
 * Where to look for a base (docs/format.md, section 5, "Base entry"; docs/cli.md, "Bases"): an explicit
 * mapping first; else the gateway's resolver; else `baseDir`, then the hint resolved against the
 * delta's URL (RFC 3986). The resolved hint is only followed when it stays on the delta's own scheme
 * and host (bucket): an archive cannot make a reader send requests to a place the user did not name.
 */
async function lookup(deltaUrl: string, base: BaseEntry, opts: BaseResolution): Promise<{ where: string[]; refused?: string }> {
  const uuid = formatUuid(base.uuid);
  const mapped = opts.baseMap?.[uuid] ?? opts.baseMap?.[base.hint];
  if (mapped) return { where: [toStorageUrl(mapped)] };
  let defaultUrl: string;
  try {
    defaultUrl = resolveLocation(deltaUrl, base.hint);
  } catch {
    return { where: [], refused: `its location hint ${JSON.stringify(base.hint)} is not a URL reference` };
  }
  if (opts.resolveBase) {
    const url = await opts.resolveBase({ uuid, hint: base.hint, deltaUrl, defaultUrl });
    return url ? { where: [url] } : { where: [], refused: 'the lookup was refused' };
  }
  const out: string[] = [];
  if (opts.baseDir) {
    const name = decodeURIComponent(path.posix.basename(new URL(defaultUrl, 'file:///').pathname));
    const dirUrl = toStorageUrl(opts.baseDir).replace(/\/?$/, '/');
    if (!/[/\0]/.test(name)) out.push(new URL(encodeURIComponent(name), dirUrl).href);
  }
  const refused = refusal(deltaUrl, defaultUrl, opts.baseHosts);
  if (!refused) out.push(defaultUrl);
  return { where: [...new Set(out)], refused };
}

/** Why the resolved hint `target` of the archive at `from` is not followed, or undefined when it is. */
function refusal(from: string, target: string, allowed: readonly string[] = []): string | undefined {
  const a = new URL(from);
  const b = new URL(target);
  if (a.protocol === 'memory:' && b.protocol === 'memory:') return undefined;
  const origin = `${b.protocol}//${b.host}`;
  if ((a.protocol !== b.protocol || a.host !== b.host) && !allowed.some((o) => o === '*' || o.toLowerCase() === origin.toLowerCase())) {
    return `its location hint points to ${b.protocol}//${b.host}, not the archive's own ${a.protocol}//${a.host} (a base elsewhere must be named by the user)`;
  }
  // A path segment holding an encoded "/" or NUL names no file (and no key a reader would build from it).
  if (b.protocol === 'file:' && b.pathname.split('/').some((seg) => /%2f|%00|%5c/i.test(seg))) {
    return `its location hint ${JSON.stringify(target)} names no file (an encoded "/" or NUL in a path segment)`;
  }
  return undefined;
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
  const { where, refused } = await lookup(deltaUrl, base, opts);
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
      // Backends that open without a request (HTTP, S3) find a missing object at the first read.
      if (isHexzError(err, 'ARCHIVE_NOT_FOUND')) continue;
      if (isHexzError(err) && ['NOT_AN_ARCHIVE', 'TRUNCATED', 'CORRUPT', 'UNSUPPORTED_VERSION'].includes(err.code)) {
        throw new HexzError('BASE_MISMATCH', `base ${uuid} of ${deltaUrl}: the file at ${url} is not that archive (${err.message})`, { ...context, url }, { cause: err });
      }
      throw err;
    }
  }
  throw new HexzError(
    'BASE_MISSING',
    `base ${uuid} of ${deltaUrl} is missing: ${where.length ? `looked at ${where.join(', ')}` : 'looked nowhere'}${refused ? `; not followed: ${refused}` : ''}`,
    { ...context, remedy: 'base-location' },
  );
}

/** Bases a reader keeps open at once; the least recently used idle one is closed beyond it. */
export const MAX_OPEN_BASES = 64;

/** What finding a base recorded: where it was, and its trailer (which its signature covers). */
export interface FoundBase {
  url: string;
  trailer: Trailer;
  trailerBytes: Uint8Array;
}

/** A base's storage, held open until `release()`. */
export interface BaseLease {
  storage: Storage;
  release(): void;
}

interface OpenSlot {
  storage: Promise<Storage>;
  users: number;
}

export type BaseOpenOptions = Parameters<typeof openBase>[3];

/**
 * The bases of an open thin archive, opened lazily: a base is looked for (and its identity checked)
 * only when a chunk it owns is read, or when everything is checked (verify, info, packing on top).
 * Listing, stat and reading chunks the archive stores itself never contact a base. At most
 * `maxOpen` are held open; the least recently used idle one is closed beyond that (opening it again
 * costs one trailer read). A base that could not be found is looked for again on the next use.
 */
export class ArchiveBases {
  private readonly open = new Map<number, OpenSlot>();
  private readonly found = new Map<number, FoundBase>();
  private closed = false;

  constructor(
    private readonly deltaUrl: string,
    private readonly entries: readonly BaseEntry[],
    private readonly opts: BaseOpenOptions,
    /** Applied to each base's storage once opened (change watch, read coalescing). */
    private readonly wrap: (s: Storage) => Storage,
    private readonly maxOpen = MAX_OPEN_BASES,
  ) {}

  get count(): number {
    return this.entries.length;
  }

  /** Where base `slot` (1-based owner) was found, once it has been opened. */
  foundAt(slot: number): FoundBase | undefined {
    return this.found.get(slot);
  }

  /** The storage of base `slot`, opened (and checked) on first use; release the lease after the read. */
  async acquire(slot: number): Promise<BaseLease> {
    if (this.closed) throw new HexzError('ABORTED', `${this.deltaUrl} is closed`, { archive: this.deltaUrl });
    if (!Number.isInteger(slot) || slot < 1 || slot > this.entries.length) {
      throw new HexzError('CORRUPT', `corrupt chunk reference: owner ${slot}, but ${this.deltaUrl} has ${this.entries.length} bases`, { archive: this.deltaUrl, structure: 'chunk reference' });
    }
    let s = this.open.get(slot);
    if (s) {
      this.open.delete(slot); // re-insert: the map's order is the LRU order
    } else {
      const opening = this.openOne(slot);
      s = { storage: opening, users: 0 };
      const slotRecord = s;
      opening.catch(() => {
        if (this.open.get(slot) === slotRecord) this.open.delete(slot);
      });
    }
    this.open.set(slot, s);
    s.users++;
    let storage: Storage;
    try {
      storage = await s.storage;
    } catch (err) {
      s.users--;
      throw err;
    }
    this.evict();
    const held = s;
    let released = false;
    return {
      storage,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        this.evict();
      },
    };
  }

  /** Read through base `slot`'s storage, holding it open meanwhile. */
  async use<T>(slot: number, fn: (storage: Storage) => Promise<T>): Promise<T> {
    const lease = await this.acquire(slot);
    try {
      return await fn(lease.storage);
    } finally {
      lease.release();
    }
  }

  /**
   * Find every base in slot order (verify, info, packing on top of this archive): `BASE_MISSING` /
   * `BASE_MISMATCH` (or a signature refusal) for the first that fails. Opens at most `maxOpen` at once.
   */
  async findAll(): Promise<FoundBase[]> {
    const out: FoundBase[] = [];
    for (let slot = 1; slot <= this.entries.length; slot++) {
      if (!this.found.has(slot)) (await this.acquire(slot)).release();
      out.push(this.found.get(slot)!);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = [...this.open.values()];
    this.open.clear();
    await Promise.all(slots.map((s) => s.storage.then((st) => st.close(), () => {})));
  }

  private async openOne(slot: number): Promise<Storage> {
    const b = await openBase(this.deltaUrl, this.entries[slot - 1], slot, this.opts);
    if (this.closed) {
      await b.storage.close();
      throw new HexzError('ABORTED', `${this.deltaUrl} is closed`, { archive: this.deltaUrl });
    }
    this.found.set(slot, { url: b.storage.url, trailer: b.trailer, trailerBytes: b.trailerBytes });
    return this.wrap(b.storage);
  }

  private evict(): void {
    if (this.open.size <= this.maxOpen) return;
    for (const [slot, s] of this.open) {
      if (this.open.size <= this.maxOpen) break;
      if (s.users > 0) continue;
      this.open.delete(slot);
      void s.storage.then((st) => st.close(), () => {});
    }
  }
}
