/**
 * `diff`: what changed between two archives, by path and by chunk. Both file tables are walked in
 * table order (a merge join, so memory is per-difference, not per-file); file contents are compared by
 * their chunk ids, so no chunk data is read — only the two indexes.
 */
import type { ChunkRef } from './format/chunk-index.js';
import type { EntryType, FileEntry } from './format/file-table.js';
import { sortKey } from './format/file-table.js';
import { hashParts } from './hash.js';
import type { Archive } from './reader/archive.js';

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
  /** Bytes of the B version whose chunks also occur in the A version of this file. */
  sharedBytes: number;
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
  /** Chunk-level totals over the whole archives (distinct chunk ids, holes excluded). */
  chunks: { sharedBytes: number; onlyABytes: number; onlyBBytes: number; sharedChunks: number; onlyAChunks: number; onlyBChunks: number };
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

/** Compare archive `a` (old) with `b` (new). */
export async function diffArchives(a: Archive, b: Archive): Promise<DiffReport> {
  const report: DiffReport = {
    a: a.url,
    b: b.url,
    added: [],
    removed: [],
    modified: [],
    renamed: [],
    unchanged: 0,
    chunks: { sharedBytes: 0, onlyABytes: 0, onlyBBytes: 0, sharedChunks: 0, onlyAChunks: 0, onlyBChunks: 0 },
  };
  // Digests of added/removed regular files, to pair them up as renames.
  const removedDigest = new Map<string, FileEntry>();
  const addedFiles: Array<{ e: FileEntry; d: string }> = [];

  const ia = a.walk();
  const ib = b.walk();
  let ea = (await ia.next()).value as FileEntry | undefined;
  let eb = (await ib.next()).value as FileEntry | undefined;
  while (ea || eb) {
    const c = !ea ? 1 : !eb ? -1 : Buffer.compare(sortKey(ea.path), sortKey(eb.path));
    if (c < 0) {
      report.removed.push({ path: ea!.path, type: ea!.type, size: ea!.size });
      if (ea!.type === 'file' && ea!.size > 0) removedDigest.set(digest(await fileRefs(a, ea!)), ea!);
      ea = (await ia.next()).value as FileEntry | undefined;
    } else if (c > 0) {
      report.added.push({ path: eb!.path, type: eb!.type, size: eb!.size });
      if (eb!.type === 'file' && eb!.size > 0) addedFiles.push({ e: eb!, d: digest(await fileRefs(b, eb!)) });
      eb = (await ib.next()).value as FileEntry | undefined;
    } else {
      const x = ea!;
      const y = eb!;
      let changed = x.type !== y.type || x.mode !== y.mode || x.target !== y.target;
      let sharedBytes = 0;
      let contentChanged = x.type !== y.type || x.target !== y.target;
      if (x.type === 'file' && y.type === 'file') {
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
    const from = removedDigest.get(d);
    if (!from) continue;
    removedDigest.delete(d);
    report.renamed.push({ from: from.path, to: e.path, size: e.size });
    renamedFrom.add(from.path);
    renamedTo.add(e.path);
  }
  report.added = report.added.filter((x) => !renamedTo.has(x.path));
  report.removed = report.removed.filter((x) => !renamedFrom.has(x.path));

  const ca = await chunkSizes(a);
  const cb = await chunkSizes(b);
  for (const [k, raw] of cb) {
    if (ca.has(k)) {
      report.chunks.sharedBytes += raw;
      report.chunks.sharedChunks++;
    } else {
      report.chunks.onlyBBytes += raw;
      report.chunks.onlyBChunks++;
    }
  }
  for (const [k, raw] of ca) {
    if (!cb.has(k)) {
      report.chunks.onlyABytes += raw;
      report.chunks.onlyAChunks++;
    }
  }
  return report;
}
