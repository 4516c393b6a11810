/**
 * `extract`: restore files, directories and symlinks (modes, mtimes) from an archive into a local
 * directory.
 *
 * Safety: archive paths are normalised by the reader (no `..`, no absolute paths). On top of that,
 * nothing is ever written through a symlink: symlinks from the archive are created last, files are
 * opened with O_NOFOLLOW, and every parent directory is checked to resolve inside the destination. A
 * hostile archive (symlink `a` → `/etc` plus a file `a/passwd`) therefore cannot write outside it.
 * Existing files are never replaced without `force`, and that is checked before anything is written.
 *
 * Before anything is written, the selected entries must also form a tree (src/reader/tree.ts): an
 * entry below a symlink is `UNSAFE_PATH`, below a regular file or a directory without an entry
 * `CORRUPT`. Directories are created one level at a time from the nearest existing ancestor (Node's
 * recursive mkdir never returns on some pseudo-filesystems, e.g. below /proc). Modification times are
 * restored to the microsecond (what `utimes` offers from Node; the archive stores nanoseconds).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, toHexzError } from './errors.js';
import { sortKey, type FileEntry } from './format/file-table.js';
import type { Archive } from './reader/archive.js';
import { TreeCheck } from './reader/tree.js';
import { writeFiles } from './extract-files.js';

export interface ExtractOptions {
  /** Only these paths (and, for directories, everything below them). */
  paths?: string[];
  /** Replace existing files. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
  /** Called before anything in the destination is replaced or created, other than directories. */
  onWrite?: () => void;
}

export interface ExtractSummary {
  destination: string;
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  seconds: number;
}

export { writeAllAt } from './extract-files.js';

async function selectEntries(archive: Archive, paths: string[] | undefined): Promise<FileEntry[]> {
  if (!paths?.length) {
    const all: FileEntry[] = [];
    for await (const e of archive.walk()) all.push(e);
    return all;
  }
  const picked = new Map<string, FileEntry>();
  for (const p of paths) {
    const e = await archive.entry(p);
    if (e.path !== '') picked.set(e.path, e);
    if (e.type === 'directory') {
      let cursor: string | undefined;
      do {
        const page = await archive.list(e.path, { recursive: true, cursor, limit: 10_000 });
        for (const c of page.entries) picked.set(c.path, c);
        cursor = page.cursor;
      } while (cursor);
    }
  }
  return [...picked.values()];
}

/**
 * An entry's mtime for fs.utimes/lutimes. Node passes seconds as a double to libuv, which keeps
 * microseconds (truncating); a double near 2^31 s is only exact to ~0.2 µs, so the value is the
 * stored time truncated to the microsecond plus half a microsecond, which truncates back to exactly
 * that microsecond. Node maps negative numbers to "now", so times before 1970 go as a Date (ms).
 */
export function mtimeOf(e: FileEntry): number | Date {
  const ns = e.mtimeNs;
  if (ns < 0n) return new Date(Number(ns / 1_000_000n));
  const seconds = ns / 1_000_000_000n;
  const micros = (ns % 1_000_000_000n) / 1000n;
  return Number(seconds) + (Number(micros) + 0.5) / 1e6;
}

/** `stat` of a path, or undefined when nothing is there. */
async function statOrNothing(p: string, follow: boolean) {
  try {
    return follow ? await fs.stat(p) : await fs.lstat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw toHexzError(err, { path: p });
  }
}

/**
 * Create a local directory and its missing ancestors, one level at a time from the nearest existing
 * one (no recursive mkdir: it loops forever where the kernel answers ENOENT for a parent that exists,
 * as under /proc). Errors name the directory; a refusal by the filesystem is INVALID_ARGUMENT. Below
 * `within`, no component may be a symlink (nothing is created through one).
 */
async function makeDirs(dir: string, within?: string): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; ; ) {
    const inside = within !== undefined && at.startsWith(within + path.sep);
    const st = await statOrNothing(at, !inside);
    if (st?.isSymbolicLink()) throw new HexzError('UNSAFE_PATH', `refusing to create ${dir}: ${at} is a symlink`, { path: at });
    if (st) {
      if (!st.isDirectory()) throw new HexzError('NOT_A_DIRECTORY', `cannot create ${dir}: ${at} exists and is not a directory`, { path: at });
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await statOrNothing(d, true))?.isDirectory()) continue;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EEXIST') {
        // The parent exists (checked above) but the filesystem will not make this directory here.
        throw new HexzError('INVALID_ARGUMENT', `cannot create directory ${d}: ${(err as Error).message}`, { path: d, errno: code });
      }
      const e = toHexzError(err, { path: d });
      throw new HexzError(e.code, `cannot create directory ${d}: ${(err as Error).message}`, e.context, { cause: err });
    }
  }
}

