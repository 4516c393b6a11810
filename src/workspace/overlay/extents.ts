/**
 * Extent copy-up of large files (docs/workspaces.md, "Copy-up"): the upper file of a HEAD file of at
 * least `EXTENT_COPY_UP_MIN` bytes starts sparse, at HEAD's size, with nothing in it; a persisted
 * bitmap (`<upper>.map`) says which `EXTENT_BYTES` extents it holds. Reads take present extents from
 * the upper file and the rest from HEAD; a write first fills the extents it touches only partly from
 * HEAD. So a one-byte edit of a 100 GB image copies one extent, and commit and status read only the
 * present extents and the HEAD chunks around them (`planFile`).
 *
 * `lowerEnd`: bytes at or past it are the upper file's whatever the bitmap says (a truncate below
 * HEAD's size moves it down; what is later written or grown there is upper content).
 *
 * Durability: the bitmap names an extent only after its bytes were fdatasync'd in the upper file —
 * `sync()` syncs the file, then replaces the map (temp file, fsync, rename). It runs at every fsync
 * and close of a writer and before a commit, so a crash never shows a filled-in extent that is not
 * there, and nothing fsync'd is lost.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ChunkRef } from '../../format/chunk-index.js';
import { HexzError } from '../../errors.js';
import { pauseAt } from './pause.js';
import { replaceDurably } from './store.js';

/** Files from this size copy up by extent; smaller ones are copied whole (one pass is cheaper). */
export const EXTENT_COPY_UP_MIN = 64 * 1024 * 1024;
/** Extent size: 16 average chunks, large enough for a small bitmap (12.5 KiB per 100 GB). */
export const EXTENT_BYTES = 1024 * 1024;

/** Reads HEAD's bytes of the file: `(buf, at, n, pos)` fills buf[at, at+n) with HEAD's [pos, pos+n). */
export type LowerRead = (buf: Buffer, at: number, n: number, pos: number) => Promise<void>;

