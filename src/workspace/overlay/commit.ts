/**
 * `hexz commit OUT` of an overlay workspace: a thin delta of HEAD that reads only the upper files.
 * Every other file's chunk references come from HEAD's index (the packer's `reuse`), so untouched
 * files — renamed ones included — cost no read at all; the file table is listed from the namespace
 * and HEAD's index, never from the mount.
 *
 * Then, as one step, HEAD advances and the overlay empties: the next generation's empty journal and
 * upper directory are made, and config.json is replaced (fsync'd rename) to name the new HEAD and
 * that generation — the commit point (./store.ts). A crash before it leaves the old HEAD with every
 * change still in the overlay (the written archive is an orphan; committing again writes it anew); a
 * crash after it leaves the new HEAD and a stale generation that the next open deletes. The whole
 * commit runs with the workspace frozen (`OverlaySession.exclusive`): reads go on, changes wait, and
 * a file open for writing refuses the commit (WORKSPACE_BUSY).
 *
 * Interrupted (`signal`: Ctrl-C of `hexz commit`, also when the server runs it) while the archive is
 * being written, the commit stops, the partial output is removed by its writer and the workspace is
 * as it was. Once the archive is complete the few steps to the commit point run regardless: the
 * work is kept and reported, not thrown away.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CodecName } from '../../codecs/index.js';
import type { KeySource } from '../../crypto/keys.js';
import { HexzError } from '../../errors.js';
import { sortKey, type FileEntry } from '../../format/file-table.js';
import type { FileHandle } from 'node:fs/promises';
import type { ChunkRef } from '../../format/chunk-index.js';
import { pack, type PackOptions, type PackSummary, type ReusedPieces } from '../../packer/pack.js';
import { DISK_ENTRY, type InputEntry, type WalkedInput } from '../../packer/walk.js';
import type { Archive } from '../../reader/archive.js';
import { stateFor } from '../checkout.js';
import { workspaceIdFunction } from '../status.js';
import type { WorkspaceHead } from '../state.js';
import { planFile } from './extents.js';
import { joinPath, type DirNode, type FileNode } from './namespace.js';
import type { OverlaySession } from './session.js';
import { pauseAt } from './pause.js';
import { overlayStatus, type OverlayStatus } from './status.js';
import { generationDir, upperDir, writeConfig } from './store.js';

export interface OverlayCommitOptions extends Pick<PackOptions, 'level' | 'threads' | 'storage' | 'baseDir' | 'baseMap' | 'onWarning' | 'signal' | 'user' | 'overwrite' | 'signKey' | 'trustedKeys'> {
  compression?: CodecName;
  key?: KeySource;
  allowEmpty?: boolean;
  /** Open the archive just written (it becomes HEAD). */
  openHead: (location: string) => Promise<Archive>;
}

export interface OverlayCommitSummary {
  status: OverlayStatus;
  pack: PackSummary;
  /** Bytes of the workspace the commit read: whole upper files, changed ranges of extent-mapped ones (the rest came from HEAD's index). */
  upperBytes: number;
  from: WorkspaceHead;
  to: WorkspaceHead;
}

const nsOf = (ms: number) => BigInt(Math.round(ms)) * 1_000_000n;

