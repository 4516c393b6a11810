/**
 * Reading input files into job slots and cutting chunks (FastCDC) as the bytes arrive. A job is one
 * slot of input bytes plus the ordered events that say which files and chunks it holds; a chunk that
 * is still open when a slot fills is carried over to the next slot, so every chunk is contiguous.
 */
import fsSync, { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Chunker } from '../chunker/fastcdc.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import type { FileEntry } from '../format/file-table.js';
import { fileRegions } from './sparse.js';
import type { InputEntry } from './walk.js';

/** Files up to this size are read with synchronous calls (see `openInput`). */
const SYNC_READ_MAX_BYTES = 256 * 1024;

/** Files smaller than this are read whole even if sparse: probing for holes would cost more than it saves. */
const SPARSE_MIN_BYTES = 4 * 1024 * 1024;

/** What a job contains, in order. */
export type JobEvent =
  | { kind: 'begin'; entry: FileEntry }
  | { kind: 'end'; entry: FileEntry }
  | { kind: 'chunk'; index: number; length: number }
  /** A chunk already stored in a base, taken from its index instead of the input (workspace commits). */
  | { kind: 'ref'; id: Uint8Array; length: number }
  /** `count` all-zero chunks of a sparse file's hole, cut without reading them. */
  | { kind: 'hole'; length: number; count: number };

/** Where filled slots go: the pipeline (acquire a slot, submit it). */
export interface SlotSink {
  readonly capacity: number;
  acquire(): Promise<{ slot: number; buffer: Buffer }>;
  submit(slot: number, events: JobEvent[], ranges: number[]): void;
}

export interface ReadProgress {
  bytesRead: number;
}

export class JobBuilder {
  private slot = -1;
  private buf: Buffer = Buffer.alloc(0);
  private filled = 0;
  private chunkStart = 0;
  private events: JobEvent[] = [];
  private ranges: number[] = [];

  constructor(private readonly sink: SlotSink) {}

  event(e: JobEvent): void {
    this.events.push(e);
  }

  /** Events queued for the current job. */
  get eventCount(): number {
    return this.events.length;
  }

  /** Free space for reading; submits the slot (carrying an unfinished chunk over) when full. */
  async space(): Promise<{ buf: Buffer; at: number; room: number }> {
    if (this.slot >= 0 && this.filled === this.sink.capacity) await this.flush(true);
    if (this.slot < 0) await this.acquire();
    return { buf: this.buf, at: this.filled, room: this.sink.capacity - this.filled };
  }

  /** Take a free slot, copying `carry` (the open chunk of the previous slot) to its start. */
  private async acquire(carry?: Buffer): Promise<void> {
    const { slot, buffer } = await this.sink.acquire();
    // Buffer.copy is a memmove: safe even if the previous slot came back as this one meanwhile
    // (only this builder writes into slots).
    if (carry?.byteLength) carry.copy(buffer, 0);
    this.slot = slot;
    this.buf = buffer;
    this.filled = carry?.byteLength ?? 0;
    this.chunkStart = 0;
  }

  advance(n: number): void {
    this.filled += n;
  }

  /** Bytes read into the slot that belong to a chunk not cut yet. */
  get pending(): number {
    return this.filled - this.chunkStart;
  }

  /** Forget the pending bytes (they are zeros of a hole the caller accounts for otherwise). */
  dropPending(): void {
    this.filled = this.chunkStart;
  }

  /** Cut every chunk available in [chunkStart, filled); `final` at the end of a file. */
  cut(chunker: Chunker, final: boolean): void {
    for (;;) {
      const n = chunker.cut(this.buf, this.chunkStart, this.filled, final);
      if (n <= 0) return;
      this.events.push({ kind: 'chunk', index: this.ranges.length / 2, length: n });
      this.ranges.push(this.chunkStart, this.chunkStart + n);
      this.chunkStart += n;
      if (this.chunkStart === this.filled) return;
    }
  }

  /**
   * Submit the current slot if it is at least half full (or `force`); an unfinished chunk moves to
   * the start of the next slot.
   */
  async flush(force: boolean): Promise<void> {
    if (!force && (this.slot < 0 || this.filled < this.sink.capacity / 2)) return;
    if (this.slot < 0) {
      // Events without bytes (empty files, the end of a file that exactly filled the last slot) still
      // need a job to carry them through the pipeline in order.
      if (this.events.length === 0) return;
      await this.acquire();
    }
    const { slot, events, ranges } = this;
    const carry = this.chunkStart < this.filled ? this.buf.subarray(this.chunkStart, this.filled) : undefined;
    this.events = [];
    this.ranges = [];
    this.slot = -1;
    this.filled = 0;
    this.chunkStart = 0;
    this.sink.submit(slot, events, ranges);
    if (carry) await this.acquire(carry);
  }
}

/** An open input file: positional reads, sync or async. */
export interface InputFile {
  fd: number;
  read(buf: Buffer, at: number, length: number, position: number): number | Promise<number>;
  close(): void | Promise<void>;
}

