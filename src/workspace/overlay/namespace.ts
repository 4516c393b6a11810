/**
 * The namespace of a writable overlay workspace (docs/workspaces.md): what the tree looks like now,
 * as a small in-memory tree of the paths that were touched, over the archive it was checked out from
 * (the *lower* layer, HEAD). Pure: no file I/O; the lower layer comes in as a two-function interface,
 * and every mutation is a `NamespaceRecord` — the same records the journal stores — so replaying
 * the journal after a crash rebuilds exactly the tree the mount had (`apply`).
 *
 * The model (overlayfs', with its redirects, kept in memory):
 * - A directory node may have a `base`: the HEAD directory whose entries show through it. A renamed
 *   HEAD directory is a node at the new path with the old path as its base (overlayfs'
 *   `redirect_dir`): nothing below it is copied or even listed. A directory made by mkdir, or one
 *   recreated after rmdir, has no base (overlayfs' opaque directory).
 * - `children` overrides names of the base: a node, or `null`, a whiteout (the name is gone).
 * - A file node shows either HEAD content (`base`: the HEAD path its bytes are at) or an upper file
 *   (`upper`: its name in the workspace's upper directory). `copiedFrom` remembers the HEAD path a
 *   copy-up started from, so status compares chunk ids of that file only.
 * - Hard links are two names of one node object.
 * - Nodes the mount merely looked at are attached too (`materialize`); they mean no change and
 *   status skips them, so the explicit tree is the dirty set: O(changed), never a walk of HEAD.
 */
import { HexzError } from '../../errors.js';
import type { FileEntry } from '../../format/file-table.js';

/** The lower layer: HEAD's entries by path ('' is the root). */
export interface Lower {
  lookup(path: string): Promise<FileEntry | undefined>;
  /** The entries directly inside a directory. */
  list(path: string): Promise<FileEntry[]>;
}

/** Attributes a node carries itself (an upper file's size and times live in the upper file). */
export interface NodeMeta {
  /** Permission bits (no type bits). */
  mode: number;
  mtimeMs: number;
  uid?: number;
  gid?: number;
}

export interface Link {
  parent: DirNode;
  name: string;
}

export interface DirNode {
  kind: 'dir';
  base?: string;
  children: Map<string, Node | null>;
  links: Link[];
  meta: NodeMeta;
}

export interface FileNode {
  kind: 'file';
  /** HEAD path whose content this file shows (until it is copied up). */
  base?: string;
  /** Name of the upper file holding its content. */
  upper?: string;
  /** The HEAD path the upper content was copied from (status: compare with it). */
  copiedFrom?: string;
  /** Copied up by extent: the upper file is sparse, `<upper>.map` says which extents it holds (./extents.ts). */
  extents?: boolean;
  /** Size of HEAD content (an upper file's size is the upper file's). */
  size: number;
  links: Link[];
  meta: NodeMeta;
}

export interface SymlinkNode {
  kind: 'symlink';
  target: string;
  /** HEAD path it was (unchanged), if any. */
  base?: string;
  links: Link[];
  meta: NodeMeta;
}

export type Node = DirNode | FileNode | SymlinkNode;

/** What a path resolves to: a node of the tree, or an entry of HEAD not attached yet. */
export type Found = { node: Node; lower?: undefined } | { node?: undefined; lower: FileEntry };

/**
 * One mutation, as the journal stores it. Times are ms since the epoch; `t` is the time of the
 * operation (directory mtimes). `content`: the file at `path` now has upper content `upper`,
 * copied from HEAD path `from` (absent: emptied, as by O_TRUNC), whole or by extent (`extents`).
 */
export type NamespaceRecord =
  | { op: 'mkdir'; path: string; mode: number; t: number }
  | { op: 'create'; path: string; upper: string; mode: number; t: number }
  | { op: 'content'; path: string; upper: string; from?: string; extents?: boolean; t: number }
  | { op: 'symlink'; path: string; target: string; t: number }
  | { op: 'unlink'; path: string; t: number }
  | { op: 'rmdir'; path: string; t: number }
  | { op: 'rename'; from: string; to: string; flags: number; t: number }
  | { op: 'link'; from: string; to: string; t: number }
  | { op: 'attr'; path: string; mode?: number; mtimeMs?: number; uid?: number; gid?: number; t: number };

