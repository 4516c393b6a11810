/**
 * `extract`: restore files, directories and symlinks (modes, mtimes) from an archive into a local
 * directory.
 *
 * Safety: archive paths are normalised by the reader (no `..`, no absolute paths). On top of that,
 * nothing is ever written through a symlink: symlinks from the archive are created last, files are
 * opened with O_NOFOLLOW, and every parent directory is checked to resolve inside the destination. A
 * hostile archive (symlink `a` → `/etc` plus a file `a/passwd`) therefore cannot write outside it.
 * Existing files are never replaced without `force`, and that is checked before anything is written.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, throwIfAborted, toHexzError } from './errors.js';
import type { FileEntry } from './format/file-table.js';
import type { Archive } from './reader/archive.js';

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

/** Files written at once: overlaps syscalls of small files; large files stream with their own prefetch. */
const FILE_CONCURRENCY = 4;

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

function mtimeOf(e: FileEntry): Date {
  return new Date(Number(e.mtimeNs / 1_000_000n));
}

/** Extract `archive` into `destination`. */
export async function extractArchive(archive: Archive, destination: string, opts: ExtractOptions = {}): Promise<ExtractSummary> {
  const t0 = performance.now();
  const dest = path.resolve(destination);
  await fs.mkdir(dest, { recursive: true });
  const realDest = await fs.realpath(dest);
  const entries = await selectEntries(archive, opts.paths);
  const targetOf = (e: FileEntry) => {
    const t = path.join(realDest, ...e.path.split('/'));
    if (!t.startsWith(realDest + path.sep)) throw new HexzError('UNSAFE_PATH', `entry ${e.path} would land outside ${dest}`, { path: e.path });
    return t;
  };

  // Refuse before writing anything if a file would be replaced.
  if (!opts.force) {
    const clashes: string[] = [];
    for (const e of entries) {
      const st = await fs.lstat(targetOf(e)).catch(() => undefined);
      if (st && !(st.isDirectory() && e.type === 'directory')) clashes.push(e.path);
      if (clashes.length >= 5) break;
    }
    if (clashes.length) {
      throw new HexzError('EXISTS', `would overwrite ${clashes.join(', ')}${clashes.length >= 5 ? ', …' : ''} in ${dest} (use --force)`, { path: clashes[0] });
    }
  }

  // Parent directories must resolve inside the destination (no symlink along the way).
  const checkedDirs = new Set<string>([realDest]);
  const ensureParent = async (target: string, e: FileEntry) => {
    const dir = path.dirname(target);
    if (checkedDirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
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
    const st = await fs.lstat(t).catch(() => undefined);
    if (st && !st.isDirectory()) {
      opts.onWrite?.();
      await fs.unlink(t); // only reachable with --force
    }
    await fs.mkdir(t, { recursive: true, mode: 0o700 });
    checkedDirs.add(t);
    summary.directories++;
  }

  const writeFile = async (e: FileEntry) => {
    throwIfAborted(opts.signal);
    const t = targetOf(e);
    await ensureParent(t, e);
    opts.onWrite?.();
    if (opts.force) {
      const st = await fs.lstat(t).catch(() => undefined);
      if (st?.isDirectory()) throw new HexzError('EXISTS', `cannot replace directory ${t} with a file`, { path: e.path });
      if (st) await fs.unlink(t);
    }
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const fh = await fs.open(t, flags, 0o600);
    try {
      for await (const piece of archive.pieces(e, { signal: opts.signal })) {
        // Holes stay holes: skip them and let truncate extend the file sparsely.
        if (!piece.hole) {
          let done = 0;
          while (done < piece.bytes.byteLength) {
            const { bytesWritten } = await fh.write(piece.bytes, done, piece.bytes.byteLength - done, piece.offset + done);
            done += bytesWritten;
          }
        }
        summary.bytes += piece.bytes.byteLength;
        opts.onProgress?.(summary.bytes, total);
      }
      await fh.truncate(e.size);
      await fh.chmod(e.mode);
      await fh.utimes(mtimeOf(e), mtimeOf(e));
    } finally {
      await fh.close();
    }
    summary.files++;
  };

  const files = entries.filter((e) => e.type === 'file');
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(FILE_CONCURRENCY, files.length) }, async () => {
      while (next < files.length) await writeFile(files[next++]);
    }),
  );

  for (const e of entries.filter((x) => x.type === 'symlink')) {
    const t = targetOf(e);
    await ensureParent(t, e);
    opts.onWrite?.();
    if (opts.force) await fs.rm(t, { force: true });
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