/**
 * Open an input file; `undefined` (with a warning) when it vanished or is unreadable. Small files are
 * opened and read synchronously: each async fs call is a thread-pool round trip (~30 µs), which
 * dominates the cost of a 4 KiB file, and the packer's thread has nothing else to do meanwhile.
 */
export async function openInput(e: InputEntry, onWarning?: (m: string) => void): Promise<InputFile | undefined> {
  try {
    if (e.size <= SYNC_READ_MAX_BYTES) {
      const fd = fsSync.openSync(e.source, 'r');
      return { fd, read: (buf, at, length, position) => fsSync.readSync(fd, buf, at, length, position), close: () => fsSync.closeSync(fd) };
    }
    const fh: FileHandle = await fs.open(e.source, 'r');
    return { fd: fh.fd, read: async (buf, at, length, position) => (await fh.read(buf, at, length, position)).bytesRead, close: () => fh.close() };
  } catch (err) {
    const he = toHexzError(err, { path: e.source });
    if (he.code === 'PERMISSION' || he.code === 'PATH_NOT_FOUND') {
      onWarning?.(`skipping ${e.path}: ${(err as Error).message}`);
      return undefined;
    }
    throw he;
  }
}

/**
 * Feed one file's bytes to the job builder. Data regions are read; holes of sparse files are not:
 * zeros are filled in only until a chunk starts inside the hole, then the rest of the hole is emitted
 * as `zeroCut`-sized hole chunks — exactly the chunks the byte scan would cut there.
 */
export async function readInto(builder: JobBuilder, file: InputFile, e: InputEntry, chunker: Chunker, progress: ReadProgress, onWarning?: (m: string) => void, signal?: AbortSignal): Promise<void> {
  let pos = 0; // bytes of this file placed in the job slot so far (read or zero-filled)
  const place = async (n: number, source: 'read' | 'zero'): Promise<number> => {
    const { buf, at, room } = await builder.space();
    throwIfAborted(signal, { path: e.path }); // once per slot fill: Ctrl-C stops a huge file promptly
    const want = Math.min(room, n);
    let got = want;
    if (source === 'zero') buf.fill(0, at, at + want);
    else got = await file.read(buf, at, want, pos);
    pos += got;
    progress.bytesRead += got;
    builder.advance(got);
    builder.cut(chunker, pos >= e.size);
    return got;
  };
  // Only probe for holes where they can pay off: big files with fewer blocks than bytes.
  const sparse = e.size >= SPARSE_MIN_BYTES && e.allocated < e.size;
  for await (const region of fileRegions(file.fd, e.size, sparse)) {
    if (!region.hole) {
      while (pos < region.end) {
        if ((await place(region.end - pos, 'read')) === 0) {
          onWarning?.(`${e.path} shrank while being read; archived its first ${pos} bytes`);
          e.size = pos;
          builder.cut(chunker, true);
          return;
        }
      }
      continue;
    }
    // Zero-fill until the chunk being cut starts inside the hole…
    while (pos < region.end && pos - builder.pending < region.start) await place(Math.min(region.end - pos, chunker.params.max), 'zero');
    // …then every chunk that starts with at least zeroCut zeros ahead is a zeroCut-long hole.
    const chunkStart = pos - builder.pending;
    const count = Math.floor((region.end - chunkStart) / chunker.zeroCut);
    if (pos < region.end && count > 0) {
      builder.dropPending();
      builder.event({ kind: 'hole', length: count * chunker.zeroCut, count });
      progress.bytesRead += chunkStart + count * chunker.zeroCut - pos;
      pos = chunkStart + count * chunker.zeroCut;
      if (pos >= e.size) builder.cut(chunker, true);
    }
    while (pos < region.end) await place(region.end - pos, 'zero');
  }
  builder.cut(chunker, true);
}

/**
 * Feed the range [start, end) of a file to the job builder from `read` (positional, like
 * InputFile.read), cutting a final chunk at `end`: a workspace commit re-chunks only the ranges of a
 * large file that changed, between HEAD chunk boundaries (src/workspace/overlay/extents.ts).
 */
export async function readRangeInto(
  builder: JobBuilder,
  read: (buf: Buffer, at: number, length: number, position: number) => Promise<number>,
  start: number,
  end: number,
  chunker: Chunker,
  progress: ReadProgress,
  signal?: AbortSignal,
): Promise<void> {
  let pos = start;
  while (pos < end) {
    const { buf, at, room } = await builder.space();
    throwIfAborted(signal);
    const got = await read(buf, at, Math.min(room, end - pos), pos);
    if (got <= 0) throw new HexzError('INTERNAL', `short read at ${pos} of a range ending at ${end}`);
    pos += got;
    progress.bytesRead += got;
    builder.advance(got);
    builder.cut(chunker, pos >= end);
  }
}
