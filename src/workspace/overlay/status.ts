/**
 * `hexz status` of an overlay workspace, in O(changed): a walk of the namespace's attached nodes
 * (the dirty set, ./namespace.ts) and its whiteouts — never of HEAD's tree, never a hash of an
 * untouched file. The kinds are the materialised workspace's (../status.ts).
 *
 * Each attached node is compared with the HEAD entry it is expected to be: the same name under its
 * parent's origin (a renamed directory's origin is its old path, so its untouched children are not
 * changes). A node showing HEAD content elsewhere is a rename; an upper file is compared with HEAD by
 * size, then — same size only — by content digest (chunk ids of that one file), so a file copied up
 * and written back unchanged is not "modified". A whiteout is a deletion, unless its HEAD path moved
 * (it is some node's origin); deleting a HEAD directory lists what it held (what was deleted).
 */
import { promises as fs } from 'node:fs';
import type { FileEntry } from '../../format/file-table.js';
import type { ChunkRef } from '../../format/chunk-index.js';
import { digestFile, digestFromRefs, digestPieces } from '../digest.js';
import { planFile } from './extents.js';
import type { Change, StatusReport } from '../status.js';
import { joinPath, type DirNode, type FileNode, type Node } from './namespace.js';
import type { OverlaySession } from './session.js';

export interface OverlayStatus extends StatusReport {
  /** Nodes the walk looked at (attached: touched or looked up by a write). */
  visited: number;
}

const typeOfNode = (n: Node) => (n.kind === 'dir' ? 'directory' : n.kind);

