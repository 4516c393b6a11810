/**
 * The archive registry: archives by name from the storage root, kept open in an LRU, revalidated
 * against the storage ETag after a short TTL (docs/gateway.md, "Archive lifecycle").
 *
 * - A request takes a *lease* on one open `Archive` and reads only through it, so a response never
 *   mixes two versions: a replaced object is noticed at the next revalidation, new requests get the
 *   new archive, and the old one is closed when its last lease is released.
 * - Storage backends pin the version they opened (file descriptors keep the old inode, S3 reads send
 *   If-Match), so a change in the middle of a request surfaces as `ARCHIVE_CHANGED`; the route then
 *   calls `invalidate` and retries once on a fresh open.
 * - Bases of thin archives are resolved only inside the storage root: a location hint that leads
 *   anywhere else is refused, which the reader reports as `BASE_MISSING`.
 * - Unknown names and archives that fail to open (no key, corrupt, base missing) are remembered for
 *   one TTL, so a flood of such requests does not become a flood of storage requests or key
 *   derivations.
 * - A storage root that does not exist (a mistyped `--storage`, a missing bucket) is
 *   `STORAGE_UNAVAILABLE` (503) everywhere: in listings, in readiness, and for any archive name,
 *   rather than an empty list or a 404 for every archive.
 */
import { LRUCache } from 'lru-cache';
import type { BlockCache } from '../../cache/block-cache.js';
import { SIGNATURE_REFUSALS, type SignatureRefusal, type TrustedKeys } from '../crypto/signatures.js';
import { openStorage, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageRoot, StorageStat } from '../../storage/types.js';
import { HexzError, isHexzError, type ErrorCode } from '../errors.js';
import { toHex } from '../format/bytes.js';
import { openArchive, type Archive } from '../reader/archive.js';
import type { KeyResolver } from './keys.js';
import { keyUnderRoot } from './containment.js';
import { ARCHIVE_SUFFIX, checkArchiveName, nameOfKey } from './names.js';

export interface ArchiveRegistryOptions {
  root: StorageRoot;
  storage?: StorageOptions;
  cache: BlockCache;
  keys: KeyResolver;
  /**
   * Serve only archives whose chain is signed by these keys (docs/gateway.md, "Signed archives"):
   * others fail `UNSIGNED`, `UNTRUSTED_SIGNER` or `BAD_SIGNATURE` (403), remembered like any lasting
   * failure. Checked at every open, so a replaced archive is checked again.
   */
  trustedKeys?: TrustedKeys;
  /** Trust an open archive this long before checking its storage ETag again (0: every request). */
  ttlMs: number;
  /** Open archives kept; the least recently used is closed beyond this (once its leases end). */
  maxOpen: number;
  /** Wrap every storage opened (metering). */
  wrapStorage?: (s: Storage) => Storage;
  /** Decode threads of the archives it opens (`OpenArchiveOptions.decodeThreads`; 0: on the calling thread). */
  decodeThreads?: number;
  /**
   * Opens and revalidations that take longer are abandoned (the next request tries afresh), so one
   * storage request that never returns cannot wedge an archive. Default: no limit.
   */
  openTimeoutMs?: number;
  /** Told about every open: `opened`, `reopened` (the object changed), `failed`. */
  onOpen?: (outcome: 'opened' | 'reopened' | 'failed') => void;
  /** Told about every open refused for its signature, with the code (`UNSIGNED`, …). */
  onRefused?: (code: SignatureRefusal) => void;
  /** Clock, for tests of the TTL. */
  now?: () => number;
}

/** One request's hold on an open archive; `release` exactly once when the response is done. */
export interface ArchiveLease {
  readonly name: string;
  readonly archive: Archive;
  /** Identity of this version's content (UUID and root hash): the key of per-version caches. */
  readonly id: string;
  release(): void;
}

/** One archive in the registry listing. */
export interface ArchiveListing {
  name: string;
  size: number;
  etag?: string;
  lastModified?: Date;
}

interface Entry {
  name: string;
  archive: Archive;
  id: string;
  stat: StorageStat;
  checkedAt: number;
  refs: number;
  retired: boolean;
  closed: boolean;
  revalidating?: Promise<Entry>;
}

function sameVersion(a: StorageStat, b: StorageStat): boolean {
  if (a.size !== b.size) return false;
  if (a.etag !== undefined || b.etag !== undefined) return a.etag === b.etag;
  return a.lastModified?.getTime() === b.lastModified?.getTime();
}