/** renameat2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

function fsError(code: 'PATH_NOT_FOUND' | 'EXISTS' | 'NOT_A_DIRECTORY' | 'NOT_A_FILE' | 'NOT_EMPTY' | 'INVALID_ARGUMENT' | 'PERMISSION', path: string, what: string): HexzError {
  return new HexzError(code, `${what}: ${path || '/'}`, { path });
}

export function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

function split(path: string): { parent: string; name: string } {
  const i = path.lastIndexOf('/');
  return i < 0 ? { parent: '', name: path } : { parent: path.slice(0, i), name: path.slice(i + 1) };
}

function metaOf(e: FileEntry): NodeMeta {
  return { mode: e.mode & 0o7777, mtimeMs: e.mtimeNs > 0n ? Number(e.mtimeNs / 1_000_000n) : 0 };
}

/** A node standing for an entry of HEAD, unchanged. */
export function nodeOfLower(e: FileEntry): Node {
  const meta = metaOf(e);
  if (e.type === 'directory') return { kind: 'dir', base: e.path, children: new Map(), links: [], meta };
  if (e.type === 'symlink') return { kind: 'symlink', target: e.target ?? '', base: e.path, links: [], meta };
  return { kind: 'file', base: e.path, size: e.size, links: [], meta };
}

function attach(parent: DirNode, name: string, node: Node): void {
  parent.children.set(name, node);
  node.links.push({ parent, name });
}

function detach(node: Node, parent: DirNode, name: string, orphans?: Node[]): void {
  const i = node.links.findIndex((l) => l.parent === parent && l.name === name);
  if (i >= 0) node.links.splice(i, 1);
  if (node.links.length === 0) orphans?.push(node);
}

/** The overlay tree over one HEAD. */
export class Namespace {
  readonly root: DirNode;
  /** Nodes that lost their last name since `takeOrphans` (their upper files can go). */
  private orphans: Node[] = [];

  constructor(readonly lower: Lower, rootMeta: NodeMeta) {
    this.root = { kind: 'dir', base: '', children: new Map(), links: [], meta: rootMeta };
  }

  /** File nodes with upper content that no name reaches any more (removing a directory orphans what it held). */
  takeOrphans(): FileNode[] {
    const out: FileNode[] = [];
    const visit = (n: Node) => {
      if (n.links.length > 0) return;
      if (n.kind === 'file' && n.upper) out.push(n);
      if (n.kind === 'dir') for (const c of n.children.values()) if (c) visit(c);
    };
    for (const n of this.orphans) visit(n);
    this.orphans = [];
    return out;
  }

  /** The current path of a node (its first name), or undefined when it has no name any more. */
  pathOf(node: Node): string | undefined {
    if (node === this.root) return '';
    const l = node.links[0];
    if (!l) return undefined;
    const dir = this.pathOf(l.parent);
    return dir === undefined ? undefined : joinPath(dir, l.name);
  }

