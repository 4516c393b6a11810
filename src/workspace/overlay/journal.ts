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
 * off. Compaction is not needed: a commit starts a new, empty journal (./store.ts, generations).
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { toHexzError } from '../../errors.js';
import type { NamespaceRecord } from './namespace.js';

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function lineOf(r: NamespaceRecord): string {
  const json = JSON.stringify(r);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** Parse the journal's text: the valid records, and the length of the valid prefix (bytes). */
export function parseJournal(text: Buffer): { records: NamespaceRecord[]; validBytes: number } {
  const records: NamespaceRecord[] = [];
  let at = 0;
  while (at < text.length) {
    const nl = text.indexOf(10, at);
    if (nl < 0) break; // a torn last line: never synced, never answered
    const line = text.toString('utf8', at, nl);
    const json = line.slice(9);
    if (line[8] !== ' ' || crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) break;
    try {
      records.push(JSON.parse(json) as NamespaceRecord);
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
  /** Records appended since it was opened (tests and status report it). */
  appended = 0;

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
  ) {}

  /** Open (creating) the journal; returns it with the records it already holds, a torn tail cut off. */
  static async open(file: string): Promise<{ journal: Journal; records: NamespaceRecord[] }> {
    let text: Buffer;
    try {
      text = await fs.readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toHexzError(err, { path: file });
      text = Buffer.alloc(0);
    }
    const { records, validBytes } = parseJournal(text);
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
  static async read(file: string): Promise<NamespaceRecord[]> {
    try {
      return parseJournal(await fs.readFile(file)).records;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toHexzError(err, { path: file });
    }
  }

  /** Append a record; resolves once it is on disk (fdatasync'd). Order of calls is order on disk. */
  append(r: NamespaceRecord): Promise<void> {
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

  /** Wait for pending records, then close. */
  async close(): Promise<void> {
    while (this.flushing || this.pending.length) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    await this.fh.close();
  }
}
