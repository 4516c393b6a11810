/**
 * Journal compaction (docs/workspaces.md, "The journal"): the namespace written as it is now, one
 * record per node of its explicit tree, so a journal of a million creates and unlinks since the last
 * commit replays as the few nodes that are left. A compacted journal starts with these records and
 * goes on with ordinary ones (./namespace.ts) appended after it.
 *
 * Every node gets an id (the root is 0). A node record carries everything the node holds — kind, HEAD
 * path, upper file, copy-up origin, attributes — and its names as `[parent id, name]` pairs in the
 * order the node had them (the first is the path status and copy-up use); a directory's record lists
 * its overrides in their order, a child's id or `null` for a whiteout. Ids are resolved once every
 * node record is read (`SnapshotLoader.finish`), so records may reference nodes defined after them.
 */
import { HexzError } from '../../errors.js';
import type { DirNode, FileNode, Namespace, Node, NodeMeta, SymlinkNode } from './namespace.js';

interface NodeFields {
  op: 'node';
  id: number;
  /** The node's names: [parent id, name], first name first. The root has none. */
  links: Array<[number, string]>;
  mode: number;
  mtimeMs: number;
  uid?: number;
  gid?: number;
  base?: string;
}

export type SnapshotRecord =
  | (NodeFields & { kind: 'dir'; children: Array<[string, number | null]> })
  | (NodeFields & { kind: 'file'; size: number; upper?: string; from?: string; extents?: boolean })
  | (NodeFields & { kind: 'symlink'; target: string });

export function isSnapshotRecord(r: { op: string }): r is SnapshotRecord {
  return r.op === 'node';
}

const metaFields = (m: NodeMeta) => ({ mode: m.mode, mtimeMs: m.mtimeMs, ...(m.uid !== undefined ? { uid: m.uid } : {}), ...(m.gid !== undefined ? { gid: m.gid } : {}) });

/** The namespace's explicit tree as snapshot records (root first). */
export function snapshotRecords(ns: Namespace): SnapshotRecord[] {
  const ids = new Map<Node, number>([[ns.root, 0]]);
  const order: Node[] = [ns.root];
  // Breadth-first over the attached nodes; a hard-linked node is numbered once.
  for (let i = 0; i < order.length; i++) {
    const n = order[i];
    if (n.kind !== 'dir') continue;
    for (const c of n.children.values()) {
      if (c && !ids.has(c)) {
        ids.set(c, order.length);
        order.push(c);
      }
    }
  }
  return order.map((n, id): SnapshotRecord => {
    // A name whose parent is not attached any more cannot be replayed and reaches nothing: dropped.
    const links = n.links.filter((l) => ids.has(l.parent)).map((l): [number, string] => [ids.get(l.parent)!, l.name]);
    const common = { op: 'node' as const, id, links, ...metaFields(n.meta), ...(n.base !== undefined ? { base: n.base } : {}) };
    if (n.kind === 'dir') return { ...common, kind: 'dir', children: [...n.children].map(([name, c]): [string, number | null] => [name, c ? ids.get(c)! : null]) };
    if (n.kind === 'symlink') return { ...common, kind: 'symlink', target: n.target };
    return { ...common, kind: 'file', size: n.size, ...(n.upper !== undefined ? { upper: n.upper } : {}), ...(n.copiedFrom !== undefined ? { from: n.copiedFrom } : {}), ...(n.extents ? { extents: true } : {}) };
  });
}

/** Rebuilds a namespace's tree from snapshot records (the first records of a compacted journal). */
export class SnapshotLoader {
  private readonly records: SnapshotRecord[] = [];

  constructor(private readonly ns: Namespace) {}

  get loaded(): boolean {
    return this.records.length > 0;
  }

  add(r: SnapshotRecord): void {
    if (r.id !== this.records.length) throw corrupt(`node ${r.id} where node ${this.records.length} was expected`);
    this.records.push(r);
  }

  /** Wire the nodes together and make node 0 the namespace's root. */
  finish(): void {
    if (!this.records.length) return;
    const nodes = this.records.map((r): Node => {
      const meta: NodeMeta = { mode: r.mode, mtimeMs: r.mtimeMs, ...(r.uid !== undefined ? { uid: r.uid } : {}), ...(r.gid !== undefined ? { gid: r.gid } : {}) };
      if (r.kind === 'dir') return { kind: 'dir', base: r.base, children: new Map(), links: [], meta } satisfies DirNode;
      if (r.kind === 'symlink') return { kind: 'symlink', target: r.target, base: r.base, links: [], meta } satisfies SymlinkNode;
      return { kind: 'file', base: r.base, upper: r.upper, copiedFrom: r.from, extents: r.extents || undefined, size: r.size, links: [], meta } satisfies FileNode;
    });
    const node = (id: number | null, what: string) => {
      const n = id === null ? undefined : nodes[id];
      if (!n) throw corrupt(`${what} names node ${id}, which the snapshot does not have`);
      return n;
    };
    if (nodes[0].kind !== 'dir' || this.records[0].links.length) throw corrupt('node 0 is not the root directory');
    this.records.forEach((r, i) => {
      const n = nodes[i];
      for (const [parent, name] of r.links) {
        const dir = node(parent, `node ${i}'s name ${name}`);
        if (dir.kind !== 'dir') throw corrupt(`node ${i}'s name ${name} is in node ${parent}, which is not a directory`);
        n.links.push({ parent: dir, name });
      }
      if (r.kind === 'dir') {
        const dir = n as DirNode;
        for (const [name, c] of r.children) dir.children.set(name, c === null ? null : node(c, `directory ${i}'s entry ${name}`));
      }
    });
    const root = nodes[0] as DirNode;
    this.ns.root.base = root.base;
    this.ns.root.meta = root.meta;
    this.ns.root.children = root.children;
    // Names inside the root point at the root object the namespace already has.
    for (const n of nodes) for (const l of n.links) if (l.parent === root) l.parent = this.ns.root;
  }
}

function corrupt(msg: string): HexzError {
  return new HexzError('CORRUPT', `the workspace journal's snapshot is inconsistent: ${msg}`);
}