/** The whole tree as the packer's input, and for each file showing HEAD content its HEAD path. */
export async function overlayTree(s: OverlaySession): Promise<{ entries: InputEntry[]; reuse: Map<string, string>; extents: Map<string, FileNode>; upperBytes: number }> {
  const ns = s.namespace;
  const entries: InputEntry[] = [];
  const reuse = new Map<string, string>();
  /** Files copied up by extent: read only where they changed (./extents.ts). */
  const extents = new Map<string, FileNode>();
  let upperBytes = 0;
  const blank = { source: '', allocated: 0, ctimeNs: 0n, ino: 0n };
  const addLower = (e: FileEntry, p: string) => {
    entries.push({ ...blank, path: p, type: e.type, mode: e.mode & 0o7777, mtimeNs: e.mtimeNs, size: e.size, target: e.target });
    if (e.type === 'file') reuse.set(p, e.path);
  };
  const addSubtree = async (dir: string, p: string) => {
    const { entries: below } = await s.archive.list(dir, { recursive: true });
    for (const e of below) if (e.path !== dir) addLower(e, p + e.path.slice(dir.length));
  };
  // A node keeps HEAD's nanosecond mtime unless it was set since (nodes carry milliseconds).
  const mtimeOf = async (base: string | undefined, ms: number) => {
    const e = base === undefined ? undefined : await ns.lower.lookup(base);
    return e && (e.mtimeNs > 0n ? Number(e.mtimeNs / 1_000_000n) : 0) === ms ? e.mtimeNs : nsOf(ms);
  };
  const visit = async (dir: DirNode, at: string) => {
    for (const { name, found } of await ns.list(dir)) {
      const p = joinPath(at, name);
      if (found.lower) {
        addLower(found.lower, p);
        if (found.lower.type === 'directory') await addSubtree(found.lower.path, p);
        continue;
      }
      const n = found.node;
      if (n.kind === 'dir') {
        entries.push({ ...blank, path: p, type: 'directory', mode: n.meta.mode, mtimeNs: await mtimeOf(n.base, n.meta.mtimeMs), size: 0 });
        await visit(n, p);
      } else if (n.kind === 'symlink') {
        entries.push({ ...blank, path: p, type: 'symlink', mode: n.meta.mode, mtimeNs: await mtimeOf(n.base, n.meta.mtimeMs), size: Buffer.byteLength(n.target), target: n.target });
      } else if (n.upper) {
        const source = s.upperPath(n.upper);
        const st = await fs.stat(source, { bigint: true });
        if (n.extents) extents.set(p, n);
        else upperBytes += Number(st.size);
        entries.push({ ...blank, source, path: p, type: 'file', mode: n.meta.mode, mtimeNs: st.mtimeNs, size: Number(st.size), allocated: Number(st.blocks) * 512 });
      } else {
        entries.push({ ...blank, path: p, type: 'file', mode: n.meta.mode, mtimeNs: await mtimeOf(n.base, n.meta.mtimeMs), size: n.size });
        reuse.set(p, n.base!);
      }
    }
  };
  await visit(ns.root, '');
  const keyed = entries.map((e) => ({ key: sortKey(e.path), e }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return { entries: keyed.map((k) => k.e), reuse, extents, upperBytes };
}

/** Commit the workspace of `s` to `output` and advance its HEAD (see the top of this file). */
export async function commitOverlay(s: OverlaySession, output: string, opts: OverlayCommitOptions): Promise<OverlayCommitSummary> {
  const { allowEmpty, openHead, key, ...packOpts } = opts;
  return s.exclusive('commit', async () => {
    const cfg = s.config;
    const status = await overlayStatus(s, () => workspaceIdFunction({ root: cfg.mountpoint, state: cfg }, key));
    if (status.clean && !allowEmpty) {
      throw new HexzError('NOTHING_TO_COMMIT', `nothing to commit: ${cfg.mountpoint} matches ${cfg.head.url}`, { path: cfg.mountpoint, remedy: 'allow-empty' });
    }
    const tree = await overlayTree(s);
    let walked: WalkedInput;
    if (cfg.kind === 'file') {
      const disk = tree.entries.filter((e) => e.path === DISK_ENTRY && e.type === 'file');
      if (tree.entries.length !== 1 || disk.length !== 1) {
        throw new HexzError('INVALID_ARGUMENT', `the workspace of a single-file archive holds exactly one file, ${DISK_ENTRY}; found ${tree.entries.map((e) => e.path).slice(0, 3).join(', ') || 'nothing'}`, { path: cfg.mountpoint });
      }
      walked = { kind: 'file', name: DISK_ENTRY, entries: disk, totalBytes: disk[0].size };
    } else {
      walked = { kind: 'directory', name: path.basename(cfg.mountpoint), entries: tree.entries, totalBytes: tree.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0) };
    }
    const open: FileHandle[] = [];
    let upperBytes = tree.upperBytes;
    /** An extent-mapped file: HEAD's chunks where no extent changed, the changed ranges read. */
    const pieces = async (node: FileNode, size: number, head: Archive): Promise<ReusedPieces | undefined> => {
      const entry = await head.lookup(node.copiedFrom!);
      if (entry?.type !== 'file') return undefined;
      const refs: ChunkRef[] = [];
      for await (const r of head.fileRefs(entry)) refs.push(r);
      const map = await s.extentMap(node);
      const fh = await fs.open(s.upperPath(node.upper!), 'r');
      open.push(fh);
      const lower = s.lowerReader(node);
      const plan = planFile(refs, map.dirtyRanges(size), size);
      for (const piece of plan) if (piece.kind === 'read') upperBytes += piece.end - piece.start;
      return {
        pieces: plan,
        read: async (buf, at, n, pos) => {
          await map.read(buf, at, n, pos, fh, lower);
          return n;
        },
      };
    };
    const summary = await pack(cfg.mountpoint, output, {
      ...packOpts,
      bases: [cfg.head.url],
      key,
      encrypt: cfg.encrypted,
      walked,
      reuse: async (e, bases) => {
        await pauseAt('commit-reading', opts.signal);
        const mapped = tree.extents.get(e.path);
        if (mapped) return pieces(mapped, e.size, bases[0]);
        const from = tree.reuse.get(e.path);
        if (from === undefined) return undefined;
        const entry = await bases[0].lookup(from);
        return entry?.type === 'file' && entry.size === e.size ? bases[0].fileRefs(entry) : undefined;
      },
    }).finally(() => Promise.all(open.map((fh) => fh.close().catch(() => {}))));

    const created = await openHead(summary.output);
    const generation = cfg.generation + 1;
    await fs.mkdir(upperDir(s.dir, generation), { recursive: true });
    const next = { ...cfg, ...stateFor(created, cfg), generation };
    await pauseAt('commit-written');
    await writeConfig(s.dir, next); // the commit point
    await pauseAt('commit-point');
    await s.advance(next, created);
    await fs.rm(generationDir(s.dir, cfg.generation), { recursive: true, force: true });
    return { status, pack: summary, upperBytes, from: cfg.head, to: next.head };
  });
}
