/**
 * An open overlay workspace: its config, HEAD (the lower layer, an open `Archive`), the namespace
 * rebuilt from the journal, and the upper directory. The FUSE operations (fuse/overlay-ops.ts),
 * status and commit (./status.ts, ./commit.ts) all work through one session, in the process that
 * serves the mount — or, for a workspace that is not mounted, in the CLI process itself.
 *
 * Rules it keeps (docs/workspaces.md):
 * - Mutations run one at a time (`mutate`): check and apply to the namespace, then queue the record
 *   on the journal in the same order; the caller is answered once the record is durable.
 * - Copy-up streams HEAD's bytes into `upper/.tmp-<name>` piece by piece (holes stay holes), fsyncs,
 *   renames it to `upper/<name>`, fsyncs the directory and only then journals `content`: a crash
 *   leaves a temp file (deleted at the next open), never a half-copied file taken as copied. At most
 *   `MAX_COPY_UPS` run at once; each awaits every piece, so reads of untouched files keep being served.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { HexzError, toHexzError } from '../../errors.js';
import type { FileEntry } from '../../format/file-table.js';
import type { Archive } from '../../reader/archive.js';
import { ExtentMap, EXTENT_COPY_UP_MIN, type LowerRead } from './extents.js';
import { Journal, type JournalRecord } from './journal.js';
import { Namespace, type FileNode, type Lower, type NamespaceRecord } from './namespace.js';
import { pauseAt } from './pause.js';
import { isSnapshotRecord, SnapshotLoader, snapshotRecords } from './snapshot.js';
import { cleanGenerations, fsyncDir, journalFile, readConfig, upperDir, type OverlayConfig } from './store.js';

/** Copy-ups running at once: enough to overlap a few editors, few enough to bound memory and I/O. */
export const MAX_COPY_UPS = 4;
/** HEAD lookups and directory listings kept (HEAD never changes under a session). */
const LOWER_CACHE_ENTRIES = 100_000;
const LIST_CACHE_ENTRIES = 2_000;
/**
 * Journal compaction (./snapshot.ts): never below this many lines (replaying 10,000 records takes a
 * fraction of a second), and only when the journal holds COMPACT_RATIO times the lines of a snapshot.
 */
export const COMPACT_MIN_LINES = 10_000;
const COMPACT_RATIO = 2;

const MISSING = Symbol('missing');

/** HEAD as the namespace's lower layer, with lookups and listings cached and shared while in flight. */
export function archiveLower(archive: Archive): Lower {
  const lookups = new LRUCache<string, Promise<FileEntry | typeof MISSING>>({ max: LOWER_CACHE_ENTRIES });
  const lists = new LRUCache<string, Promise<FileEntry[]>>({ max: LIST_CACHE_ENTRIES });
  return {
    async lookup(p) {
      let hit = lookups.get(p);
      if (!hit) {
        hit = archive.lookup(p).then((e) => e ?? MISSING);
        lookups.set(p, hit);
        hit.catch(() => lookups.delete(p));
      }
      const e = await hit;
      return e === MISSING ? undefined : e;
    },
    list(p) {
      let hit = lists.get(p);
      if (!hit) {
        hit = archive.list(p).then((r) => r.entries);
        lists.set(p, hit);
        hit.catch(() => lists.delete(p));
      }
      return hit;
    },
  };
}

export interface SessionOptions {
  /** Open the journal for appending (the mount, a commit); false: read-only (status of an unmounted workspace). */
  writable: boolean;
  /** Files from this size copy up by extent (default EXTENT_COPY_UP_MIN). */
  extentCopyUpMin?: number;
  /** Journals are considered for compaction from this many lines (default COMPACT_MIN_LINES). */
  compactMinLines?: number;
}

