/**
 * The on-disk state of a workspace, in `WS/.hexz/` (documented in docs/cli.md, "Workspaces"):
 *
 * - `workspace.json`: the archive the workspace is at (its URL, UUID and index hash — "HEAD"), the
 *   archive kind (a single-file archive's workspace holds one file, `disk`) and its chunking
 *   parameters and key derivation, so `status` can hash files the way the packer would.
 * - `index.jsonl`: one line per path of HEAD with what the file looked like on disk when it was
 *   last known to match HEAD (size, mtime, ctime, inode) and its content digest. `status` trusts an
 *   unchanged stat and re-hashes only files whose stat changed — git's index, for the same reason.
 *
 * Both files are replaced atomically (temp file, fsync, rename), so an interrupted command leaves
 * the previous state.
 */
import { createReadStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ChunkingParams } from '../chunker/fastcdc.js';
import { HexzError, toHexzError } from '../errors.js';
import type { EntryType } from '../format/file-table.js';

/** Name of the state directory at the top of a workspace (never packed). */
export const STATE_DIR = '.hexz';
const HEAD_FILE = 'workspace.json';
const INDEX_FILE = 'index.jsonl';
const STATE_VERSION = 1;

export interface WorkspaceHead {
  /** Absolute URL of the archive the workspace is at (file:///…, s3://…, https://…). */
  url: string;
  uuid: string;
  /** Index (root) hash, hex: what a delta of it records. */
  rootHash: string;
}

export interface WorkspaceState {
  version: number;
  head: WorkspaceHead;
  kind: 'file' | 'directory';
  encrypted: boolean;
  chunking: ChunkingParams;
  /** Key derivation of an encrypted archive (salt as hex) and its key check value (hex): not secret. */
  kdf?: { kind: 1 | 2; log2N: number; r: number; p: number; salt: string };
  keyCheck?: string;
  /** When the workspace was checked out, and when HEAD last moved (ISO times). */
  checkedOut: string;
  updated: string;
}

/** What a path looked like when it last matched HEAD. */
export interface IndexEntry {
  path: string;
  type: EntryType;
  mode: number;
  size: number;
  /** Nanosecond times and inode as decimal strings (bigints in memory would not survive JSON). */
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  /** Content digest (files and symlinks), see ./digest.ts. */
  digest?: string;
  target?: string;
  /**
   * The stat was taken less than `RACY_NS` after the file last changed, so a later write within the
   * same timestamp tick would leave the stat unchanged: such entries are always re-hashed.
   */
  racy?: boolean;
}

/**
 * How close to "now" a change must be to make a stat untrustworthy: Linux filesystems stamp times
 * from a clock that ticks every few milliseconds (ext4, xfs, btrfs, tmpfs); 100 ms leaves a wide
 * margin. (FAT's 2 s mtimes are not covered; it has no ctime either.)
 */
export const RACY_NS = 100_000_000n;

export interface Workspace {
  /** Absolute path of the workspace's top directory. */
  root: string;
  state: WorkspaceState;
}

function stateDir(root: string): string {
  return path.join(root, STATE_DIR);
}

/** The workspace containing `start` (it or one of its parents); NOT_A_WORKSPACE when there is none. */
export async function findWorkspace(start: string): Promise<Workspace> {
  let dir = path.resolve(start);
  for (;;) {
    const head = path.join(stateDir(dir), HEAD_FILE);
    let text: string | undefined;
    try {
      text = await fs.readFile(head, 'utf8');
    } catch (err) {
      const e = toHexzError(err, { path: head });
      if (e.code !== 'PATH_NOT_FOUND' && e.code !== 'NOT_A_DIRECTORY') throw e;
    }
    if (text !== undefined) return { root: dir, state: parseState(text, head) };
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new HexzError('NOT_A_WORKSPACE', `${path.resolve(start)} is not inside a hexz workspace (make one with hexz checkout ARCHIVE DIR)`, { path: start });
    }
    dir = parent;
  }
}

function parseState(text: string, file: string): WorkspaceState {
  let s: WorkspaceState;
  try {
    s = JSON.parse(text) as WorkspaceState;
  } catch (err) {
    throw new HexzError('CORRUPT', `workspace state ${file} is not valid JSON`, { path: file }, { cause: err });
  }
  if (s.version !== STATE_VERSION) {
    throw new HexzError('UNSUPPORTED_VERSION', `workspace state ${file} has version ${s.version}; this hexz supports version ${STATE_VERSION}`, { path: file });
  }
  if (!s.head?.url || !s.head.uuid || !s.head.rootHash || !s.chunking) throw new HexzError('CORRUPT', `workspace state ${file} is incomplete`, { path: file });
  return s;
}

/** Write `data` to `file` atomically: a temp file next to it, fsync, rename. */
async function replaceFile(file: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o644);
  try {
    await write(fh);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw toHexzError(err, { path: file });
  }
  await fh.close();
  await fs.rename(tmp, file);
}

/** Create or update the state directory with HEAD and the index. */
export async function writeWorkspace(root: string, state: WorkspaceState, index: Iterable<IndexEntry>): Promise<void> {
  const dir = stateDir(root);
  await fs.mkdir(dir, { recursive: true });
  // The index first: a HEAD that moved with a stale index would make status compare against the
  // wrong digests, while a fresh index under the old HEAD only costs re-hashing.
  await writeIndex(root, index);
  await replaceFile(path.join(dir, HEAD_FILE), (fh) => fh.writeFile(`${JSON.stringify(state, null, 2)}\n`));
}

/** Replace the index (one JSON object per line, in the order given). */
export async function writeIndex(root: string, index: Iterable<IndexEntry>): Promise<void> {
  await replaceFile(path.join(stateDir(root), INDEX_FILE), async (fh) => {
    let batch: string[] = [];
    for (const e of index) {
      batch.push(JSON.stringify(e));
      if (batch.length === 4096) {
        await fh.write(`${batch.join('\n')}\n`);
        batch = [];
      }
    }
    if (batch.length) await fh.write(`${batch.join('\n')}\n`);
  });
}

/** The index, by path. */
export async function readIndex(root: string): Promise<Map<string, IndexEntry>> {
  const file = path.join(stateDir(root), INDEX_FILE);
  const out = new Map<string, IndexEntry>();
  let lineNo = 0;
  try {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      lineNo++;
      if (!line) continue;
      const e = JSON.parse(line) as IndexEntry;
      if (typeof e.path !== 'string' || !e.type) throw new Error('entry without path or type');
      out.set(e.path, e);
    }
  } catch (err) {
    if (err instanceof SyntaxError || (err instanceof Error && !('code' in err))) {
      throw new HexzError('CORRUPT', `workspace index ${file} is damaged at line ${lineNo}: ${err.message} (check the workspace out again)`, { path: file });
    }
    throw toHexzError(err, { path: file });
  }
  return out;
}
