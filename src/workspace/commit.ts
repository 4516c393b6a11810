/**
 * `hexz commit OUT`: write the workspace as a thin delta of the archive it is at, then move HEAD to
 * the new archive — the same as `hexz pack WS OUT --base HEAD`, but a file the stat cache says is
 * unchanged is not read at all: its chunk references are copied from HEAD's index. A commit reads
 * and uploads about what changed, whatever the size of the workspace.
 */
import path from 'node:path';
import type { CodecName } from '../codecs/index.js';
import { HexzError } from '../errors.js';
import type { KeySource } from '../crypto/keys.js';
import { pack, type PackOptions, type PackSummary } from '../packer/pack.js';
import { DISK_ENTRY, type InputEntry } from '../packer/walk.js';
import { openArchive, type Archive, type OpenArchiveOptions } from '../reader/archive.js';
import { digestFromRefs, digestOfTarget } from './digest.js';
import { stateFor } from './checkout.js';
import { STATE_DIR, writeWorkspace, type IndexEntry, type Workspace } from './state.js';
import { indexEntryOf, scanWorkspace, type StatusReport } from './status.js';

export interface CommitOptions extends Pick<PackOptions, 'level' | 'threads' | 'storage' | 'baseDir' | 'baseMap' | 'onWarning' | 'signal' | 'user' | 'overwrite' | 'signKey' | 'trustedKeys'> {
  compression?: CodecName;
  key?: KeySource;
  /** Commit even when nothing changed (a new archive with the same content). */
  allowEmpty?: boolean;
  onProgress?: (phase: 'status' | 'pack', bytes: number, total: number) => void;
  /** Options for opening the new archive to index it (cache, storage settings). */
  open?: OpenArchiveOptions;
}

export interface CommitSummary {
  status: StatusReport;
  pack: PackSummary;
  /** HEAD before and after. */
  from: Workspace['state']['head'];
  to: Workspace['state']['head'];
}

/** Commit the workspace `ws` to `output` (a path or URL). */
export async function commitWorkspace(ws: Workspace, output: string, opts: CommitOptions = {}): Promise<CommitSummary> {
  const { allowEmpty, open, onProgress, key, ...packOpts } = opts;
  const scan = await scanWorkspace(ws, { key, signal: opts.signal, onWarning: opts.onWarning, onProgress: (b) => onProgress?.('status', b, 0) });
  if (scan.clean && !allowEmpty) {
    throw new HexzError('NOTHING_TO_COMMIT', `nothing to commit: ${ws.root} matches ${ws.state.head.url}`, { path: ws.root, remedy: 'allow-empty' });
  }
  const single = ws.state.kind === 'file';
  if (single) {
    const others = scan.entries.filter((e) => e.path !== DISK_ENTRY);
    if (others.length || !scan.entries.some((e) => e.path === DISK_ENTRY && e.type === 'file')) {
      throw new HexzError(
        'INVALID_ARGUMENT',
        `the workspace of a single-file archive holds exactly one file, ${DISK_ENTRY}; found ${others.map((e) => e.path).slice(0, 3).join(', ') || `no regular file ${DISK_ENTRY}`}`,
        { path: ws.root },
      );
    }
  }

  // Files whose content is HEAD's — unchanged, or renamed with identical content — are not read:
  // their references are copied from HEAD's index.
  const renamedFrom = new Map(scan.changes.filter((c) => c.kind === 'renamed').map((c) => [c.path, c.from!]));
  const reuse: PackOptions['reuse'] = async (e, bases) => {
    if (e.type !== 'file') return undefined;
    const from = scan.matching.has(e.path) ? e.path : renamedFrom.get(e.path);
    if (from === undefined) return undefined;
    const head = bases[0];
    const entry = await head.lookup(from);
    return entry?.type === 'file' && entry.size === e.size ? head.fileRefs(entry) : undefined;
  };
  const input = single ? path.join(ws.root, DISK_ENTRY) : ws.root;
  const walked = single ? undefined : { kind: 'directory' as const, name: path.basename(ws.root), entries: scan.entries, totalBytes: scan.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0) };
  const summary = await pack(input, output, {
    ...packOpts,
    bases: [ws.state.head.url],
    key,
    encrypt: ws.state.encrypted,
    walked,
    exclude: (p) => p === STATE_DIR,
    reuse,
    onProgress: (p) => onProgress?.('pack', p.bytesRead, p.totalBytes),
  });

  // The new index: unchanged paths keep their entries; changed ones get digests from the new archive
  // (its index only) and the stats taken by the walk, before their bytes were read — a file that
  // changed while being packed then differs from its recorded stat and is hashed by the next status.
  const created = await openArchive(summary.output, { storage: opts.storage, key, baseDir: opts.baseDir, baseMap: opts.baseMap, ...open });
  try {
    const index: IndexEntry[] = [];
    for (const e of scan.entries) {
      const kept = scan.matching.get(e.path);
      if (kept) {
        index.push(kept);
        continue;
      }
      index.push(indexEntryOf(e, await digestOf(created, e), scan.scannedAt));
    }
    const from = ws.state.head;
    const state = stateFor(created, ws.state);
    await writeWorkspace(ws.root, state, index);
    return { status: scan, pack: summary, from, to: state.head };
  } finally {
    await created.close();
  }
}

async function digestOf(archive: Archive, e: InputEntry): Promise<string | undefined> {
  if (e.type === 'symlink') return digestOfTarget(e.target ?? '');
  if (e.type !== 'file') return undefined;
  const entry = await archive.entry(e.path);
  return (await digestFromRefs(archive.fileRefs(entry))).digest;
}
