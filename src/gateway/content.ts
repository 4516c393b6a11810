/**
 * What a content request is about: the file entry (symlinks inside the archive followed), its strong
 * ETag and Last-Modified, remembered per archive version so a request for a big file does not walk
 * its chunk index every time (docs/gateway.md, "Validators").
 *
 * The ETag is BLAKE3 over the file's chunk ids and raw lengths: it changes exactly when the bytes do,
 * is the same for the same bytes in every version of an archive that shares the chunks (so caches
 * keep working across releases), and costs no content read. Keyed ids of encrypted archives make it
 * reveal nothing about the plaintext.
 */
import { LRUCache } from 'lru-cache';
import { HexzError } from '../errors.js';
import { normalizePath, type FileEntry } from '../format/file-table.js';
import { hashParts } from '../hash.js';
import type { Archive } from '../reader/archive.js';
import { contentTypeOf } from './content-type.js';

/** Last component of a `/`-separated path. */
function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Symlink hops followed before giving up (loops, absurd chains). */
export const MAX_SYMLINK_HOPS = 8;

/** Hex digits of the BLAKE3 digest kept in the ETag: 128 bits, collision-free for any real use. */
const ETAG_HEX = 32;

/** Bytes hashed per batch while walking the references (bounds the memory of huge files). */
const ETAG_BATCH = 36 * 16_384;

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

/** The strong ETag of a file: BLAKE3 over (chunk id ‖ raw length as u32le) of each reference. */
export async function computeEtag(archive: Archive, entry: FileEntry): Promise<string> {
  const parts: Buffer[] = [];
  let batch = Buffer.allocUnsafe(ETAG_BATCH);
  let at = 0;
  for await (const ref of archive.fileRefs(entry)) {
    if (at + 36 > batch.byteLength) {
      parts.push(batch.subarray(0, at));
      batch = Buffer.allocUnsafe(ETAG_BATCH);
      at = 0;
    }
    batch.set(ref.id, at);
    batch.writeUInt32LE(ref.raw, at + 32);
    at += 36;
  }
  parts.push(batch.subarray(0, at));
  return `"${hashParts(parts).toString('hex').slice(0, ETAG_HEX)}"`;
}

/**
 * Follow symlinks inside the archive until a non-link entry; `PATH_NOT_FOUND` for dangling links or
 * links that leave the archive, `NOT_A_FILE` for loops.
 */
export async function resolveEntry(archive: Archive, p: string): Promise<FileEntry> {
  let entry = await archive.entry(p);
  for (let hops = 0; entry.type === 'symlink'; hops++) {
    if (hops >= MAX_SYMLINK_HOPS) throw new HexzError('NOT_A_FILE', `too many levels of symbolic links: ${p}`, { path: p });
    const target = entry.target ?? '';
    // Resolved against the link's directory under a virtual "/": `..` past the top stays at "/" in
    // posix.normalize, so escapes are detected by counting instead.
    const outside = () => new HexzError('PATH_NOT_FOUND', `symbolic link ${entry.path} points outside the archive`, { path: p });
    if (target.startsWith('/')) throw outside(); // absolute targets name the host's filesystem
    const parts: string[] = entry.path.split('/').slice(0, -1);
    for (const seg of target.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (parts.length === 0) throw outside();
        parts.pop();
      } else parts.push(seg);
    }
    let next: string;
    try {
      next = normalizePath(parts.join('/'));
    } catch {
      throw outside();
    }
    const e = await archive.lookup(next);
    if (!e) throw new HexzError('PATH_NOT_FOUND', `symbolic link ${entry.path} is dangling`, { path: p });
    entry = e;
  }
  return entry;
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
  async resolve(archive: Archive, versionId: string, p: string, displayName?: string): Promise<ContentTarget> {
    const key = `${versionId}\0${p}`;
    const hit = this.lru.get(key);
    if (hit) return hit;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = (async () => {
        const entry = await resolveEntry(archive, p);
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
