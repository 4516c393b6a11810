/**
 * Walking the packer's input: a single file becomes one entry named `disk`; a directory becomes every
 * regular file, directory and symlink below it, in file-table order (docs/format.md, section 7.2).
 * `.hexzignore` at the top of the input excludes paths with gitignore syntax (the `ignore` package is
 * the implementation eslint and others use, so patterns behave as users expect from git).
 */
import fsSync, { promises as fs, type BigIntStats } from 'node:fs';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { HexzError, toHexzError } from '../errors.js';
import { MAX_PATH_BYTES } from '../format/constants.js';
import { compareUtf8, type EntryType } from '../format/file-table.js';

/** Name of the ignore file read at the top of a directory input. */
export const IGNORE_FILE = '.hexzignore';

/** The entry name of a single-file archive. */
export const DISK_ENTRY = 'disk';

export interface InputEntry {
  /** Path inside the archive. */
  path: string;
  /** Absolute path on disk. */
  source: string;
  type: EntryType;
  mode: number;
  mtimeNs: bigint;
  /** Size at walk time (files). */
  size: number;
  /** Bytes of disk actually allocated (fewer than `size` for sparse files). */
  allocated: number;
  /** Status-change time and inode at walk time: a workspace's stat cache compares them. */
  ctimeNs: bigint;
  ino: bigint;
  target?: string;
}

export interface WalkOptions {
  /** Paths (relative, `/`-separated) to leave out, with everything below them. */
  exclude?: (path: string) => boolean;
}

export interface WalkedInput {
  kind: 'file' | 'directory';
  /** Base name of the input. */
  name: string;
  entries: InputEntry[];
  /** Sum of regular file sizes. */
  totalBytes: number;
}

function entryOf(archivePath: string, source: string, st: BigIntStats, type: EntryType, target?: string): InputEntry {
  return {
    path: archivePath,
    source,
    type,
    mode: Number(st.mode & 0o7777n),
    mtimeNs: st.mtimeNs,
    size: type === 'file' ? Number(st.size) : type === 'symlink' ? Buffer.byteLength(target ?? '') : 0,
    allocated: Number(st.blocks) * 512,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    target,
  };
}

/**
 * Walk `input` (a file or a directory). `onWarning` hears about skipped entries (devices, sockets,
 * fifos, unreadable directories, names that are not valid UTF-8).
 */
export async function walkInput(input: string, onWarning: (msg: string) => void = () => {}, opts: WalkOptions = {}): Promise<WalkedInput> {
  const abs = path.resolve(input);
  let st: BigIntStats;
  try {
    st = await fs.stat(abs, { bigint: true });
  } catch (err) {
    const e = toHexzError(err, { path: input });
    if (e.code === 'PATH_NOT_FOUND') throw new HexzError('INVALID_ARGUMENT', `input ${input} does not exist`, { path: input });
    throw e;
  }
  const name = path.basename(abs);
  if (st.isFile()) {
    return { kind: 'file', name, entries: [entryOf(DISK_ENTRY, abs, st, 'file')], totalBytes: Number(st.size) };
  }
  if (!st.isDirectory()) throw new HexzError('INVALID_ARGUMENT', `input ${input} is neither a file nor a directory`, { path: input });

  const ig = await loadIgnore(abs);
  // Entries are grouped by directory as they are found, and put in file-table order at the end: by
  // parent path, then by name, both as UTF-8 bytes (the order of `sortKey`, parent ‖ 0 ‖ name,
  // without building a key per entry).
  const groups: Array<{ dir: string; children: Array<{ name: string; entry: InputEntry }> }> = [];
  let totalBytes = 0;
  const prefix = abs.endsWith('/') ? abs : `${abs}/`;
  // Synchronous calls: the walk is the only thing the packer does meanwhile, and an async lstat is a
  // thread-pool round trip (~30 µs) against ~3 µs for the call itself — 10,000 files walk in ~30 ms
  // instead of ~300 ms.
  const visit = (relDir: string): void => {
    let dirents;
    try {
      dirents = fsSync.readdirSync(relDir ? prefix + relDir : abs, { withFileTypes: true });
    } catch (err) {
      if (relDir === '') throw toHexzError(err, { path: input });
      onWarning(`skipping unreadable directory ${relDir}: ${(err as Error).message}`);
      return;
    }
    const children: Array<{ name: string; entry: InputEntry }> = [];
    groups.push({ dir: relDir, children });
    const subdirs: string[] = [];
    for (const d of dirents) {
      const rel = relDir ? `${relDir}/${d.name}` : d.name;
      if (d.name.includes('\ufffd')) {
        onWarning(`skipping ${rel}: its name is not valid UTF-8`);
        continue;
      }
      // A name from readdir is never empty, ".", ".." and has no "/" or NUL: only its length can
      // make the path one the file table refuses (what normalizePath checks for other callers).
      if (rel.length > MAX_PATH_BYTES / 3 && Buffer.byteLength(rel) > MAX_PATH_BYTES) {
        onWarning(`skipping ${rel}: unsupported name`);
        continue;
      }
      const isDir = d.isDirectory();
      if (opts.exclude?.(rel)) continue;
      if (ig && ig.ignores(isDir ? `${rel}/` : rel)) continue;
      const source = prefix + rel;
      let s: BigIntStats;
      let target: string | undefined;
      try {
        s = fsSync.lstatSync(source, { bigint: true });
        if (s.isSymbolicLink()) target = fsSync.readlinkSync(source);
      } catch (err) {
        onWarning(`skipping ${rel}: ${(err as Error).message}`);
        continue;
      }
      let entry: InputEntry;
      if (s.isFile()) {
        entry = entryOf(rel, source, s, 'file');
        totalBytes += entry.size;
      } else if (s.isDirectory()) {
        entry = entryOf(rel, source, s, 'directory');
        subdirs.push(rel);
      } else if (s.isSymbolicLink()) {
        entry = entryOf(rel, source, s, 'symlink', target);
      } else {
        const kind = s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : 'device';
        onWarning(`skipping ${rel}: ${kind}s cannot be archived`);
        continue;
      }
      children.push({ name: d.name, entry });
    }
    for (const sub of subdirs) visit(sub);
  };
  visit('');
  groups.sort((a, b) => compareUtf8(a.dir, b.dir));
  const entries: InputEntry[] = [];
  for (const g of groups) {
    g.children.sort((a, b) => compareUtf8(a.name, b.name));
    for (const c of g.children) entries.push(c.entry);
  }
  return { kind: 'directory', name, entries, totalBytes };
}

async function loadIgnore(dir: string): Promise<Ignore | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, IGNORE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  return ignore().add(text);
}