export class OverlaySession {
  namespace!: Namespace;
  private journal?: Journal;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly copying = new Map<FileNode, Promise<void>>();
  private copySlots = MAX_COPY_UPS;
  private readonly copyWaiters: Array<() => void> = [];
  /** Bytes copied up since the session opened (status and tests report it). */
  copiedBytes = 0;
  /** Files open for writing (a commit waits for none). */
  writers = 0;
  /** Nodes copied up, by the HEAD path they came from: handles opened on HEAD's entry read them. */
  readonly byOrigin = new Map<string, FileNode>();
  private paused?: Promise<void>;
  /** Set by `hexz workspaces --forget` just before it unmounts: no commit may start any more. */
  private retired = false;
  private readonly maps = new Map<string, Promise<ExtentMap>>();
  /** Lines the journal held when opened (or after its last compaction). */
  private linesAtOpen = 0;
  private nextCompactionCheck = Infinity;
  /** Compactions of the journal since the session opened (tests report it). */
  compactions = 0;

  private constructor(
    readonly dir: string,
    public config: OverlayConfig,
    public archive: Archive,
    private readonly extentMin: number,
    private readonly compactMin: number,
  ) {}

  /** Open the workspace in `dir` over `archive` (its HEAD) and replay its journal. */
  static async open(dir: string, archive: Archive, opts: SessionOptions): Promise<OverlaySession> {
    const config = await readConfig(dir);
    if (archive.uuid !== config.head.uuid) {
      throw new HexzError('BASE_MISMATCH', `the workspace's HEAD is ${config.head.uuid}, but ${archive.url} is ${archive.uuid}`, { archive: archive.url, path: dir });
    }
    const s = new OverlaySession(dir, config, archive, opts.extentCopyUpMin ?? EXTENT_COPY_UP_MIN, opts.compactMinLines ?? COMPACT_MIN_LINES);
    if (opts.writable) await cleanGenerations(dir, config.generation);
    await s.start(opts.writable);
    return s;
  }

  private async start(writable: boolean): Promise<void> {
    const rootMeta = { mode: 0o755, mtimeMs: Date.parse(this.config.updated) || Date.now() };
    const rootEntry = await this.archive.lookup('');
    if (rootEntry) rootMeta.mode = rootEntry.mode & 0o7777 || 0o755;
    this.namespace = new Namespace(archiveLower(this.archive), rootMeta);
    const file = journalFile(this.dir, this.config.generation);
    let records: JournalRecord[];
    if (writable) ({ journal: this.journal, records } = await Journal.open(file));
    else records = await Journal.read(file);
    // A compacted journal starts with the snapshot of its tree; ordinary records follow it.
    const snapshot = new SnapshotLoader(this.namespace);
    let replayed = 0;
    for (const r of records) {
      try {
        if (isSnapshotRecord(r)) {
          if (replayed) throw new HexzError('CORRUPT', 'a snapshot record after ordinary ones');
          snapshot.add(r);
          continue;
        }
        if (replayed++ === 0) snapshot.finish();
        await this.namespace.apply(r);
      } catch (err) {
        // A record is journaled only after it applied; failing now means the journal and HEAD disagree.
        throw new HexzError('CORRUPT', `the workspace journal ${file} does not replay over HEAD (${toHexzError(err).message})`, { path: file }, { cause: err });
      }
    }
    if (replayed === 0) snapshot.finish();
    this.linesAtOpen = records.length;
    this.nextCompactionCheck = this.compactMin;
    if (this.journal) await this.serialize(() => this.compactIfWorth());
  }

  /** Lines in the journal file now. */
  get journalLines(): number {
    return this.linesAtOpen + (this.journal?.appended ?? 0);
  }

  /**
   * Rewrite the journal as a snapshot of the tree when it holds several times the lines the tree
   * needs (a history of creates and unlinks of files long gone). Runs in the mutation queue, so the
   * snapshot is exactly what the journal describes. Checked again only after as many new lines as the
   * journal (or the minimum) holds then, so compaction costs O(1) per mutation, amortised.
   */
  private async compactIfWorth(): Promise<void> {
    const lines = this.journalLines;
    if (!this.journal || lines < this.nextCompactionCheck) return;
    const records = snapshotRecords(this.namespace);
    if (lines >= COMPACT_RATIO * records.length) {
      await this.journal.rewrite(records);
      this.linesAtOpen = records.length;
      this.compactions++;
    }
    this.nextCompactionCheck = this.journalLines + Math.max(this.compactMin, this.journalLines);
  }

  get upper(): string {
    return upperDir(this.dir, this.config.generation);
  }

  upperPath(name: string): string {
    return path.join(this.upper, name);
  }