/** Compare the workspace with HEAD. `idOf` names chunks the packer's way (keyed when encrypted). */
export async function overlayStatus(s: OverlaySession, idOf: () => Promise<(plain: Uint8Array) => Uint8Array>): Promise<OverlayStatus> {
  const ns = s.namespace;
  const lower = ns.lower;
  const changes: Change[] = [];
  const report: OverlayStatus = { root: s.config.mountpoint, head: s.config.head, changes, unchanged: 0, hashedFiles: 0, hashedBytes: 0, clean: true, visited: 0 };
  /** HEAD paths some node shows (moved there): hiding them is not a deletion. */
  const moved = new Set<string>();
  const whiteouts: string[] = [];
  let ids: ((plain: Uint8Array) => Uint8Array) | undefined;

  const sameContent = async (node: FileNode, size: number, head: FileEntry): Promise<boolean> => {
    if (size !== head.size) return false;
    ids ??= await idOf();
    const file = s.upperPath(node.upper!);
    report.hashedFiles++;
    if (node.extents && node.copiedFrom === head.path) {
      // Only the extents present in the upper file, and HEAD's chunks around them, are read.
      const refs: ChunkRef[] = [];
      for await (const r of s.archive.fileRefs(head)) refs.push(r);
      const map = await s.extentMap(node);
      const pieces = planFile(refs, map.dirtyRanges(size), size);
      const fh = await fs.open(file, 'r');
      try {
        const lower = s.lowerReader(node);
        const mine = await digestPieces(pieces, (buf, at, n, pos) => map.read(buf, at, n, pos, fh, lower), s.config.chunking, ids);
        report.hashedBytes += mine.readBytes;
        return mine.digest === (await digestFromRefs(refs)).digest;
      } finally {
        await fh.close();
      }
    }
    if (node.extents) return false; // an extent copy of another HEAD file: not this one's content
    const [mine, theirs] = await Promise.all([digestFile(file, s.config.chunking, ids), digestFromRefs(s.archive.fileRefs(head))]);
    report.hashedBytes += size;
    return mine.digest === theirs.digest;
  };

  const visit = async (dir: DirNode, at: string, origin: string | undefined): Promise<void> => {
    for (const [name, node] of dir.children) {
      const p = joinPath(at, name);
      const o = origin === undefined ? undefined : joinPath(origin, name);
      if (node === null) {
        if (dir.base !== undefined) whiteouts.push(joinPath(dir.base, name));
        continue;
      }
      report.visited++;
      // A hard link's second name is visited from its first; each name is a path of its own though.
      const expected = o === undefined ? undefined : await lower.lookup(o);
      const base = node.kind === 'file' ? (node.base ?? node.copiedFrom) : node.base;
      // A second name (hard link) of a file still at its HEAD path is new, not a rename.
      const linkOnly = base !== undefined && base !== o && node.links.length > 1 && node.links.some((l) => joinPath(ns.pathOf(l.parent) ?? '', l.name) === base);
      if (base !== undefined && base !== o && !linkOnly) moved.add(base);
      if (linkOnly) {
        changes.push({ kind: expected ? 'modified' : 'added', path: p, type: typeOfNode(node), size: node.kind === 'file' && !node.upper ? node.size : undefined });
        continue;
      }
      await classify(node, p, o, expected);
      if (node.kind === 'dir') await visit(node, p, node.base ?? (expected?.type === 'directory' ? o : undefined));
    }
  };

  const classify = async (node: Node, p: string, o: string | undefined, expected: FileEntry | undefined): Promise<void> => {
    const type = typeOfNode(node);
    // Unchanged content at its own place: at most a mode change.
    if (node.base !== undefined && node.base === o && expected) {
      if ((expected.mode & 0o7777) !== node.meta.mode && node.kind !== 'symlink') changes.push({ kind: 'mode', path: p, type, mode: node.meta.mode, previousMode: expected.mode & 0o7777 });
      return;
    }
    if (node.base !== undefined) {
      changes.push({ kind: 'renamed', path: p, from: node.base, type, size: node.kind === 'file' ? node.size : undefined });
      return;
    }
    if (node.kind === 'file' && node.upper) {
      const size = (await statSize(s.upperPath(node.upper))) ?? 0;
      if (node.copiedFrom !== undefined && node.copiedFrom !== o) {
        const from = await lower.lookup(node.copiedFrom);
        if (from && (await sameContent(node, size, from))) {
          changes.push({ kind: 'renamed', path: p, from: node.copiedFrom, type, size });
          return;
        }
        moved.delete(node.copiedFrom); // moved and changed: deleted there, added or modified here
      }
      if (!expected) return void changes.push({ kind: 'added', path: p, type, size });
      if (expected.type !== 'file') return void changes.push({ kind: 'typechange', path: p, type, size, previousSize: expected.size });
      if (!(await sameContent(node, size, expected))) return void changes.push({ kind: 'modified', path: p, type, size, previousSize: expected.size });
      if ((expected.mode & 0o7777) !== node.meta.mode) changes.push({ kind: 'mode', path: p, type, mode: node.meta.mode, previousMode: expected.mode & 0o7777 });
      return;
    }
    if (!expected) return void changes.push({ kind: 'added', path: p, type, size: node.kind === 'symlink' ? Buffer.byteLength(node.target) : undefined });
    const expectedKind = expected.type === 'directory' ? 'dir' : expected.type;
    if (expectedKind !== node.kind) return void changes.push({ kind: 'typechange', path: p, type, previousSize: expected.size });
    if (node.kind === 'symlink' && node.target !== expected.target) return void changes.push({ kind: 'modified', path: p, type, size: Buffer.byteLength(node.target), previousSize: expected.size });
    if (node.kind === 'dir') {
      // An opaque directory over a HEAD directory: what HEAD held there is gone (unless shown again).
      for (const child of await lower.list(expected.path)) {
        const name = child.path.slice(child.path.lastIndexOf('/') + 1);
        if (!node.children.has(name)) whiteouts.push(child.path);
      }
      if ((expected.mode & 0o7777) !== node.meta.mode) changes.push({ kind: 'mode', path: p, type, mode: node.meta.mode, previousMode: expected.mode & 0o7777 });
    }
  };

  await visit(ns.root, '', ns.root.base);
  for (const h of whiteouts) await deleted(h);
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  report.clean = changes.length === 0;
  // Added paths were not HEAD's: they leave HEAD's count of untouched paths as it was.
  report.unchanged = Math.max(0, s.archive.root.fileCount - changes.filter((c) => c.kind !== 'added').length);
  return report;

  async function deleted(h: string): Promise<void> {
    if (moved.has(h)) return;
    const e = await lower.lookup(h);
    if (!e) return;
    changes.push({ kind: 'deleted', path: h, type: e.type, previousSize: e.size });
    if (e.type !== 'directory') return;
    for (const child of await lower.list(h)) await deleted(child.path);
  }
}

async function statSize(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return undefined;
  }
}
