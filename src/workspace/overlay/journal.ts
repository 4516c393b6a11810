/**
 * The journal of an overlay workspace: an append-only log of namespace records (./namespace.ts),
 * one line each — `<crc32 hex> <json>` — made durable with fdatasync before the operation that wrote
 * it is answered. Records that arrive while a write is in flight are written and synced together
 * (group commit), so a burst of `create`s costs one fdatasync per burst, not per file, and the FUSE
 * handlers only ever wait on a promise.
 *
 * Why a log and not an embedded database (node:sqlite would do): the records are replayed in order
 * through the same code that applied them live, the only query is "all of them", and a log has one
 * failure mode — a torn last line after a crash, which the checksum detects and `openJournal` cuts
 * off. A commit starts a new, empty journal (./store.ts, generations); between commits the session
 * compacts it (`rewrite`: the namespace as snapshot records, ./snapshot.ts) when it has grown to
 * several times what it describes, so a mount never replays a long history.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { toHexzError } from '../../errors.js';
import type { NamespaceRecord } from './namespace.js';
import type { SnapshotRecord } from './snapshot.js';
import { fsyncDir } from './store.js';

/** What a journal line holds: a namespace mutation, or a node of a compacted journal's snapshot. */
export type JournalRecord = NamespaceRecord | SnapshotRecord;

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** The temp file a compaction writes before renaming it over the journal (removed when found at open). */
const compactTemp = (file: string) => `${file}.compact.tmp`;

function lineOf(r: JournalRecord): string {
  const json = JSON.stringify(r);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** Parse the journal's text: the valid records, and the length of the valid prefix (bytes). */
export function parseJournal(text: Buffer): { records: JournalRecord[]; validBytes: number } {
  const records: JournalRecord[] = [];
  let at = 0;
  while (at < text.length) {
    const nl = text.indexOf(10, at);
    if (nl < 0) break; // a torn last line: never synced, never answered
    const line = text.toString('utf8', at, nl);
    const json = line.slice(9);
    if (line[8] !== ' ' || crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) break;
    try {
      records.push(JSON.parse(json) as JournalRecord);
    } catch {
      break;
    }
    at = nl + 1;
  }
  return { records, validBytes: at };
}

export class Journal {
  private pending: Pending[] = [];
  private flushing = false;
  private closed = false;
  /** Records appended since it was opened or last rewritten (tests and status report it). */
  appended = 0;

  private constructor(
    readonly file: string,
    private fh: FileHandle,
  ) {}

  /** Open (creating) the journal; returns it with the records it already holds, a torn tail cut off. */
  static async open(file: string): Promise<{ journal: Journal; records: JournalRecord[] }> {
    let text: Buffer;
    try {
      text = await fs.readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toHexzError(err, { path: file });
      text = Buffer.alloc(0);
    }
    const { records, validBytes } = parseJournal(text);
    await fs.rm(compactTemp(file), { force: true }); // a compaction a crash cut short: the journal is the old one
    const fh = await fs.open(file, 'a');
    try {
      if (validBytes < text.length) {
        await fh.truncate(validBytes);
        await fh.datasync();
      }
    } catch (err) {
      await fh.close().catch(() => {});
      throw toHexzError(err, { path: file });
    }
    return { journal: new Journal(file, fh), records };
  }

  /** Read the records without opening for append (status of a workspace that is not mounted). */
  static async read(file: string): Promise<JournalRecord[]> {
    try {
      return parseJournal(await fs.readFile(file)).records;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toHexzError(err, { path: file });
    }
  }

  /** Append a record; resolves once it is on disk (fdatasync'd). Order of calls is order on disk. */
  append(r: JournalRecord): Promise<void> {
    if (this.closed) return Promise.reject(toHexzError(new Error(`journal ${this.file} is closed`)));
    this.appended++;
    return new Promise((resolve, reject) => {
      this.pending.push({ line: lineOf(r), resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.fh.write(batch.map((p) => p.line).join(''));
        await this.fh.datasync();
        for (const p of batch) p.resolve();
      } catch (err) {
        const e = toHexzError(err, { path: this.file });
        for (const p of batch) p.reject(e);
      }
    }
    this.flushing = false;
  }

  /**
   * Replace the whole journal with `records` (a compaction), durably: written to a temp file and
   * fsync'd, renamed over the journal, the directory fsync'd; appends then go on in the new file. A
   * crash leaves the old journal or the new one, both complete. The caller makes sure no record is
   * applied meanwhile (the session runs this in its mutation queue); records already appended are
   * flushed to the old file first, and `records` must describe them too.
   */
  async rewrite(records: JournalRecord[]): Promise<void> {
    while (this.flushing || this.pending.length) await new Promise((r) => setTimeout(r, 1));
    if (this.closed) throw toHexzError(new Error(`journal ${this.file} is closed`));
    this.flushing = true; // appends made meanwhile wait for the new file
    const tmp = compactTemp(this.file);
    let renamed = false;
    try {
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        // In pieces: a snapshot of a large tree is many megabytes of lines.
        for (let i = 0; i < records.length; i += 4096) await fh.write(records.slice(i, i + 4096).map(lineOf).join(''));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.file);
      renamed = true;
      await fsyncDir(path.dirname(this.file));
      const old = this.fh;
      this.fh = await fs.open(this.file, 'a');
      await old.close().catch(() => {});
      this.appended = 0;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      // Past the rename the old descriptor names a deleted file: appending there would lose records,
      // so the journal refuses every append from now on (the mount answers EIO; a remount replays).
      if (renamed) this.closed = true;
      throw toHexzError(err, { path: this.file });
    } finally {
      this.flushing = false;
      if (this.pending.length) void this.flush();
    }
  }

  /** Wait for pending records, then close. */
  async close(): Promise<void> {
    while (this.flushing || this.pending.length) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    await this.fh.close();
  }
}
