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
import { normalizePath, sortKey, type EntryType } from '../format/file-table.js';

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
  const entries: InputEntry[] = [];
  let totalBytes = 0;
  // Synchronous calls: the walk is the only thing the packer does meanwhile, and an async lstat is a
  // thread-pool round trip (~30 µs) against ~3 µs for the call itself — 10,000 files walk in ~30 ms
  // instead of ~300 ms.
  const visit = (relDir: string): void => {
    let dirents;
    try {
      dirents = fsSync.readdirSync(path.join(abs, relDir), { withFileTypes: true });
    } catch (err) {
      if (relDir === '') throw toHexzError(err, { path: input });
      onWarning(`skipping unreadable directory ${relDir}: ${(err as Error).message}`);
      return;
    }
    const subdirs: string[] = [];
    for (const d of dirents) {
      const rel = relDir ? `${relDir}/${d.name}` : d.name;
      if (d.name.includes('\ufffd')) {
        onWarning(`skipping ${rel}: its name is not valid UTF-8`);
        continue;
      }
      try {
        normalizePath(rel);
      } catch {
        onWarning(`skipping ${rel}: unsupported name`);
        continue;
      }
      const isDir = d.isDirectory();
      if (opts.exclude?.(rel)) continue;
      if (ig && ig.ignores(isDir ? `${rel}/` : rel)) continue;
      const source = path.join(abs, rel);
      let s: BigIntStats;
      let target: string | undefined;
      try {
        s = fsSync.lstatSync(source, { bigint: true });
        if (s.isSymbolicLink()) target = fsSync.readlinkSync(source);
      } catch (err) {
        onWarning(`skipping ${rel}: ${(err as Error).message}`);
        continue;
      }
      if (s.isFile()) {
        entries.push(entryOf(rel, source, s, 'file'));
        totalBytes += Number(s.size);
      } else if (s.isDirectory()) {
        entries.push(entryOf(rel, source, s, 'directory'));
        subdirs.push(rel);
      } else if (s.isSymbolicLink()) {
        entries.push(entryOf(rel, source, s, 'symlink', target));
      } else {
        const kind = s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : 'device';
        onWarning(`skipping ${rel}: ${kind}s cannot be archived`);
      }
    }
    for (const sub of subdirs) visit(sub);
  };
  visit('');
  const keyed = entries.map((e) => ({ key: sortKey(e.path), e }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return { kind: 'directory', name, entries: keyed.map((k) => k.e), totalBytes };
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
