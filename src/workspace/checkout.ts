/**
 * `hexz checkout ARCHIVE DIR`: a writable copy of an archive's tree in DIR, plus the state that lets
 * `status` and `commit` compare it with the archive later (./state.ts).
 *
 * The files are materialised (extracted, holes kept sparse), so the workspace is an ordinary
 * directory every tool can write to; `hexz mount` is the way to read an archive without copying it.
 * The index is built from the archive's chunk references (no chunk data is read twice) and the stat
 * of each extracted file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HexzError, toHexzError } from '../errors.js';
import { extractArchive, type ExtractSummary } from '../extract.js';
import type { Archive } from '../reader/archive.js';
import { digestFromRefs, digestOfTarget } from './digest.js';
import { RACY_NS, STATE_DIR, writeWorkspace, type IndexEntry, type WorkspaceState } from './state.js';
import { indexEntryOf } from './status.js';

export interface CheckoutOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

export interface CheckoutSummary extends ExtractSummary {
  archive: string;
  uuid: string;
}

/** The workspace state describing `archive` as HEAD. */
export function stateFor(archive: Archive, previous?: WorkspaceState): WorkspaceState {
  const now = new Date().toISOString();
  const t = archive.trailer;
  return {
    version: 1,
    head: { url: archive.url, uuid: archive.uuid, rootHash: Buffer.from(archive.rootHash).toString('hex') },
    kind: archive.isSingleFile ? 'file' : 'directory',
    encrypted: archive.encrypted,
    chunking: archive.root.chunking,
    ...(archive.encrypted
      ? {
          kdf: { kind: t.kdf.kind as 1 | 2, log2N: t.kdf.log2N, r: t.kdf.r, p: t.kdf.p, salt: Buffer.from(t.kdf.salt).toString('hex') },
          keyCheck: Buffer.from(t.keyCheck).toString('hex'),
        }
      : {}),
    checkedOut: previous?.checkedOut ?? now,
    updated: now,
  };
}

async function ensureEmptyDir(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    const e = toHexzError(err, { path: dir });
    if (e.code === 'PATH_NOT_FOUND') return;
    if (e.code === 'NOT_A_DIRECTORY') throw new HexzError('EXISTS', `${dir} exists and is not a directory`, { path: dir });
    throw e;
  }
  if (names.length > 0) throw new HexzError('EXISTS', `${dir} is not empty: a workspace is checked out into a new or empty directory`, { path: dir });
}

/** Check `archive` out into `dir` (new or empty). */
export async function checkout(archive: Archive, dir: string, opts: CheckoutOptions = {}): Promise<CheckoutSummary> {
  const root = path.resolve(dir);
  await ensureEmptyDir(root);
  if (await archive.lookup(STATE_DIR)) {
    throw new HexzError('UNSAFE_PATH', `${archive.url} has a top-level ${STATE_DIR}, the name of a workspace's state directory: extract it instead`, { path: STATE_DIR });
  }
  const summary = await extractArchive(archive, root, { signal: opts.signal, onProgress: opts.onProgress });

  // Files were just written: their ctimes are "now". Let the racy window pass so the index can trust
  // these stats (a later change gets a later ctime), instead of re-hashing everything on first status.
  await sleep(Number(RACY_NS / 1_000_000n) + 10);
  const now = BigInt(Date.now()) * 1_000_000n;
  const index: IndexEntry[] = [];
  for await (const e of archive.walk()) {
    const file = path.join(root, ...e.path.split('/'));
    let st;
    try {
      st = await fs.lstat(file, { bigint: true });
    } catch (err) {
      throw toHexzError(err, { path: file });
    }
    const digest = e.type === 'file' ? (await digestFromRefs(archive.fileRefs(e))).digest : e.type === 'symlink' ? digestOfTarget(e.target ?? '') : undefined;
    index.push(
      indexEntryOf(
        { path: e.path, source: file, type: e.type, mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, size: e.type === 'file' ? Number(st.size) : e.size, allocated: 0, target: e.target },
        digest,
        now,
      ),
    );
  }
  await writeWorkspace(root, stateFor(archive), index);
  return { ...summary, archive: archive.url, uuid: archive.uuid };
}
