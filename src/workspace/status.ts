/**
 * `hexz status`: how a workspace differs from the archive it is at (HEAD), without reading HEAD.
 *
 * Every path on disk is compared with the index (./state.ts): a file whose size, mtime, ctime and
 * inode are what the index recorded is unchanged (git's stat cache; ctime cannot be set by users, so
 * restoring an mtime does not hide a change). Any other file is hashed the way the packer would cut
 * and name its chunks, and its digest compared with HEAD's. Files hashed and found unchanged get a
 * fresh stat in the index, so the next status does not hash them again.
 *
 * Renames are paths that disappeared and appeared with identical content (equal digests), as git
 * reports them without similarity detection. A file that moved and changed shows as deleted + added.
 */
import path from 'node:path';
import { HexzError } from '../errors.js';
import { chunkIdFunction } from '../format/chunk.js';
import type { EntryType } from '../format/file-table.js';
import { deriveArchiveKeys, masterKey, type KeySource } from '../crypto/keys.js';
import { walkInput, type InputEntry } from '../packer/walk.js';
import { digestFile, digestOfTarget } from './digest.js';
import { RACY_NS, readIndex, STATE_DIR, type IndexEntry, type Workspace } from './state.js';

export type ChangeKind = 'added' | 'deleted' | 'modified' | 'renamed' | 'typechange' | 'mode';

export interface Change {
  kind: ChangeKind;
  path: string;
  /** Old path of a rename. */
  from?: string;
  /** Type now (added, modified, renamed, mode, typechange) or in HEAD (deleted). */
  type: EntryType;
  /** Size now, and in HEAD where there was one. */
  size?: number;
  previousSize?: number;
  /** Permission bits now, and in HEAD (mode changes). */
  mode?: number;
  previousMode?: number;
}

export interface StatusReport {
  root: string;
  head: Workspace['state']['head'];
  changes: Change[];
  /** Paths that match HEAD. */
  unchanged: number;
  /** Files whose stat changed and that were read to compare their content. */
  hashedFiles: number;
  hashedBytes: number;
  clean: boolean;
}

export interface StatusOptions {
  key?: KeySource;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  onProgress?: (hashedBytes: number) => void;
}

/** The result of comparing a workspace with its index, plus what `commit` needs. */
export interface WorkspaceScan extends StatusReport {
  /** The walk of the workspace (what `commit` packs). */
  entries: InputEntry[];
  /** Index entries of every path that matches HEAD now, with fresh stats (the index after a commit of nothing). */
  matching: Map<string, IndexEntry>;
  /** Digests computed for changed and added files (reused when the commit rebuilds the index). */
  digests: Map<string, string>;
  /** Index entries whose stat was refreshed (status writes them back). */
  refreshed: number;
  /** Wall-clock time (ns) just before the walk: the reference for racy entries. */
  scannedAt: bigint;
}

/** Digest function of a workspace: plain BLAKE3 ids, or keyed ones for an encrypted archive. */
export async function workspaceIdFunction(ws: Workspace, key?: KeySource): Promise<(plain: Uint8Array) => Uint8Array> {
  const s = ws.state;
  if (!s.encrypted) return chunkIdFunction();
  if (!s.kdf || !s.keyCheck) throw new HexzError('CORRUPT', 'workspace state of an encrypted archive lacks its key parameters', { path: ws.root });
  if (!key) {
    throw new HexzError('KEY_REQUIRED', `the archive of this workspace (${s.head.url}) is encrypted`, { archive: s.head.url, remedy: 'key' });
  }
  const kdf = { ...s.kdf, salt: Buffer.from(s.kdf.salt, 'hex') };
  const keys = deriveArchiveKeys(await masterKey(key, kdf));
  if (Buffer.from(keys.keyCheck).toString('hex') !== s.keyCheck) throw new HexzError('WRONG_KEY', `wrong key for ${s.head.url}`, { archive: s.head.url });
  return chunkIdFunction(keys);
}

/** The index entry describing `e` as it is on disk now. */
export function indexEntryOf(e: InputEntry, digest: string | undefined, now: bigint): IndexEntry {
  return {
    path: e.path,
    type: e.type,
    mode: e.mode,
    size: e.size,
    mtimeNs: e.mtimeNs.toString(),
    ctimeNs: e.ctimeNs.toString(),
    ino: e.ino.toString(),
    digest,
    target: e.target,
    ...(now - e.ctimeNs < RACY_NS || now - e.mtimeNs < RACY_NS ? { racy: true } : {}),
  };
}