/** Codes by which a storage root says that it does not exist (file: ENOENT / ENOTDIR; S3: NoSuchBucket). */
const MISSING_ROOT: ErrorCode[] = ['ARCHIVE_NOT_FOUND', 'PATH_NOT_FOUND', 'NOT_A_DIRECTORY'];

/** `err` from listing or checking the root itself, as `STORAGE_UNAVAILABLE` when it says the root is missing. */
function rootError(root: StorageRoot, err: unknown): unknown {
  if (!isHexzError(err) || !MISSING_ROOT.includes(err.code)) return err;
  return new HexzError('STORAGE_UNAVAILABLE', 'the storage root does not exist (or is not a directory or bucket)', { backend: root.backend }, { cause: err });
}

/** Open failures that retrying within a TTL would only repeat (transient storage errors are not among them). */
const LASTING_FAILURES = new Set<ErrorCode>([
  ...SIGNATURE_REFUSALS,
  'ARCHIVE_NOT_FOUND',
  'NOT_AN_ARCHIVE',
  'TRUNCATED',
  'UNSUPPORTED_VERSION',
  'CORRUPT',
  'KEY_REQUIRED',
  'WRONG_KEY',
  'BASE_MISSING',
  'BASE_MISMATCH',
]);

/** Archives by name, opened lazily, cached, revalidated, closed when unused. */
export class ArchiveRegistry {
  private readonly lru: LRUCache<string, Entry>;
  private readonly opening = new Map<string, Promise<Entry>>();
  private readonly failed: LRUCache<string, HexzError>;
  /** Entries out of the LRU (evicted, replaced, invalidated) but still open because leases hold them. */
  private readonly retiredOpen = new Set<Entry>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ArchiveRegistryOptions) {
    this.now = opts.now ?? Date.now;
    this.lru = new LRUCache<string, Entry>({ max: opts.maxOpen, dispose: (e) => this.retire(e) });
    // Bounded so that probing random names cannot grow memory; ttl 0 disables negative caching.
    this.failed = new LRUCache<string, HexzError>({ max: 10_000, ttl: Math.max(1, opts.ttlMs), ttlAutopurge: false });
  }

  /** The storage root this registry serves. */
  get root(): StorageRoot {
    return this.opts.root;
  }

  /**
   * The archive name of a location inside the storage root (a base's URL), its key when that is not
   * an archive name, or undefined when the location lies outside the root.
   */
  nameOfUrl(url: string): string | undefined {
    const key = keyUnderRoot(this.opts.root.url, url);
    return key === undefined ? undefined : (nameOfKey(key) ?? key);
  }

  /** The archive name of a location inside the storage root, or undefined (outside it, or not an archive's key). */
  archiveNameOfUrl(url: string): string | undefined {
    const key = keyUnderRoot(this.opts.root.url, url);
    return key === undefined ? undefined : nameOfKey(key);
  }

  /** Number of archives open (including retired ones still leased). */
  get openCount(): number {
    return this.lru.size + this.retiredOpen.size;
  }

  /**
   * A lease on the current version of archive `name`. Opens it on first use; after the TTL checks
   * the storage ETag and reopens when the object changed. `ARCHIVE_NOT_FOUND` for unknown names.
   */
  async acquire(name: string): Promise<ArchiveLease> {
    if (this.closed) throw new HexzError('UNSUPPORTED', 'the gateway is shutting down');
    const n = checkArchiveName(name);
    for (let attempt = 0; ; attempt++) {
      let e = this.lru.get(n);
      if (e && this.now() - e.checkedAt >= this.opts.ttlMs) e = await this.revalidate(e);
      e ??= await this.open(n);
      // A concurrent reopen may have retired and closed it between the await and here: take the new one.
      if (!e.closed || attempt >= 3) return this.lease(e);
    }
  }

  /**
   * A lease on archive `name` without waiting, when it is open and was checked within the TTL (the
   * hot path of a warm request); undefined otherwise (then `acquire`). Never opens or revalidates.
   */
  leaseIfFresh(name: string): ArchiveLease | undefined {
    if (this.closed) return undefined;
    const e = this.lru.get(name);
    if (!e || e.closed || e.retired || this.now() - e.checkedAt >= this.opts.ttlMs) return undefined;
    return this.lease(e);
  }

  /**
   * Forget `lease`'s archive if it is still the current one (its object changed under it), so the
   * next `acquire` opens the new version.
   */
  invalidate(lease: ArchiveLease): void {
    const e = this.lru.peek(lease.name);
    if (e && e.archive === lease.archive) this.lru.delete(lease.name);
  }

  /** One page of archives in key order; may be shorter than `limit` (keys that are not archives are skipped). */
  async list(opts: { cursor?: string; limit: number; signal?: AbortSignal }): Promise<{ archives: ArchiveListing[]; cursor?: string }> {
    const archives: ArchiveListing[] = [];
    let cursor = opts.cursor || undefined;
    // A few rounds fill the page when the root holds other objects; never more than `limit` entries.
    for (let round = 0; round < 4 && archives.length < opts.limit; round++) {
      const page = await this.opts.root.list({ cursor, limit: opts.limit - archives.length, signal: opts.signal }).catch((err: unknown) => {
        throw rootError(this.opts.root, err);
      });
      for (const o of page.objects) {
        const name = nameOfKey(o.key);
        if (name) archives.push({ name, size: o.size, etag: o.etag, lastModified: o.lastModified });
      }
      cursor = page.cursor;
      if (!cursor) break;
    }
    return { archives, cursor };
  }

  /** Storage reachability, for the readiness probe; `STORAGE_UNAVAILABLE` when the root does not exist. */
  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.opts.root.check({ signal });
    } catch (err) {
      throw rootError(this.opts.root, err);
    }
  }

  /**
   * `notFound` (an archive that does not exist) unless the whole root is missing, which is
   * `STORAGE_UNAVAILABLE`: an archive cannot be told missing by storage that is not there.
   */
  private async missing(name: string, err: HexzError): Promise<HexzError> {
    try {
      await this.check();
    } catch (rootErr) {
      if (isHexzError(rootErr, 'STORAGE_UNAVAILABLE')) return rootErr;
    }
    return this.notFound(name, err);
  }

  /** Stop handing out leases; close every archive now or when its last lease ends. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.opening.values()]);
    this.lru.clear(); // dispose → retire → close when unleased
  }

  private lease(e: Entry): ArchiveLease {
    e.refs++;
    let released = false;
    return {
      name: e.name,
      archive: e.archive,
      id: e.id,
      release: () => {
        if (released) return;
        released = true;
        e.refs--;
        if (e.retired && e.refs === 0) this.closeEntry(e);
      },
    };
  }

  private retire(e: Entry): void {
    e.retired = true;
    if (e.refs === 0) this.closeEntry(e);
    else this.retiredOpen.add(e);
  }

  private closeEntry(e: Entry): void {
    if (e.closed) return;
    e.closed = true;
    this.retiredOpen.delete(e);
    void e.archive.close().catch(() => {});
  }

  private keyOf(name: string): string {
    return `${name}${ARCHIVE_SUFFIX}`;
  }

  /** Locations of bases, confined to the root: the hint's default location if it lies inside. */
  private readonly resolveBase = (req: { defaultUrl: string }): string | undefined => {
    const key = keyUnderRoot(this.opts.root.url, req.defaultUrl);
    return key === undefined ? undefined : this.opts.root.urlOf(key);
  };

  private open(name: string): Promise<Entry> {
    return this.shared(name, 'opened');
  }

  /** One open of `name` at a time; abandoned (and forgotten) after `openTimeoutMs`. */
  private shared(name: string, outcome: 'opened' | 'reopened'): Promise<Entry> {
    let p = this.opening.get(name);
    if (!p) {
      const attempt: Promise<Entry> = this.bounded(this.openEntry(name, outcome), `opening archive "${name}"`).finally(() => {
        if (this.opening.get(name) === attempt) this.opening.delete(name);
      });
      p = attempt;
      this.opening.set(name, p);
    }
    return p;
  }

  /** `p`, or `TIMEOUT` after `openTimeoutMs` (the work itself goes on and its result is dropped). */
  private bounded<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.opts.openTimeoutMs;
    if (!ms) return p;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HexzError('TIMEOUT', `${what}: no answer from storage within ${ms} ms`)), ms);
    });
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  }

  private async openEntry(name: string, outcome: 'opened' | 'reopened'): Promise<Entry> {
    const failed = this.failed.get(name);
    if (failed) throw failed;
    const url = this.opts.root.urlOf(this.keyOf(name));
    let archive: Archive;
    try {
      archive = await openArchive(url, {
        storage: this.opts.storage,
        cache: this.opts.cache,
        key: await this.opts.keys(name),
        trustedKeys: this.opts.trustedKeys,
        wrapStorage: this.opts.wrapStorage,
        resolveBase: this.resolveBase,
        decodeThreads: this.opts.decodeThreads,
      });
      // Only with its whole chain in place (docs/gateway.md, "Thin archives"): a missing base is a 502
      // on every route, never a failure halfway through a body. One trailer read per base, in the root.
      await archive.findBases().catch(async (err: unknown) => Promise.reject((await archive.close(), err)));
    } catch (err) {
      this.opts.onOpen?.('failed');
      const refused = isHexzError(err) ? SIGNATURE_REFUSALS.find((c) => c === err.code) : undefined;
      if (refused) this.opts.onRefused?.(refused);
      // ENOTDIR (a prefix of the name is a file, or the root is) also means: no such archive.
      const e = isHexzError(err) && MISSING_ROOT.includes(err.code) ? await this.missing(name, err) : isHexzError(err, 'BASE_MISSING') ? this.baseMissing(name, err) : err;
      // Failures that will not heal by retrying right away are remembered for one TTL, so that
      // requests for a missing archive, or one without a usable key (scrypt!), cost no work each time.
      if (this.opts.ttlMs > 0 && isHexzError(e) && LASTING_FAILURES.has(e.code)) this.failed.set(name, e);
      throw e;
    }
    if (!archive.encrypted && (await this.opts.keys.inKeyDir?.(name))) {
      await archive.close();
      this.opts.onOpen?.('failed');
      const e = new HexzError('NOT_ENCRYPTED', `archive ${name} is not encrypted, but the key directory has a key for it: refusing to serve a plain archive in place of an encrypted one`, { archive: name });
      if (this.opts.ttlMs > 0) this.failed.set(name, e);
      throw e;
    }
    this.opts.onOpen?.(outcome);
    const entry: Entry = {
      name,
      archive,
      id: `${archive.uuid}.${toHex(archive.rootHash).slice(0, 32)}`,
      stat: archive.storageStat,
      checkedAt: this.now(),
      refs: 0,
      retired: false,
      closed: false,
    };
    if (this.closed) {
      this.retire(entry);
      throw new HexzError('UNSUPPORTED', 'the gateway is shutting down');
    }
    this.lru.set(name, entry);
    return entry;
  }

  /** The reader's message suggests CLI flags; an HTTP client needs to know which base is missing and where it was looked for. */
  private baseMissing(name: string, err: HexzError): HexzError {
    const { base, hint } = err.context as { base?: string; hint?: string };
    return new HexzError(
      'BASE_MISSING',
      `archive "${name}" is a thin archive whose base ${base ?? '?'} (recorded as "${hint ?? '?'}") is not in the gateway's storage`,
      { archive: name, base, hint },
      { cause: err },
    );
  }

  private notFound(name: string, cause?: unknown): HexzError {
    return new HexzError('ARCHIVE_NOT_FOUND', `no archive named "${name}"`, { archive: name }, { cause });
  }

  /** Check the object's current version; reopen when it changed. Concurrent callers share one check. */
  private revalidate(e: Entry): Promise<Entry> {
    if (e.revalidating) return e.revalidating;
    const check = (async () => {
      let current: StorageStat;
      const storage = await openStorage(this.opts.root.urlOf(this.keyOf(e.name)), this.opts.storage).catch(async (err: unknown) => {
        if (isHexzError(err) && MISSING_ROOT.includes(err.code)) {
          if (this.lru.peek(e.name) === e) this.lru.delete(e.name);
          const gone = await this.missing(e.name, err);
          if (this.opts.ttlMs > 0 && gone.code === 'ARCHIVE_NOT_FOUND') this.failed.set(e.name, gone);
          throw gone;
        }
        throw err;
      });
      const metered = this.opts.wrapStorage ? this.opts.wrapStorage(storage) : storage;
      try {
        current = await metered.stat();
      } finally {
        await metered.close();
      }
      if (sameVersion(current, e.stat)) {
        e.checkedAt = this.now();
        return e;
      }
      // Replaced: open the new version; the old one closes when its last lease ends.
      if (this.lru.peek(e.name) === e) this.lru.delete(e.name);
      return this.shared(e.name, 'reopened');
    })();
    e.revalidating = this.bounded(check, `checking archive "${e.name}"`).finally(() => {
      e.revalidating = undefined;
    });
    return e.revalidating;
  }
}