export class ExtentMap {
  private bits: Uint8Array;
  private readonly filling = new Map<number, Promise<void>>();
  private dirty = false;
  /** Syncs run one after the other (fsync and close of two handles may overlap). */
  private syncing: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    public lowerEnd: number,
    bits: Uint8Array,
  ) {
    this.bits = bits;
  }

  static async create(file: string, size: number): Promise<ExtentMap> {
    const m = new ExtentMap(file, size, new Uint8Array(Math.ceil(size / EXTENT_BYTES / 8)));
    m.dirty = true;
    await m.persist();
    return m;
  }

  static async load(file: string): Promise<ExtentMap> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new HexzError('CORRUPT', `the extent map ${file} of a copied-up file is missing`, { path: file }, { cause: err });
    }
    const j = JSON.parse(text) as { lowerEnd: number; bits: string };
    return new ExtentMap(file, j.lowerEnd, Uint8Array.from(Buffer.from(j.bits, 'base64')));
  }

  has(i: number): boolean {
    const byte = i >> 3;
    return byte < this.bits.length && (this.bits[byte] & (1 << (i & 7))) !== 0;
  }

  private set(i: number): void {
    const byte = i >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte] |= 1 << (i & 7);
    this.dirty = true;
  }

  /** Is byte `pos` the upper file's? */
  isUpper(pos: number): boolean {
    return pos >= this.lowerEnd || this.has(Math.floor(pos / EXTENT_BYTES));
  }

  /** Present ranges below lowerEnd, then [lowerEnd, size): the bytes that differ from HEAD (at most). */
  dirtyRanges(size: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const limit = Math.min(size, this.lowerEnd);
    for (let i = 0; i * EXTENT_BYTES < limit; i++) {
      if (!this.has(i)) continue;
      const s = i * EXTENT_BYTES;
      const e = Math.min(s + EXTENT_BYTES, limit);
      if (out.length && out[out.length - 1][1] === s) out[out.length - 1][1] = e;
      else out.push([s, e]);
    }
    if (size > limit) out.push([limit, size]);
    return out;
  }

  /**
   * Read [pos, pos+n) of the file as it is now into buf[at…]: upper where present, HEAD elsewhere.
   * `upper` reads the sparse upper file.
   */
  async read(buf: Buffer, at: number, n: number, pos: number, upper: FileHandle, lower: LowerRead): Promise<void> {
    let done = 0;
    while (done < n) {
      const p = pos + done;
      const fromUpper = this.isUpper(p);
      let end = Math.min(pos + n, (Math.floor(p / EXTENT_BYTES) + 1) * EXTENT_BYTES);
      if (!fromUpper) end = Math.min(end, this.lowerEnd);
      const len = end - p;
      if (fromUpper) {
        const { bytesRead } = await upper.read(buf, at + done, len, p);
        if (bytesRead < len) buf.fill(0, at + done + bytesRead, at + done + len);
      } else await lower(buf, at + done, len, p);
      done += len;
    }
  }

  /**
   * Make the extents that [pos, pos+n) touches present, filling from HEAD those it covers only in
   * part (a write would otherwise leave HEAD's bytes around it unreadable).
   */
  async prepareWrite(pos: number, n: number, upper: FileHandle, lower: LowerRead): Promise<void> {
    const first = Math.floor(pos / EXTENT_BYTES);
    const last = Math.floor((pos + Math.max(n, 1) - 1) / EXTENT_BYTES);
    for (let i = first; i <= last; i++) {
      const s = i * EXTENT_BYTES;
      if (s >= this.lowerEnd || this.has(i)) continue;
      const e = Math.min(s + EXTENT_BYTES, this.lowerEnd);
      if (pos <= s && pos + n >= e) {
        this.set(i); // overwritten whole: nothing of HEAD's is left to keep
        continue;
      }
      let p = this.filling.get(i);
      if (!p) {
        p = (async () => {
          const buf = Buffer.allocUnsafe(e - s);
          await lower(buf, 0, e - s, s);
          await upper.write(buf, 0, e - s, s);
          await pauseAt('extent-fill');
          this.set(i);
        })().finally(() => this.filling.delete(i));
        this.filling.set(i, p);
      }
      await p;
    }
  }

  /** Before a truncate to `size`: keep HEAD's bytes below it that are not present yet. */
  async prepareTruncate(size: number, upper: FileHandle, lower: LowerRead): Promise<void> {
    if (size >= this.lowerEnd) return;
    if (size % EXTENT_BYTES !== 0) await this.prepareWrite(size, 0, upper, lower);
    this.lowerEnd = size;
    this.dirty = true;
  }

  /** Sync the upper file, then the map (the map never names bytes that are not on disk). */
  sync(upper: FileHandle): Promise<void> {
    const run = async () => {
      if (!this.dirty) return;
      // What the map will say is taken before the sync: an extent filled meanwhile waits for the next.
      const snapshot = { lowerEnd: this.lowerEnd, bits: Buffer.from(this.bits).toString('base64') };
      this.dirty = false;
      try {
        await upper.datasync();
        await replaceDurably(this.file, JSON.stringify(snapshot));
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    };
    const p = this.syncing.then(run, run);
    this.syncing = p.catch(() => {});
    return p;
  }

  private async persist(): Promise<void> {
    this.dirty = false;
    await replaceDurably(this.file, JSON.stringify({ lowerEnd: this.lowerEnd, bits: Buffer.from(this.bits).toString('base64') }));
  }
}

/** One piece of a file for the packer: HEAD's chunk references, or a byte range to read and chunk. */
export type FilePiece = { kind: 'refs'; refs: ChunkRef[] } | { kind: 'read'; start: number; end: number };

/**
 * Which of HEAD's chunks of the file can be kept as they are and which ranges must be read: a HEAD
 * chunk is kept when none of its bytes changed (it lies in no dirty range and below `lowerEnd`);
 * everything else is read, from HEAD chunk boundary to HEAD chunk boundary, so chunking the ranges
 * again gives HEAD's own chunks wherever the bytes are HEAD's (content-defined chunking restarts at a
 * boundary). Pure: `refs` are HEAD's references of the file in order.
 */
export function planFile(refs: readonly ChunkRef[], dirty: ReadonlyArray<[number, number]>, size: number): FilePiece[] {
  const out: FilePiece[] = [];
  let d = 0;
  let o = 0;
  const push = (keep: boolean, r: ChunkRef | undefined, start: number, end: number) => {
    const last = out[out.length - 1];
    if (keep && r) {
      if (last?.kind === 'refs') last.refs.push(r);
      else out.push({ kind: 'refs', refs: [r] });
    } else if (last?.kind === 'read' && last.end === start) last.end = end;
    else out.push({ kind: 'read', start, end });
  };
  for (const r of refs) {
    const end = o + r.raw;
    if (o >= size) break;
    while (d < dirty.length && dirty[d][1] <= o) d++;
    const touched = end > size || (d < dirty.length && dirty[d][0] < end);
    push(!touched, r, o, Math.min(end, size));
    o = end;
  }
  if (o < size) push(false, undefined, o, size);
  return out;
}
