/**
 * Paths of an open archive: lookups in the sorted file table (docs/format.md, section 7.2), the one
 * symlink resolver every front end uses, directory listings with cursors, and walks.
 *
 * A lookup is a binary search in the root (which page), then in one page. Symlinks are resolved here
 * and nowhere else: `hexz cat`, the gateway and anything else that follows links get the same answer
 * for the same path (FUSE never follows links itself: the kernel does, through readlink).
 */
import { posix as posixPath } from 'node:path';
import { HexzError } from '../errors.js';
import { compareBytes } from '../format/bytes.js';
import { normalizePath, sortKey, type FileEntry } from '../format/file-table.js';
import type { OpenedArchive } from './opened.js';
import type { IndexPages } from './pages.js';

/** Symlink hops before a path counts as a loop: Linux's limit (MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40;
/** Mode of the synthetic entry of the archive's top directory. */
const ROOT_DIR_MODE = 0o755;

export interface ListOptions {
  recursive?: boolean;
  /** Opaque cursor from the previous page. */
  cursor?: string;
  limit?: number;
}

export class ArchivePaths {
  constructor(
    private readonly a: OpenedArchive,
    private readonly pages: IndexPages,
  ) {}

  /** The synthetic entry of the archive's top directory. */
  private rootEntry(): FileEntry {
    const created = Date.parse(this.a.root.metadata.created ?? '');
    return {
      path: '',
      type: 'directory',
      mode: ROOT_DIR_MODE,
      mtimeNs: BigInt(Number.isFinite(created) ? created : 0) * 1_000_000n,
      size: 0,
      logical: 0,
      firstRef: 0,
      refCount: 0,
    };
  }

