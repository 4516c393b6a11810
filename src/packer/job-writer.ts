/**
 * The packer's last stage, on the main thread and in job order (so the archive is the same whatever
 * the threads' timing): classify each chunk a worker hashed by its full id — a hole, already known
 * (base chain or earlier in this archive), or new — and append new chunks' bytes, then every
 * reference, to the archive writer; begin and end files around their chunks; keep the accounting of
 * the summary. Jobs are either slots of bytes the main thread read and cut (`JobEvent`s, ./job-builder.ts)
 * or file batches a worker read and cut itself (./file-batch.ts).
 */
import type { ArchiveKeys } from '../crypto/keys.js';
import { HexzError, toHexzError } from '../errors.js';
import { encodeChunk } from '../format/chunk.js';
import type { FileEntry } from '../format/file-table.js';
import { HASH_BYTES } from '../hash.js';
import type { ArchiveWriter } from './archive-writer.js';
import type { BatchFile } from './file-batch.js';
import type { JobEvent } from './job-builder.js';
import type { JobResult, PipelineJob } from './worker-pool.js';

/** Where a known chunk lives; `offset` is -1 until a new chunk has been written. */
export interface Location {
  owner: number;
  offset: number;
  stored: number;
  codec: number;
}

/** The key of chunk i's id in `known` (a latin1 string of its 32 bytes: the cheapest Map key). */
export function idKey(ids: Uint8Array, i = 0): string {
  return Buffer.from(ids.buffer, ids.byteOffset + i * HASH_BYTES, HASH_BYTES).toString('latin1');
}

/** What the layout stage counts of the chunks it places (part of the pack summary). */
export interface ChunkStats {
  /** Chunks cut from the input (before hole merging). */
  chunks: number;
  /** Found in the base chain. */
  baseChunks: number;
  baseBytes: number;
  /** Repeats of chunks already in this archive. */
  dupChunks: number;
  dupBytes: number;
  /** Stored in this archive (plaintext bytes before compression). */
  newChunks: number;
  newBytes: number;
  holeBytes: number;
}

export interface JobWriterOptions {
  codecId: number;
  level: number;
  keys?: ArchiveKeys;
  /** Name of the archive's codec (for the per-codec statistics). */
  compression: string;
  progress: { bytesRead: number; filesDone: number };
  onProgress?: () => void;
  onWarning?: (message: string) => void;
}

/** Consumes the pipeline's jobs in order (`write`). */
export class JobWriter {
  readonly stats: ChunkStats = { chunks: 0, baseChunks: 0, baseBytes: 0, dupChunks: 0, dupBytes: 0, newChunks: 0, newBytes: 0, holeBytes: 0 };
  readonly codecStats: Record<string, { chunks: number; rawBytes: number; storedBytes: number }> = {};
  /** Files of batches that could not be read (vanished, unreadable): left out of the file table. */
  readonly skipped = new Set<FileEntry>();
  /** Next stored bytes of the current job's output. */
  private at = 0;

  constructor(
    private readonly writer: ArchiveWriter,
    private readonly known: Map<string, Location>,
    private readonly opts: JobWriterOptions,
  ) {}

  /** Write one job: the pipeline's `write` callback. */
  readonly write = async (job: PipelineJob<JobEvent, BatchFile[]>, r: JobResult): Promise<void> => {
    this.at = 0;
    if (job.batch) this.writeBatch(job.batch, r);
    else this.writeEvents(job.events, r);
    // The job's slot is free once this returns: its chunks were copied into the writer's staging.
    await this.writer.writeBehind();
    this.opts.onProgress?.();
  };

  private writeEvents(events: JobEvent[], r: JobResult): void {
    const { writer, stats } = this;
    for (const ev of events) {
      if (ev.kind === 'chunk') this.chunk(ev.index, ev.length, r);
      else if (ev.kind === 'begin') writer.beginFile(ev.entry);
      else if (ev.kind === 'end') {
        writer.endFile(ev.entry);
        this.opts.progress.filesDone++;
      } else if (ev.kind === 'hole') {
        stats.chunks += ev.count;
        stats.holeBytes += ev.length;
        writer.addHole(ev.length);
      } else {
        // A reused base chunk: where it lives is already known from the bases' index.
        const loc = this.known.get(Buffer.from(ev.id).toString('latin1'));
        if (!loc) throw new HexzError('CORRUPT', `chunk ${Buffer.from(ev.id).toString('hex')} of a reused file is not in the bases' index`);
        stats.chunks++;
        stats.baseChunks++;
        stats.baseBytes += ev.length;
        writer.addRef({ id: ev.id, offset: loc.offset, stored: loc.stored, raw: ev.length, owner: loc.owner, codec: loc.codec, hole: false });
      }
    }
  }