  /** Resolve a path without changing anything; undefined when it does not exist. */
  async find(path: string): Promise<Found | undefined> {
    if (path === '') return { node: this.root };
    const parts = path.split('/');
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      const c = dir.children.get(parts[i]);
      if (c === null) return undefined;
      if (c === undefined) {
        if (dir.base === undefined) return undefined;
        // Everything below is HEAD's: one lookup for the rest of the path.
        const e = await this.lower.lookup(joinPath(dir.base, parts.slice(i).join('/')));
        return e ? { lower: e } : undefined;
      }
      if (i === parts.length - 1) return { node: c };
      if (c.kind !== 'dir') return undefined;
      dir = c;
    }
    return undefined;
  }

  /** The node at `path`, attached to the tree (HEAD entries on the way become unchanged nodes). */
  async materialize(path: string): Promise<Node> {
    if (path === '') return this.root;
    const parts = path.split('/');
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      let c = dir.children.get(parts[i]);
      if (c === null) throw fsError('PATH_NOT_FOUND', path, 'no such file or directory');
      if (c === undefined) {
        const e = dir.base === undefined ? undefined : await this.lower.lookup(joinPath(dir.base, parts[i]));
        if (!e) throw fsError('PATH_NOT_FOUND', path, 'no such file or directory');
        // Another mutation may have attached it meanwhile (lookups are async): use that one.
        const again = dir.children.get(parts[i]);
        if (again === null) throw fsError('PATH_NOT_FOUND', path, 'no such file or directory');
        c = again ?? nodeOfLower(e);
        if (!again) attach(dir, parts[i], c);
      }
      if (i === parts.length - 1) return c;
      if (c.kind !== 'dir') throw fsError('NOT_A_DIRECTORY', path, 'not a directory');
      dir = c;
    }
    throw fsError('PATH_NOT_FOUND', path, 'no such file or directory');
  }

  /** The directory a new name goes into, and whether the name exists there now. */
  private async parentOf(path: string): Promise<{ dir: DirNode; name: string; existing?: Found }> {
    if (path === '') throw fsError('INVALID_ARGUMENT', path, 'the root has no parent');
    const { parent, name } = split(path);
    const dir = await this.materialize(parent);
    if (dir.kind !== 'dir') throw fsError('NOT_A_DIRECTORY', parent, 'not a directory');
    return { dir, name, existing: await this.childOf(dir, name) };
  }

  /** A name inside a directory node. */
  async childOf(dir: DirNode, name: string): Promise<Found | undefined> {
    const c = dir.children.get(name);
    if (c === null) return undefined;
    if (c) return { node: c };
    if (dir.base === undefined) return undefined;
    const e = await this.lower.lookup(joinPath(dir.base, name));
    return e ? { lower: e } : undefined;
  }

  /** Names in a directory now: HEAD's through its base, minus whiteouts, plus its own nodes. */
  async list(dir: DirNode): Promise<Array<{ name: string; found: Found }>> {
    const out: Array<{ name: string; found: Found }> = [];
    if (dir.base !== undefined) {
      for (const e of await this.lower.list(dir.base)) {
        const name = e.path.slice(e.path.lastIndexOf('/') + 1);
        if (!dir.children.has(name)) out.push({ name, found: { lower: e } });
      }
    }
    for (const [name, c] of dir.children) if (c) out.push({ name, found: { node: c } });
    return out;
  }

  /** Is the directory empty now? */
  async isEmpty(dir: DirNode): Promise<boolean> {
    for (const c of dir.children.values()) if (c) return false;
    if (dir.base === undefined) return true;
    for (const e of await this.lower.list(dir.base)) if (!dir.children.has(e.path.slice(e.path.lastIndexOf('/') + 1))) return false;
    return true;
  }

  /** Hide a name: a whiteout when HEAD has it under the directory's base, else just forget it. */
  private async remove(dir: DirNode, name: string): Promise<void> {
    const c = dir.children.get(name);
    if (c) detach(c, dir, name, this.orphans);
    const inLower = dir.base !== undefined && (await this.lower.lookup(joinPath(dir.base, name))) !== undefined;
    if (inLower) dir.children.set(name, null);
    else dir.children.delete(name);
  }

  /**
   * Check a record against the tree and apply it; throws (and changes nothing visible) when the
   * operation is not allowed — the FUSE layer answers that errno. Replay applies the journal's
   * records through here too.
   */
  async apply(r: NamespaceRecord): Promise<void> {
    switch (r.op) {
      case 'mkdir':
      case 'create':
      case 'symlink': {
        const { dir, name, existing } = await this.parentOf(r.path);
        if (existing) throw fsError('EXISTS', r.path, 'exists');
        const meta = { mode: r.op === 'symlink' ? 0o777 : r.mode & 0o7777, mtimeMs: r.t };
        const node: Node =
          r.op === 'mkdir'
            ? { kind: 'dir', children: new Map(), links: [], meta }
            : r.op === 'create'
              ? { kind: 'file', upper: r.upper, size: 0, links: [], meta }
              : { kind: 'symlink', target: r.target, links: [], meta };
        // Over a whiteout of a name HEAD has, a new directory is opaque: it has no base.
        attach(dir, name, node);
        dir.meta.mtimeMs = r.t;
        return;
      }
      case 'content': {
        const node = await this.materialize(r.path);
        if (node.kind !== 'file') throw fsError('NOT_A_FILE', r.path, 'not a regular file');
        node.upper = r.upper;
        node.copiedFrom = r.from;
        node.extents = r.extents && r.from !== undefined ? true : undefined;
        node.base = undefined;
        return;
      }
      case 'unlink':
      case 'rmdir': {
        const { dir, name, existing } = await this.parentOf(r.path);
        if (!existing) throw fsError('PATH_NOT_FOUND', r.path, 'no such file or directory');
        const type = existing.node ? existing.node.kind : existing.lower.type === 'directory' ? 'dir' : 'file';
        if (r.op === 'unlink' && type === 'dir') throw fsError('NOT_A_FILE', r.path, 'is a directory');
        if (r.op === 'rmdir') {
          if (type !== 'dir') throw fsError('NOT_A_DIRECTORY', r.path, 'not a directory');
          const node = existing.node ?? (await this.materialize(r.path));
          if (!(await this.isEmpty(node as DirNode))) throw fsError('NOT_EMPTY', r.path, 'directory not empty');
        }
        await this.remove(dir, name);
        dir.meta.mtimeMs = r.t;
        return;
      }
      case 'rename':
        return this.rename(r);
      case 'link': {
        const node = await this.materialize(r.from);
        if (node.kind === 'dir') throw fsError('PERMISSION', r.from, 'hard links to directories are not allowed');
        const { dir, name, existing } = await this.parentOf(r.to);
        if (existing) throw fsError('EXISTS', r.to, 'exists');
        if (!dir.children.has(name) && dir.base !== undefined && (await this.lower.lookup(joinPath(dir.base, name)))) dir.children.set(name, null);
        attach(dir, name, node);
        dir.meta.mtimeMs = r.t;
        return;
      }
      case 'attr': {
        const node = await this.materialize(r.path);
        if (r.mode !== undefined) node.meta.mode = r.mode & 0o7777;
        if (r.mtimeMs !== undefined) node.meta.mtimeMs = r.mtimeMs;
        if (r.uid !== undefined) node.meta.uid = r.uid;
        if (r.gid !== undefined) node.meta.gid = r.gid;
        return;
      }
    }
  }

  /** rename(2) and renameat2's NOREPLACE/EXCHANGE: moves nodes, never data. */
  private async rename(r: Extract<NamespaceRecord, { op: 'rename' }>): Promise<void> {
    if (r.from === r.to) return;
    if (r.to.startsWith(`${r.from}/`)) throw fsError('INVALID_ARGUMENT', r.to, 'cannot move a directory into itself');
    const src = await this.parentOf(r.from);
    if (!src.existing) throw fsError('PATH_NOT_FOUND', r.from, 'no such file or directory');
    const node = src.existing.node ?? (await this.materialize(r.from));
    const dst = await this.parentOf(r.to);
    const exchange = (r.flags & RENAME_EXCHANGE) !== 0;
    if (dst.existing && r.flags & RENAME_NOREPLACE) throw fsError('EXISTS', r.to, 'exists');
    if (exchange && !dst.existing) throw fsError('PATH_NOT_FOUND', r.to, 'no such file or directory');
    let over: Node | undefined;
    if (dst.existing) {
      over = dst.existing.node ?? (await this.materialize(r.to));
      if (over === node) return; // two names of one file: rename does nothing
      if (!exchange) {
        if (node.kind === 'dir' && over.kind !== 'dir') throw fsError('NOT_A_DIRECTORY', r.to, 'not a directory');
        if (node.kind !== 'dir' && over.kind === 'dir') throw fsError('NOT_A_FILE', r.to, 'is a directory');
        if (over.kind === 'dir' && !(await this.isEmpty(over))) throw fsError('NOT_EMPTY', r.to, 'directory not empty');
      }
    }
    // The parents may have been re-read above; both are attached nodes by now.
    const inLowerAt = async (dir: DirNode, name: string) => dir.base !== undefined && (await this.lower.lookup(joinPath(dir.base, name))) !== undefined;
    const srcLower = await inLowerAt(src.dir, src.name);
    const dstLower = await inLowerAt(dst.dir, dst.name);
    detach(node, src.dir, src.name);
    if (over) detach(over, dst.dir, dst.name, exchange ? undefined : this.orphans);
    if (exchange && over) {
      src.dir.children.set(src.name, over);
      over.links.push({ parent: src.dir, name: src.name });
    } else if (srcLower) src.dir.children.set(src.name, null);
    else src.dir.children.delete(src.name);
    if (dstLower && !dst.dir.children.has(dst.name)) dst.dir.children.set(dst.name, null);
    attach(dst.dir, dst.name, node);
    src.dir.meta.mtimeMs = r.t;
    dst.dir.meta.mtimeMs = r.t;
  }
}