/** Extract `archive` into `destination`. */
export async function extractArchive(archive: Archive, destination: string, opts: ExtractOptions = {}): Promise<ExtractSummary> {
  const t0 = performance.now();
  const dest = path.resolve(destination);
  // Table order: every directory before what is in it.
  const entries = (await selectEntries(archive, opts.paths))
    .map((e) => ({ e, k: sortKey(e.path) }))
    .sort((a, b) => Buffer.compare(a.k, b.k))
    .map((x) => x.e);

  // The entries must form a tree before anything is written (no entry below a symlink or a file).
  const tree = new TreeCheck((p) => archive.lookup(p));
  for (const e of entries) {
    const problem = await tree.check(e);
    if (problem) throw problem;
  }

  const existing = await statOrNothing(dest, true);
  if (existing && !existing.isDirectory()) throw new HexzError('NOT_A_DIRECTORY', `destination ${dest} exists and is not a directory`, { path: dest });
  const targetIn = (root: string) => (e: FileEntry) => {
    const t = path.join(root, ...e.path.split('/'));
    if (!t.startsWith(root + path.sep)) throw new HexzError('UNSAFE_PATH', `entry ${e.path} would land outside ${dest}`, { path: e.path });
    return t;
  };

  // Refuse before writing anything if a file would be replaced.
  if (existing && !opts.force) {
    const targetOf = targetIn(await fs.realpath(dest));
    const clashes: string[] = [];
    for (const e of entries) {
      const st = await statOrNothing(targetOf(e), false);
      if (st && !(st.isDirectory() && e.type === 'directory')) clashes.push(e.path);
      if (clashes.length >= 5) break;
    }
    if (clashes.length) {
      throw new HexzError('EXISTS', `would overwrite ${clashes.join(', ')}${clashes.length >= 5 ? ', …' : ''} in ${dest}`, { path: clashes[0], remedy: 'overwrite-files' });
    }
  }

  await makeDirs(dest);
  const realDest = await fs.realpath(dest);
  const targetOf = targetIn(realDest);

  // Parent directories must resolve inside the destination (no symlink along the way).
  const checkedDirs = new Set<string>([realDest]);
  const ensureParent = async (target: string, e: FileEntry) => {
    const dir = path.dirname(target);
    if (checkedDirs.has(dir)) return;
    await makeDirs(dir, realDest);
    const real = await fs.realpath(dir);
    if (real !== dir || !(real + path.sep).startsWith(realDest + path.sep)) {
      throw new HexzError('UNSAFE_PATH', `refusing to extract ${e.path}: a parent directory is a symlink or lies outside ${dest}`, { path: e.path });
    }
    checkedDirs.add(dir);
  };

  const summary: ExtractSummary = { destination: dest, files: 0, directories: 0, symlinks: 0, bytes: 0, seconds: 0 };
  const total = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const dirs = entries.filter((e) => e.type === 'directory');
  for (const e of dirs) {
    const t = targetOf(e);
    await ensureParent(t, e);
    const st = await statOrNothing(t, false);
    if (st && !st.isDirectory()) {
      opts.onWrite?.();
      await fs.unlink(t); // only reachable with --force
    }
    if (!st?.isDirectory()) await fs.mkdir(t, { mode: 0o700 });
    checkedDirs.add(t);
    summary.directories++;
  }

  // Regular files: one bulk read of the archive, written to temporary names and renamed into place
  // when complete (./extract-files.ts).
  const files = entries.filter((e) => e.type === 'file');
  summary.bytes = await writeFiles(archive, files, {
    signal: opts.signal,
    onWrite: opts.onWrite,
    onBytes: (n) => opts.onProgress?.(n, total),
    ensureParent,
    targetOf,
    force: Boolean(opts.force),
    mtimeOf,
  });
  summary.files = files.length;

  for (const e of entries.filter((x) => x.type === 'symlink')) {
    const t = targetOf(e);
    await ensureParent(t, e);
    opts.onWrite?.();
    if (opts.force) {
      const st = await statOrNothing(t, false);
      if (st?.isDirectory()) throw new HexzError('EXISTS', `cannot replace directory ${t} with a symlink`, { path: e.path });
      if (st) await fs.unlink(t);
    }
    await fs.symlink(e.target ?? '', t);
    await fs.lutimes(t, mtimeOf(e), mtimeOf(e)).catch(() => {});
    summary.symlinks++;
  }

  // Directory modes and times last, deepest first, so restricted modes never block extraction.
  for (const e of dirs.reverse()) {
    const t = targetOf(e);
    try {
      await fs.chmod(t, e.mode);
      await fs.utimes(t, mtimeOf(e), mtimeOf(e));
    } catch (err) {
      throw toHexzError(err, { path: e.path });
    }
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}