function statMatches(e: InputEntry, x: IndexEntry): boolean {
  return !x.racy && e.size === x.size && e.mtimeNs.toString() === x.mtimeNs && e.ctimeNs.toString() === x.ctimeNs && e.ino.toString() === x.ino;
}

/** Walk the workspace and classify every path against the index. */
export async function scanWorkspace(ws: Workspace, opts: StatusOptions = {}): Promise<WorkspaceScan> {
  const index = await readIndex(ws.root);
  const { state } = ws;
  // Before the walk: an entry is racy when it changed less than RACY_NS before its stat was taken.
  const now = BigInt(Date.now()) * 1_000_000n;
  const walked = await walkInput(ws.root, opts.onWarning, { exclude: (p) => p === STATE_DIR });
  let idOf: ((plain: Uint8Array) => Uint8Array) | undefined;
  const hash = async (e: InputEntry): Promise<string> => {
    if (e.type === 'symlink') return digestOfTarget(e.target ?? '');
    idOf ??= await workspaceIdFunction(ws, opts.key);
    const d = await digestFile(path.join(ws.root, ...e.path.split('/')), state.chunking, idOf, { signal: opts.signal });
    report.hashedFiles++;
    report.hashedBytes += e.size;
    opts.onProgress?.(report.hashedBytes);
    return d.digest;
  };

  const report: WorkspaceScan = {
    root: ws.root,
    head: state.head,
    changes: [],
    unchanged: 0,
    hashedFiles: 0,
    hashedBytes: 0,
    clean: true,
    entries: walked.entries,
    matching: new Map(),
    digests: new Map(),
    refreshed: 0,
    scannedAt: now,
  };
  const added: InputEntry[] = [];
  const seen = new Set<string>();
  for (const e of walked.entries) {
    seen.add(e.path);
    const x = index.get(e.path);
    if (!x) {
      added.push(e);
      continue;
    }
    if (x.type !== e.type) {
      report.changes.push({ kind: 'typechange', path: e.path, type: e.type, size: e.size, previousSize: x.size });
      continue;
    }
    let sameContent: boolean;
    if (e.type === 'directory') sameContent = true;
    else if (e.type === 'symlink') sameContent = e.target === x.target;
    else if (statMatches(e, x)) sameContent = true;
    else if (e.size !== x.size) sameContent = false;
    else {
      const d = await hash(e);
      report.digests.set(e.path, d);
      sameContent = d === x.digest;
    }
    if (!sameContent) {
      report.changes.push({ kind: 'modified', path: e.path, type: e.type, size: e.size, previousSize: x.size });
      continue;
    }
    if (e.mode !== x.mode) {
      report.changes.push({ kind: 'mode', path: e.path, type: e.type, mode: e.mode, previousMode: x.mode });
      continue;
    }
    const same = statMatches(e, x);
    if (!same && e.type === 'file') report.refreshed++;
    report.matching.set(e.path, same ? x : indexEntryOf(e, x.digest, now));
    report.unchanged++;
  }

  // Deleted paths, and renames: a deleted file whose content reappears under a new path.
  const deleted = [...index.values()].filter((x) => !seen.has(x.path));
  const deletedByDigest = new Map<string, IndexEntry>();
  for (const x of deleted) if (x.type === 'file' && x.size > 0 && x.digest) deletedByDigest.set(`${x.size}:${x.digest}`, x);
  const deletedSizes = new Set([...deletedByDigest.values()].map((x) => x.size));
  const renamedFrom = new Set<string>();
  for (const e of added) {
    if (e.type === 'file' && deletedSizes.has(e.size)) {
      const d = await hash(e);
      report.digests.set(e.path, d);
      const from = deletedByDigest.get(`${e.size}:${d}`);
      if (from) {
        deletedByDigest.delete(`${e.size}:${d}`);
        renamedFrom.add(from.path);
        report.changes.push({ kind: 'renamed', path: e.path, from: from.path, type: 'file', size: e.size });
        continue;
      }
    }
    report.changes.push({ kind: 'added', path: e.path, type: e.type, size: e.size });
  }
  for (const x of deleted) {
    if (!renamedFrom.has(x.path)) report.changes.push({ kind: 'deleted', path: x.path, type: x.type, previousSize: x.size });
  }
  report.changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  report.clean = report.changes.length === 0;
  return report;
}
