/**
 * `diff`: what changed between two archives, by path and by chunk. Both file tables are walked in
 * table order (a merge join, so memory is per-difference, not per-file).
 *
 * File contents are compared by their chunk ids, so no chunk data is read — only the two indexes —
 * when the ids are comparable: both archives hash chunks the same way (both plain, or both encrypted
 * under the same key) *and* cut them the same way (same chunking parameters). Otherwise identical
 * files have different chunk sequences, so files of equal size are compared by reading both contents,
 * and the bytes a modified file shares with its old version are unknown (`sharedBytes: null`).
 */
import { HexzError } from './errors.js';
import { bytesEqual } from './format/bytes.js';
import type { ChunkRef } from './format/chunk-index.js';
import type { EntryType, FileEntry } from './format/file-table.js';
import { sortKey } from './format/file-table.js';
import { hashParts } from './hash.js';
import type { Archive, ContentPiece } from './reader/archive.js';

export interface DiffEntry {
  path: string;
  type: EntryType;
  size: number;
}

export interface ModifiedEntry {
  path: string;
  typeA: EntryType;
  typeB: EntryType;
  sizeA: number;
  sizeB: number;
  /**
   * Bytes of the B version whose chunks also occur in the A version of this file; null when the
   * archives' chunk ids are not comparable (see `DiffReport.comparison`).
   */
  sharedBytes: number | null;
  /** Only the mode or symlink target changed. */
  metadataOnly: boolean;
}

export interface DiffReport {
  a: string;
  b: string;
  added: DiffEntry[];
  removed: DiffEntry[];
  modified: ModifiedEntry[];
  renamed: Array<{ from: string; to: string; size: number }>;
  unchanged: number;
  /**
   * How file contents were compared: `chunk-ids` (only the indexes were read) or `content` (files of
   * equal size were read from both archives, because chunk ids are not comparable; `reason` says why).
   */
  comparison: { method: 'chunk-ids' | 'content'; reason?: string };
  /**
   * Chunk-level totals over the whole archives (distinct chunk ids, holes excluded). When the two
   * archives derive chunk ids differently (plain vs encrypted, different keys) no id can be shared:
   * `comparable` is false and the shared figures are null.
   */
  chunks: {
    comparable: boolean;
    sharedBytes: number | null;
    onlyABytes: number;
    onlyBBytes: number;
    sharedChunks: number | null;
    onlyAChunks: number;
    onlyBChunks: number;
  };
}

function idKey(ref: ChunkRef): string {
  return Buffer.from(ref.id).toString('latin1');
}

async function fileRefs(archive: Archive, e: FileEntry): Promise<ChunkRef[]> {
  const out: ChunkRef[] = [];
  for await (const r of archive.fileRefs(e)) out.push(r);
  return out;
}

/** Content digest of a file from its chunk ids and lengths (equal digests = equal content). */
function digest(refs: ChunkRef[]): string {
  const parts: Uint8Array[] = [];
  for (const r of refs) {
    parts.push(r.id);
    const n = Buffer.allocUnsafe(4);
    n.writeUInt32LE(r.raw);
    parts.push(n);
  }
  return hashParts(parts).toString('hex');
}

async function chunkSizes(archive: Archive): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const r of archive.refsIn(0, archive.root.logicalSize)) if (!r.hole) m.set(idKey(r), r.raw);
  return m;
}

/** Why chunk ids of `a` and `b` cannot identify equal content: different id keys or chunking, or undefined. */
function incomparable(a: Archive, b: Archive): { ids?: string; chunking?: string } {
  const out: { ids?: string; chunking?: string } = {};
  if (!a.keys !== !b.keys) out.ids = `${a.keys ? 'A' : 'B'} is encrypted and ${a.keys ? 'B' : 'A'} is not`;
  else if (a.keys && b.keys && !bytesEqual(a.keys.idKey, b.keys.idKey)) out.ids = 'A and B are encrypted under different keys';
  const ca = a.root.chunking;
  const cb = b.root.chunking;
  if (ca.algorithm !== cb.algorithm || ca.min !== cb.min || ca.avg !== cb.avg || ca.max !== cb.max || ca.normalization !== cb.normalization || ca.seed !== cb.seed) {
    const show = (c: typeof ca) => `min/avg/max ${c.min}/${c.avg}/${c.max}, normalization ${c.normalization}, seed ${c.seed}`;
    out.chunking = `A and B use different chunking parameters (${show(ca)} vs ${show(cb)})`;
  }
  return out;
}