  /** The entry at `path` (not following symlinks), or undefined. `""` (or `/`) is the top directory. */
  async lookup(path: string): Promise<FileEntry | undefined> {
    const p = normalizePath(path);
    if (p === '') return this.rootEntry();
    const key = sortKey(p);
    const pi = this.pages.filePageFor(key);
    if (pi < 0) return undefined;
    const page = await this.pages.filePage(pi);
    let lo = 0;
    let hi = page.keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(page.keys[mid], key);
      if (c === 0) return page.entries[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** The entry at `path`; `PATH_NOT_FOUND` if there is none. */
  async entry(path: string): Promise<FileEntry> {
    const e = await this.lookup(path);
    if (!e) throw new HexzError('PATH_NOT_FOUND', `no such path in archive: ${path}`, this.a.ctx({ path }));
    return e;
  }

  /**
   * The entry at `path` with symlinks followed in every component, like open(2): relative targets
   * resolve from the link's directory inside the archive. Errors: `PATH_NOT_FOUND` for a missing
   * component, a dangling link, or a link that leaves the archive (an absolute target, or `..` past
   * the top: it names the host's filesystem, which the archive cannot describe); `SYMLINK_LOOP` after
   * `MAX_SYMLINK_HOPS` links.
   */
  async resolve(path: string): Promise<FileEntry> {
    const requested = normalizePath(path);
    let pending = requested.split('/').filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (pending.length) {
      const name = pending.shift()!;
      const here = done.length ? `${done.join('/')}/${name}` : name;
      const e = await this.lookup(here);
      if (!e) {
        const which = here === requested ? '' : ` (${here} does not exist)`;
        throw new HexzError('PATH_NOT_FOUND', `no such path in archive: ${path}${which}`, this.a.ctx({ path }));
      }
      if (e.type !== 'symlink') {
        if (pending.length && e.type !== 'directory') throw new HexzError('NOT_A_DIRECTORY', `not a directory: ${here} (resolving ${path})`, this.a.ctx({ path }));
        done.push(name);
        continue;
      }
      if (++hops > MAX_SYMLINK_HOPS) throw new HexzError('SYMLINK_LOOP', `too many levels of symbolic links resolving ${path}`, this.a.ctx({ path }));
      const target = e.target ?? '';
      const joined = posixPath.normalize(posixPath.join(done.join('/'), target));
      if (target.startsWith('/') || joined === '..' || joined.startsWith('../')) {
        throw new HexzError('PATH_NOT_FOUND', `${here} is a symbolic link to ${target}, outside the archive`, this.a.ctx({ path }));
      }
      pending = [...joined.split('/').filter((p) => p && p !== '.'), ...pending];
      done.length = 0;
    }
    return this.entry(done.join('/'));
  }

  /** Entries whose key is in [lo, hi) and greater than `after`, in table order. */
  private async *scan(lo: Buffer, hi: Buffer | undefined, after?: Buffer): AsyncGenerator<FileEntry> {
    const start = after && compareBytes(after, lo) >= 0 ? after : lo;
    for (let pi = Math.max(0, this.pages.filePageFor(start)); pi < this.pages.filePageCount; pi++) {
      const first = this.pages.filePageKey(pi)!;
      if (hi && compareBytes(first, hi) >= 0) return;
      const page = await this.pages.filePage(pi);
      for (let i = 0; i < page.entries.length; i++) {
        const k = page.keys[i];
        if (compareBytes(k, lo) < 0 || (after && compareBytes(k, after) <= 0)) continue;
        if (hi && compareBytes(k, hi) >= 0) return;
        yield page.entries[i];
      }
    }
  }

  /**
   * One page of a directory listing, in table order (by name; recursive listings give the direct
   * children first, then deeper levels grouped by directory). `cursor` continues a previous page.
   */
  async list(dir: string, opts: ListOptions = {}): Promise<{ entries: FileEntry[]; cursor?: string }> {
    const d = normalizePath(dir);
    const e = await this.entry(d);
    if (e.type !== 'directory') throw new HexzError('NOT_A_DIRECTORY', `not a directory: ${d}`, this.a.ctx({ path: d }));
    const limit = Math.max(1, opts.limit ?? Number.MAX_SAFE_INTEGER);
    const after = opts.cursor ? sortKey(decodeCursor(opts.cursor)) : undefined;
    const ranges: Array<[Buffer, Buffer | undefined]> = [];
    if (opts.recursive && d === '') ranges.push([Buffer.alloc(0), undefined]);
    else {
      ranges.push([Buffer.from(`${d}\0`), Buffer.from(`${d}\x01`)]);
      if (opts.recursive) ranges.push([Buffer.from(`${d}/`), Buffer.from(`${d}0`)]);
    }
    const entries: FileEntry[] = [];
    for (const [lo, hi] of ranges) {
      for await (const entry of this.scan(lo, hi, after)) {
        if (entries.length === limit) return { entries, cursor: encodeCursor(entries[entries.length - 1].path) };
        entries.push(entry);
      }
    }
    return { entries };
  }

  /** Every entry of the file table in table order (a directory before its contents), a page at a time. */
  async *walk(): AsyncGenerator<FileEntry> {
    for (let pi = 0; pi < this.pages.filePageCount; pi++) yield* (await this.pages.filePage(pi)).entries;
  }

  /**
   * Entries of the file table by type. The root records only the total, so this reads the whole file
   * table (index pages only, no chunk data; cached like any page).
   */
  async entryCounts(): Promise<{ entries: number; files: number; directories: number; symlinks: number }> {
    const n = { entries: 0, files: 0, directories: 0, symlinks: 0 };
    for await (const e of this.walk()) {
      n.entries++;
      if (e.type === 'file') n.files++;
      else if (e.type === 'directory') n.directories++;
      else n.symlinks++;
    }
    return n;
  }
}

function encodeCursor(path: string): string {
  return Buffer.from(path, 'utf8').toString('base64url');
}

/**
 * The path a cursor continues after. Only the canonical encoding of a normalized path is a cursor:
 * base64url decoding is lenient (it skips junk characters and accepts padding), so anything that does
 * not encode back to exactly the same string is refused rather than guessed at.
 */
function decodeCursor(cursor: string): string {
  const invalid = () => new HexzError('INVALID_ARGUMENT', 'invalid listing cursor', { cursor: cursor.slice(0, 200) });
  const path = Buffer.from(cursor, 'base64url').toString('utf8');
  let normalized: string;
  try {
    normalized = normalizePath(path);
  } catch {
    throw invalid();
  }
  if (normalized === '' || encodeCursor(normalized) !== cursor) throw invalid();
  return normalized;
}