  /** Run `fn` after every mutation queued before it (one at a time, in order). */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Refuse every commit from now on, unless one runs already (then WORKSPACE_BUSY): the workspace's
   * state is about to be deleted (`hexz workspaces --forget`), and a commit that moved HEAD meanwhile
   * would be lost with it.
   */
  retire(): void {
    if (this.paused) throw new HexzError('WORKSPACE_BUSY', 'cannot forget the workspace: a commit is running (wait for it to end)', { path: this.dir });
    this.retired = true;
  }

  /** Wait while a commit runs (every change to the workspace does, reads never do). */
  async whenOpen(): Promise<void> {
    while (this.paused) await this.paused;
  }

  /**
   * Run `fn` with the workspace frozen: no file open for writing (else WORKSPACE_BUSY), queued
   * mutations done, new ones waiting until `fn` ends. Commit runs this way.
   */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.paused) throw new HexzError('WORKSPACE_BUSY', `cannot ${what}: a commit is running`, { path: this.dir });
    if (this.retired) throw new HexzError('WORKSPACE_BUSY', `cannot ${what}: the workspace is being forgotten`, { path: this.dir });
    let done!: () => void;
    this.paused = new Promise<void>((r) => (done = r));
    try {
      await this.serialize(async () => {});
      await Promise.all([...this.copying.values()].map((p) => p.catch(() => {})));
      if (this.writers > 0) {
        throw new HexzError('WORKSPACE_BUSY', `cannot ${what}: ${this.writers} file${this.writers === 1 ? ' is' : 's are'} open for writing in the workspace (close them first)`, { path: this.dir });
      }
      return await fn();
    } finally {
      this.paused = undefined;
      done();
    }
  }

  /** Apply a record and make it durable; rejects with the namespace's error when it is not allowed. */
  async mutate(r: NamespaceRecord): Promise<void> {
    await this.whenOpen();
    const journal = this.writableJournal();
    const durable = await this.serialize(async () => {
      await this.namespace.apply(r);
      return journal.append(r);
    });
    await durable;
    this.reclaim();
    if (this.journalLines >= this.nextCompactionCheck) await this.serialize(() => this.compactIfWorth());
  }

  /**
   * Delete the upper files of nodes nothing names any more (a file replaced by a rename over it, an
   * unlinked copy), once the record that orphaned them is durable; open handles keep their
   * descriptors, so they read on. Best effort: a commit retires the whole generation anyway.
   */
  private reclaim(): void {
    for (const node of this.namespace.takeOrphans()) {
      const name = node.upper!;
      this.maps.delete(name);
      void fs.rm(this.upperPath(name), { force: true }).catch(() => {});
      if (node.extents) void fs.rm(`${this.upperPath(name)}.map`, { force: true }).catch(() => {});
    }
  }

  private writableJournal(): Journal {
    if (!this.journal) throw new HexzError('READ_ONLY', 'this workspace session is read-only', { path: this.dir });
    return this.journal;
  }

  /** A fresh upper file name (random: names from replayed records never collide with it). */
  newUpperName(): string {
    return randomBytes(8).toString('hex');
  }

  /** Create an empty upper file durably (its directory entry fsync'd) and return its name. */
  async createUpperFile(mode = 0o600): Promise<string> {
    const name = this.newUpperName();
    const fh = await fs.open(this.upperPath(name), 'wx', mode);
    await fh.close();
    await fsyncDir(this.upper);
    return name;
  }

  /**
   * Give a file node upper content: copied from HEAD, only its first `upTo` bytes (a truncate to a
   * smaller size), or none at all (`empty`: O_TRUNC, truncate to 0).
   */
  copyUp(node: FileNode, opts: { empty?: boolean; upTo?: number } = {}): Promise<void> {
    if (node.upper) return Promise.resolve();
    let p = this.copying.get(node);
    if (!p) {
      p = this.doCopyUp(node, Boolean(opts.empty) || opts.upTo === 0, opts.upTo).finally(() => this.copying.delete(node));
      this.copying.set(node, p);
    }
    return p;
  }

  /** The extent map of a node copied up by extent (loaded once). */
  extentMap(node: FileNode): Promise<ExtentMap> {
    const name = node.upper!;
    let m = this.maps.get(name);
    if (!m) {
      m = ExtentMap.load(`${this.upperPath(name)}.map`);
      this.maps.set(name, m);
      m.catch(() => this.maps.delete(name));
    }
    return m;
  }

  /** HEAD's bytes of the file a node was copied up from, as an extent map reads them. */
  lowerReader(node: FileNode, archive: Archive = this.archive): LowerRead {
    const from = node.copiedFrom!;
    let entry: Promise<FileEntry> | undefined;
    return async (buf, at, n, pos) => {
      entry ??= archive.entry(from);
      const ok = await archive.readInto(await entry, pos, n, buf.subarray(at, at + n));
      if (!ok) throw new HexzError('INTERNAL', `reading ${from} of HEAD was cut short`, { path: from });
    };
  }

  /** Copy-ups in progress (tests look for their temp files). */
  get copyUps(): number {
    return this.copying.size;
  }

  private async slot(): Promise<() => void> {
    if (this.copySlots > 0) this.copySlots--;
    else await new Promise<void>((r) => this.copyWaiters.push(r));
    return () => {
      const next = this.copyWaiters.shift();
      if (next) next();
      else this.copySlots++;
    };
  }

  private async doCopyUp(node: FileNode, empty: boolean, upTo?: number): Promise<void> {
    const from = node.base;
    if (from === undefined) throw new HexzError('INTERNAL', 'copy-up of a node without HEAD content');
    const name = this.newUpperName();
    const final = this.upperPath(name);
    const entry = empty ? undefined : await this.archive.entry(from);
    const byExtent = entry !== undefined && entry.size >= this.extentMin;
    if (empty || byExtent) {
      // Empty, or sparse at HEAD's size with an empty extent map: nothing is copied now.
      const fh = await fs.open(final, 'wx', 0o600);
      try {
        if (byExtent) {
          await fh.truncate(entry.size);
          await fh.sync();
        }
      } finally {
        await fh.close();
      }
      if (byExtent) await ExtentMap.create(`${final}.map`, entry.size);
    } else {
      const release = await this.slot();
      const tmp = this.upperPath(`.tmp-${name}`);
      try {
        const fh = await fs.open(tmp, 'wx', 0o600);
        try {
          // Streamed: one cached chunk at a time, never the whole file; holes are skipped (sparse).
          const end = Math.min(entry!.size, upTo ?? entry!.size);
          for await (const piece of this.archive.pieces(entry!, { cold: true, end })) {
            if (piece.hole) continue;
            await fh.write(piece.bytes, 0, piece.bytes.byteLength, piece.offset);
            this.copiedBytes += piece.bytes.byteLength;
            await pauseAt('copy-up');
          }
          await fh.truncate(end);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, final);
      } catch (err) {
        await fs.rm(tmp, { force: true }).catch(() => {});
        throw toHexzError(err, { path: from });
      } finally {
        release();
      }
    }
    await fsyncDir(this.upper);
    const journal = this.writableJournal();
    const durable = await this.serialize(async () => {
      const at = this.namespace.pathOf(node);
      if (at === undefined) {
        // Unlinked meanwhile: its open handles see the copy, nothing names it any more.
        node.upper = name;
        node.copiedFrom = empty ? undefined : from;
        node.extents = byExtent || undefined;
        node.base = undefined;
        return undefined;
      }
      const r: NamespaceRecord = { op: 'content', path: at, upper: name, ...(empty ? {} : { from }), ...(byExtent ? { extents: true } : {}), t: Date.now() };
      await this.namespace.apply(r);
      this.byOrigin.set(from, node);
      return journal.append(r);
    });
    await durable;
  }

  /**
   * Move to a new HEAD with an empty overlay: the caller has already replaced config.json (the
   * commit point). Nodes held by open handles keep working: their upper files stay open.
   */
  async advance(config: OverlayConfig, archive: Archive): Promise<void> {
    const old = this.journal;
    this.config = config;
    this.archive = archive;
    this.byOrigin.clear();
    this.maps.clear();
    await this.start(Boolean(old));
    await old?.close();
  }

  async close(): Promise<void> {
    await this.serialize(async () => {});
    await this.journal?.close();
    this.journal = undefined;
  }
}
