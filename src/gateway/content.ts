/**
 * What a content request is about: the file entry (symlinks inside the archive followed by the
 * reader's one resolver), its strong ETag and Last-Modified, remembered per archive version
 * (docs/gateway.md, "Validators").
 *
 * The ETag is the file's content digest (src/format/content-digest.ts): it changes exactly when the
 * bytes do, is the same for the same bytes in every version of an archive that shares the chunks (so
 * caches keep working across releases), and costs no content read. Keyed ids of encrypted archives
 * make it reveal nothing about the plaintext.
 */
import { LRUCache } from 'lru-cache';
import { HexzError } from '../errors.js';
import { toHex } from '../format/bytes.js';
import type { FileEntry } from '../format/file-table.js';
import type { Archive } from '../reader/archive.js';
import { contentTypeOf } from './content-type.js';

/** Last component of a `/`-separated path. */
function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Hex digits of the content digest kept in the ETag: 128 bits, collision-free for any real use. */
const ETAG_HEX = 32;

/** A resolved content target. */
export interface ContentTarget {
  entry: FileEntry;
  /** Strong ETag, quoted. */
  etag: string;
  /** The file's modification time in milliseconds (see `lastModifiedOf` for the Last-Modified header). */
  lastModified: number;
  contentType: string;
  /** File name for Content-Disposition. */
  fileName: string;
}

/** The strong ETag of a file: its content digest (Archive.contentDigest), truncated to 128 bits. */
export async function computeEtag(archive: Archive, entry: FileEntry): Promise<string> {
  return `"${toHex(await archive.contentDigest(entry)).slice(0, ETAG_HEX)}"`;
}

const versionTimes = new WeakMap<Archive, number>();

/**
 * When this version of the archive came to be, in milliseconds: the later of its `created` metadata
 * and its storage object's last modification (upload or write time); 0 when neither is known.
 */
export function archiveVersionTime(archive: Archive): number {
  let t = versionTimes.get(archive);
  if (t === undefined) {
    const created = Date.parse(archive.root.metadata.created ?? '');
    const stored = archive.storageStat.lastModified?.getTime();
    t = Math.max(0, Number.isFinite(created) ? created : 0, stored !== undefined && Number.isFinite(stored) ? stored : 0);
    versionTimes.set(archive, t);
  }
  return t;
}

/**
 * Last-Modified of a file served from `archive`: the later of the file's mtime and the archive
 * version's time. File mtimes alone are not enough: an archive replaced by another whose file has
 * the same mtime but other bytes would keep its date, and a date-based `If-Range` would splice the
 * two versions (or `If-Modified-Since` answer a stale 304). With the version time in it, replacing
 * the archive moves the date forward.
 */
export function lastModifiedOf(archive: Archive, target: ContentTarget): number {
  return Math.max(target.lastModified, archiveVersionTime(archive));
}

/** Cache of content targets per (archive version, path); in-flight computations shared. */
export class ContentIndex {
  private readonly lru: LRUCache<string, ContentTarget>;
  private readonly inflight = new Map<string, Promise<ContentTarget>>();

  constructor(maxEntries: number) {
    this.lru = new LRUCache<string, ContentTarget>({ max: maxEntries });
  }

  /**
   * The target at `p` in the archive version `versionId`. Content-Type comes from the name of the
   * file finally reached (a link `GUIDE` to `docs/guide.md` is Markdown); the download name is the
   * last component of the path requested (a link `link.txt` to `text.txt` downloads as `link.txt`,
   * the name the user asked for). `displayName` overrides both (single-file archives keep their
   * original name in metadata).
   */
  /** The target at `p` in version `versionId` if it was resolved before (the hot path); never resolves. */
  cached(versionId: string, p: string): ContentTarget | undefined {
    return this.lru.get(`${versionId}\0${p}`);
  }

  async resolve(archive: Archive, versionId: string, p: string, displayName?: string): Promise<ContentTarget> {
    const key = `${versionId}\0${p}`;
    const hit = this.lru.get(key);
    if (hit) return hit;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = (async () => {
        const entry = await archive.resolve(p);
        if (entry.type !== 'file') throw new HexzError('NOT_A_FILE', `not a regular file: ${p || '/'}`, { path: p });
        const target: ContentTarget = {
          entry,
          etag: await computeEtag(archive, entry),
          lastModified: Number(entry.mtimeNs / 1_000_000n),
          contentType: contentTypeOf(displayName ?? baseName(entry.path)),
          fileName: displayName ?? baseName(p),
        };
        this.lru.set(key, target);
        return target;
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }
}