/** Pull-based reader of a file's content pieces, for comparing two files with different piece boundaries. */
class PieceCursor {
  private current: Uint8Array = new Uint8Array(0);
  private at = 0;
  private done = false;
  constructor(private readonly it: AsyncGenerator<ContentPiece>) {}

  /** The next bytes (at least one unless the content is exhausted, then an empty view). */
  async peek(): Promise<Uint8Array> {
    while (this.at >= this.current.byteLength && !this.done) {
      const n = await this.it.next();
      if (n.done) this.done = true;
      else {
        this.current = n.value.bytes;
        this.at = 0;
      }
    }
    return this.current.subarray(this.at);
  }

  skip(n: number): void {
    this.at += n;
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }
}

/** True when the two files have the same bytes (read from both archives). */
async function sameFileContent(a: Archive, x: FileEntry, b: Archive, y: FileEntry): Promise<boolean> {
  if (x.size !== y.size) return false;
  if (x.size === 0) return true;
  const ca = new PieceCursor(a.pieces(x));
  const cb = new PieceCursor(b.pieces(y));
  try {
    for (;;) {
      const [pa, pb] = await Promise.all([ca.peek(), cb.peek()]);
      const n = Math.min(pa.byteLength, pb.byteLength);
      if (n === 0) return pa.byteLength === pb.byteLength;
      if (Buffer.compare(pa.subarray(0, n), pb.subarray(0, n)) !== 0) return false;
      ca.skip(n);
      cb.skip(n);
    }
  } finally {
    await Promise.all([ca.close(), cb.close()]);
  }
}

/** Candidates of equal size a renamed file is compared with by content, at most (keeps diff linear). */
const RENAME_CANDIDATES = 8;

export interface DiffOptions {
  /**
   * At most this many bytes of file content may be read (from each archive) when chunk ids are not
   * comparable; past it the diff fails with `UNSUPPORTED` instead of reading on. Default: no limit
   * (the CLI). The gateway sets one, so one request cannot make it read whole datasets.
   */
  contentBudgetBytes?: number;
}