  /** A file batch: per file, what the worker read and cut, or why it could not (./file-batch-worker.ts). */
  private writeBatch(files: BatchFile[], r: JobResult): void {
    const { files: info, digests, failures } = r.batch!;
    let failure = 0;
    let chunk = 0;
    for (let i = 0; i < files.length; i++) {
      const { entry, input } = files[i];
      const chunks = info[2 * i];
      if (chunks < 0) {
        const f = failures[failure++];
        const err = Object.assign(new Error(f.message), { code: f.code, errno: f.errno, syscall: f.syscall });
        const he = toHexzError(err, { path: input.source });
        // As the main thread's own reads do (./job-builder.ts, openInput): a file that vanished or is
        // unreadable since the walk is skipped; any other failure stops the pack.
        if (!f.open || (he.code !== 'PERMISSION' && he.code !== 'PATH_NOT_FOUND')) throw he;
        this.opts.onWarning?.(`skipping ${input.path}: ${f.message}`);
        this.skipped.add(entry);
        continue;
      }
      const bytes = info[2 * i + 1];
      if (bytes < input.size) {
        this.opts.onWarning?.(`${input.path} shrank while being read; archived its first ${bytes} bytes`);
        input.size = bytes;
      }
      this.writer.beginFile(entry, digests.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES));
      for (const end = chunk + chunks; chunk < end; chunk++) this.chunk(chunk, r.ranges[2 * chunk + 1] - r.ranges[2 * chunk], r);
      this.writer.endFile(entry);
      this.opts.progress.bytesRead += bytes;
      this.opts.progress.filesDone++;
    }
  }

  /** Chunk i of the job (`length` bytes): a hole, a known chunk, or a new one to store. */
  private chunk(i: number, length: number, r: JobResult): void {
    const { writer, stats } = this;
    const storedHere = r.lengths[i];
    const bytesHere = r.data.subarray(this.at, this.at + storedHere);
    this.at += storedHere;
    stats.chunks++;
    if (r.zero[i]) {
      stats.holeBytes += length;
      writer.addHole(length);
      return;
    }
    const id = r.ids.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
    const k = idKey(r.ids, i);
    let loc = this.known.get(k);
    if (loc) {
      if (loc.owner === 0) {
        stats.dupChunks++;
        stats.dupBytes += length;
      } else {
        stats.baseChunks++;
        stats.baseBytes += length;
      }
    } else {
      // Compressed by the worker, or (another chunk shared its id's key in the seen set) here.
      const enc = storedHere > 0 ? { bytes: bytesHere, codec: r.codecs[i] } : this.encodeHere(r.input.subarray(r.ranges[2 * i], r.ranges[2 * i + 1]), id);
      loc = { owner: 0, offset: writer.appendChunk(enc.bytes), stored: enc.bytes.byteLength, codec: enc.codec };
      this.known.set(k, loc);
      stats.newChunks++;
      stats.newBytes += length;
      const name = loc.codec === 0 ? 'none' : this.opts.compression;
      const cs = (this.codecStats[name] ??= { chunks: 0, rawBytes: 0, storedBytes: 0 });
      cs.chunks++;
      cs.rawBytes += length;
      cs.storedBytes += enc.bytes.byteLength;
    }
    writer.addRef({ id, offset: loc.offset, stored: loc.stored, raw: length, owner: loc.owner, codec: loc.codec, hole: false });
  }

  private encodeHere(plain: Uint8Array, id: Uint8Array): { bytes: Uint8Array; codec: number } {
    const e = encodeChunk(plain, id, this.opts.codecId, this.opts.level, this.opts.keys);
    return { bytes: e.bytes, codec: e.codec };
  }
}