/** Compare archive `a` (old) with `b` (new). */
export async function diffArchives(a: Archive, b: Archive, opts: DiffOptions = {}): Promise<DiffReport> {
  const why = incomparable(a, b);
  const byContent = Boolean(why.ids || why.chunking);
  let budget = opts.contentBudgetBytes ?? Infinity;
  // Content comparison (only when chunk ids are not comparable), within the budget.
  const sameContent = (x: FileEntry, y: FileEntry): Promise<boolean> => {
    if (x.size === y.size && x.size > 0 && (budget -= x.size) < 0) {
      throw new HexzError('UNSUPPORTED', `comparing these archives needs reading file contents (${why.ids ?? why.chunking}), more than the ${opts.contentBudgetBytes} bytes allowed; use hexz diff`);
    }
    return sameFileContent(a, x, b, y);
  };
  const report: DiffReport = {
    a: a.url,
    b: b.url,
    added: [],
    removed: [],
    modified: [],
    renamed: [],
    unchanged: 0,
    comparison: byContent ? { method: 'content', reason: [why.ids, why.chunking].filter(Boolean).join('; ') } : { method: 'chunk-ids' },
    chunks: { comparable: !why.ids, sharedBytes: 0, onlyABytes: 0, onlyBBytes: 0, sharedChunks: 0, onlyAChunks: 0, onlyBChunks: 0 },
  };
  // Digests of added/removed regular files, to pair them up as renames (by size when comparing content).
  const removedDigest = new Map<string, FileEntry>();
  const addedFiles: Array<{ e: FileEntry; d: string }> = [];
  const removedBySize = new Map<number, FileEntry[]>();

  const ia = a.walk();
  const ib = b.walk();
  let ea = (await ia.next()).value as FileEntry | undefined;
  let eb = (await ib.next()).value as FileEntry | undefined;
  while (ea || eb) {
    const c = !ea ? 1 : !eb ? -1 : Buffer.compare(sortKey(ea.path), sortKey(eb.path));
    if (c < 0) {
      report.removed.push({ path: ea!.path, type: ea!.type, size: ea!.size });
      if (ea!.type === 'file' && ea!.size > 0) {
        if (byContent) removedBySize.set(ea!.size, [...(removedBySize.get(ea!.size) ?? []), ea!]);
        else removedDigest.set(digest(await fileRefs(a, ea!)), ea!);
      }
      ea = (await ia.next()).value as FileEntry | undefined;
    } else if (c > 0) {
      report.added.push({ path: eb!.path, type: eb!.type, size: eb!.size });
      if (eb!.type === 'file' && eb!.size > 0) addedFiles.push({ e: eb!, d: byContent ? '' : digest(await fileRefs(b, eb!)) });
      eb = (await ib.next()).value as FileEntry | undefined;
    } else {
      const x = ea!;
      const y = eb!;
      let changed = x.type !== y.type || x.mode !== y.mode || x.target !== y.target;
      let sharedBytes: number | null = 0;
      let contentChanged = x.type !== y.type || x.target !== y.target;
      if (x.type === 'file' && y.type === 'file' && byContent) {
        if (await sameContent(x, y)) sharedBytes = y.size;
        else {
          changed = contentChanged = true;
          sharedBytes = null;
        }
      } else if (x.type === 'file' && y.type === 'file') {
        const ra = await fileRefs(a, x);
        const rb = await fileRefs(b, y);
        if (x.size !== y.size || digest(ra) !== digest(rb)) {
          changed = contentChanged = true;
          const inA = new Set(ra.map(idKey));
          for (const r of rb) if (inA.has(idKey(r))) sharedBytes += r.raw;
        } else sharedBytes = y.size;
      } else if (x.type === 'directory' && y.type === 'directory') {
        changed = x.mode !== y.mode;
      }
      if (changed) {
        report.modified.push({ path: y.path, typeA: x.type, typeB: y.type, sizeA: x.size, sizeB: y.size, sharedBytes, metadataOnly: !contentChanged });
      } else report.unchanged++;
      ea = (await ia.next()).value as FileEntry | undefined;
      eb = (await ib.next()).value as FileEntry | undefined;
    }
  }

  // Pair removed and added files with identical content as renames.
  const renamedFrom = new Set<string>();
  const renamedTo = new Set<string>();
  for (const { e, d } of addedFiles) {
    let from: FileEntry | undefined;
    if (byContent) {
      const candidates = removedBySize.get(e.size) ?? [];
      for (let i = 0; i < Math.min(candidates.length, RENAME_CANDIDATES); i++) {
        if (await sameContent(candidates[i], e)) {
          from = candidates[i];
          candidates.splice(i, 1);
          break;
        }
      }
    } else {
      from = removedDigest.get(d);
      if (from) removedDigest.delete(d);
    }
    if (!from) continue;
    report.renamed.push({ from: from.path, to: e.path, size: e.size });
    renamedFrom.add(from.path);
    renamedTo.add(e.path);
  }
  report.added = report.added.filter((x) => !renamedTo.has(x.path));
  report.removed = report.removed.filter((x) => !renamedFrom.has(x.path));

  const ca = await chunkSizes(a);
  const cb = await chunkSizes(b);
  const chunks = report.chunks;
  let sharedBytes = 0;
  let sharedChunks = 0;
  for (const [k, raw] of cb) {
    if (!why.ids && ca.has(k)) {
      sharedBytes += raw;
      sharedChunks++;
    } else {
      chunks.onlyBBytes += raw;
      chunks.onlyBChunks++;
    }
  }
  for (const [k, raw] of ca) {
    if (why.ids || !cb.has(k)) {
      chunks.onlyABytes += raw;
      chunks.onlyAChunks++;
    }
  }
  chunks.sharedBytes = why.ids ? null : sharedBytes;
  chunks.sharedChunks = why.ids ? null : sharedChunks;
  return report;
}
