/**
 * `pack`: turn a file or directory into an archive, or into a thin delta of one or more bases.
 *
 * Pipeline (all stages overlap; output order is fixed by sequence numbers, so the same input and
 * options always give the same bytes apart from the UUID, creation time and, when encrypted, the
 * random nonces of index frames):
 *
 *   main thread: walk the input; files of 4 MiB and more: read into 4 MiB job slots → cut chunks
 *                (FastCDC); smaller files: batch them, one slot of bytes per batch (./file-batch.ts)
 *   worker:      (batches: read the files into the slot and cut them); hash every chunk (BLAKE3), flag
 *                all-zero chunks, and compress (and seal) the chunks whose id no thread has seen (a
 *                shared set that starts with the bases' ids)
 *   main thread: in job order, classify each chunk by its full id — hole, already known (base chain or
 *                earlier in this archive), or new — and append new chunks and every reference to the
 *                archive writer (./job-writer.ts), which writes up to 32 MiB behind
 *
 * Memory is bounded by the number of jobs in flight, whatever the input size. The bases' side (their
 * indexes, and the settings a delta shares with them) is in ./bases.ts.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { BlockCache } from '../../cache/block-cache.js';
import { createWriter, resolveLocation, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageWriter } from '../../storage/types.js';
import { createChunker, createScanMemory, type ChunkingParams } from '../chunker/fastcdc.js';
import { CODEC_IDS, DEFAULT_ZSTD_LEVEL, codecByName, type CodecName } from '../codecs/index.js';
import type { KeySource } from '../crypto/keys.js';
import type { SigningKey, TrustedKeys } from '../crypto/signatures.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import { refsPerPage, type ChunkRef } from '../format/chunk-index.js';
import { formatUuid, parseUuid } from '../format/header.js';
import type { FileEntry } from '../format/file-table.js';
import type { Archive } from '../reader/archive.js';
import type { BaseResolution } from '../reader/bases.js';
import { VERSION } from '../version.js';
import { ArchiveWriter } from './archive-writer.js';
import { loadBases, settle } from './bases.js';
import { FileBatcher, type BatchFile } from './file-batch.js';
import { JobBuilder, openInput, readInto, readRangeInto, type JobEvent } from './job-builder.js';
import { JobWriter, type ChunkStats, type Location } from './job-writer.js';
import { walkInput, type InputEntry, type WalkedInput } from './walk.js';
import { ChunkPipeline, slotCount, WorkerThreads } from './worker-pool.js';
import { SeenSet } from './seen-set.js';

/** Bytes of input per job sent to a worker: large enough to amortise messaging, small enough to pipeline. */
const JOB_BYTES = 4 * 1024 * 1024;
/** Events per job at most: reused files bring references without bytes, which must not pile up in one job. */
const MAX_JOB_EVENTS = 65_536;

export interface PackOptions extends BaseResolution {
  compression?: CodecName;
  /** zstd level (default 3); ignored by lz4 and none. */
  level?: number;
  /** Chunking parameters; inherited from the first base when packing a delta. */
  chunking?: ChunkingParams;
  /** Worker threads (default: every core). */
  threads?: number;
  /** Bases of a thin archive (paths or URLs). */
  bases?: string[];
  /** The key: opens encrypted bases, and encrypts the output when `encrypt` says so. */
  key?: KeySource;
  /**
   * Encrypt the output with `key`: `true` always (a key is then required), `false` never, `'auto'`
   * when the bases are encrypted (a delta of an encrypted base must be; reported through
   * `onWarning`). Default: `true` when a key is given.
   */
  encrypt?: boolean | 'auto';
  /** Sign the new archive with this key (docs/format.md, section 3.1). */
  signKey?: SigningKey;
  /** Build only on bases (and their chains) signed by one of these keys. */
  trustedKeys?: TrustedKeys;
  /** Cache through which the bases' index pages are read: the process's shared cache by default. */
  cache?: BlockCache;
  /** User metadata stored in the archive. */
  user?: Record<string, string>;
  /** Fixed UUID and creation time (reproducible builds, tests). */
  uuid?: string;
  created?: Date;
  /** Replace an existing output. */
  overwrite?: boolean;
  storage?: StorageOptions;
  /** Wrap storages opened for bases (tests count what is read from them). */
  wrapStorage?: (s: Storage) => Storage;
  signal?: AbortSignal;
  onProgress?: (p: PackProgress) => void;
  onWarning?: (message: string) => void;
  /** The input, already walked (workspaces walk once for status and commit). */
  walked?: WalkedInput;
  /** Paths of a directory input to leave out (with everything below them). */
  exclude?: (path: string) => boolean;
  /**
   * Content of a file known to be unchanged since it was stored in a base: its chunk references
   * there, used instead of reading the file (a workspace commit costs what changed). Holes may be
   * given as hole references. Every non-hole chunk must be in the bases' index.
   */
  reuse?: (entry: InputEntry, bases: Archive[]) => Promise<AsyncIterable<ChunkRef> | ReusedPieces | undefined>;
}

/**
 * A file known to be partly unchanged: HEAD's references where it is, and ranges to read (through
 * `read`, never from the entry's source) and chunk where it changed. Ranges start and end at HEAD
 * chunk boundaries or the file's end.
 */
export interface ReusedPieces {
  pieces: Array<{ kind: 'refs'; refs: Iterable<ChunkRef> } | { kind: 'read'; start: number; end: number }>;
  read: (buf: Buffer, at: number, length: number, position: number) => Promise<number>;
}

export interface PackProgress {
  phase: 'walk' | 'bases' | 'chunk' | 'finish';
  bytesRead: number;
  totalBytes: number;
  filesDone: number;
  filesTotal: number;
}

export interface PackSummary extends ChunkStats {
  output: string;
  uuid: string;
  kind: 'file' | 'directory';
  files: number;
  directories: number;
  symlinks: number;
  /** Logical bytes (sum of file sizes). */
  logicalBytes: number;
  /** Bytes of stored chunk data after compression/sealing. */
  storedBytes: number;
  /** Size of the archive written or uploaded. */
  archiveBytes: number;
  /** Bytes uploaded, for remote outputs (s3://) only: the whole archive, as it went over the wire. */
  uploadedBytes?: number;
  encrypted: boolean;
  /** Key id (hex) of the key that signed the archive, when signed. */
  signerKeyId?: string;
  /** Bytes read from bases (their indexes only). */
  baseIndexBytes: number;
  /** Files whose content was taken from a base's index instead of being read (`reuse`). */
  reusedFiles: number;
  /** The new archive's index hash (what a delta of it records), hex. */
  rootHash: string;
  seconds: number;
  /** Input MiB per second. */
  mibPerSecond: number;
  dedupRatio: number;
  compressionRatio: number;
  bases: Array<{ url: string; uuid: string; direct: boolean }>;
}

/**
 * Pack `input` (a file or directory) into `output` (a path or URL, written atomically). Returns a
 * summary with the dedup accounting. With `bases`, only chunks the base chain lacks are stored.
 */
export async function pack(input: string, output: string | StorageWriter, opts: PackOptions = {}): Promise<PackSummary> {
  const t0 = performance.now();
  codecByName(opts.compression ?? 'zstd');
  const threads = Math.max(1, opts.threads ?? os.availableParallelism());
  const progress: PackProgress = { phase: 'walk', bytesRead: 0, totalBytes: 0, filesDone: 0, filesTotal: 0 };
  opts.onProgress?.(progress);

  // Worker threads boot while the input is walked and the bases' indexes are read.
  const workers = new WorkerThreads(threads);
  try {
    return await packWith(workers, input, output, opts, t0, progress);
  } finally {
    await workers.terminate();
  }
}

async function packWith(workers: WorkerThreads, input: string, output: string | StorageWriter, opts: PackOptions, t0: number, progress: PackProgress): Promise<PackSummary> {
  const compression = opts.compression ?? 'zstd';
  const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
  const signal = opts.signal;
  const walked = opts.walked ?? (await walkInput(input, opts.onWarning, { exclude: opts.exclude }));
  progress.totalBytes = walked.totalBytes;
  progress.filesTotal = walked.entries.filter((e) => e.type === 'file').length;
  throwIfAborted(signal);

  const outUrl = typeof output === 'string' ? toStorageUrl(output) : output.url;
  const known = new Map<string, Location>();
  progress.phase = 'bases';
  opts.onProgress?.(progress);
  const baseInfo = opts.bases?.length ? await loadBases(outUrl, opts.bases, opts, known) : { entries: [], archives: [], bytesRead: 0 };
  let sink: StorageWriter | undefined;
  let pipeline: ChunkPipeline<JobEvent, BatchFile[]> | undefined;
  try {
    const { chunking, keys, kdf } = await settle(opts, baseInfo.archives);
    // Job slots live in the chunker's scan memory: the FastCDC scan reads them in place.
    const capacity = Math.max(JOB_BYTES, 4 * chunking.max);
    const memory = createScanMemory(slotCount(workers.workers.length) * capacity);
    const chunker = createChunker(chunking, { memory });
    const uuid = opts.uuid ? parseUuid(opts.uuid) : parseUuid(randomUUID());
    const codecId = CODEC_IDS[compression];
    sink = typeof output === 'string' ? await createWriter(outUrl, { overwrite: opts.overwrite, signal, ...opts.storage }) : output;
    const writer = new ArchiveWriter(sink, {
      uuid,
      keys,
      kdf,
      refsPerPage: refsPerPage(walked.totalBytes / chunking.avg),
      bases: baseInfo.entries,
      signKey: opts.signKey,
    });
    const jobs = new JobWriter(writer, known, {
      codecId,
      level,
      keys,
      compression,
      progress,
      onProgress: () => opts.onProgress?.(progress),
      onWarning: opts.onWarning,
    });
    let reusedFiles = 0;

    // Every id the bases hold, so workers never compress a chunk a base already has.
    const seen = SeenSet.create(known.size + walked.totalBytes / chunking.avg);
    for (const k of known.keys()) seen.add(SeenSet.keyOf(Buffer.from(k, 'latin1')));

    pipeline = new ChunkPipeline<JobEvent, BatchFile[]>({ threads: workers, codec: codecId, level, keys, capacity, memory, chunking, seen, write: jobs.write });

    // ---- read and chunk every file in table order: small files in batches read by the workers,
    // larger ones here (jobs of either kind keep their order through the pipeline) ----
    progress.phase = 'chunk';
    const builder = new JobBuilder(pipeline);
    const batcher = new FileBatcher(pipeline);
    const entries: FileEntry[] = [];
    for (const e of walked.entries) {
      throwIfAborted(signal);
      const entry: FileEntry = { path: e.path, type: e.type, mode: e.mode, mtimeNs: e.mtimeNs, size: e.size, logical: 0, firstRef: 0, refCount: 0, target: e.target };
      entries.push(entry);
      if (e.type !== 'file') continue;
      const reused = e.size > 0 && opts.reuse ? await opts.reuse(e, baseInfo.archives) : undefined;
      if (!reused && batcher.takes(e.size)) {
        await builder.flush(true);
        await batcher.add({ entry, input: e });
        continue;
      }
      await batcher.submit();
      if (reused && 'pieces' in reused) {
        // Partly unchanged (an extent-mapped workspace file): HEAD's references, and the changed ranges read.
        builder.event({ kind: 'begin', entry });
        let bytes = 0;
        for (const piece of reused.pieces) {
          if (piece.kind === 'read') {
            await readRangeInto(builder, reused.read, piece.start, piece.end, chunker, progress, signal);
            bytes += piece.end - piece.start;
            continue;
          }
          for (const r of piece.refs) {
            builder.event(r.hole ? { kind: 'hole', length: r.raw, count: 0 } : { kind: 'ref', id: Uint8Array.from(r.id), length: r.raw });
            bytes += r.raw;
            progress.bytesRead += r.raw;
            if (builder.eventCount >= MAX_JOB_EVENTS) await builder.flush(true);
          }
        }
        if (bytes !== e.size) throw new HexzError('INTERNAL', `the pieces of ${e.path} have ${bytes} bytes, expected ${e.size}`, { path: e.path });
        builder.event({ kind: 'end', entry });
        reusedFiles++;
        await builder.flush(false);
        continue;
      }
      if (reused) {
        builder.event({ kind: 'begin', entry });
        let bytes = 0;
        for await (const r of reused) {
          builder.event(r.hole ? { kind: 'hole', length: r.raw, count: 0 } : { kind: 'ref', id: Uint8Array.from(r.id), length: r.raw });
          bytes += r.raw;
          if (builder.eventCount >= MAX_JOB_EVENTS) await builder.flush(true);
        }
        if (bytes !== e.size) throw new HexzError('INTERNAL', `reused content of ${e.path} has ${bytes} bytes, expected ${e.size}`, { path: e.path });
        builder.event({ kind: 'end', entry });
        progress.bytesRead += e.size;
        reusedFiles++;
        await builder.flush(false);
        continue;
      }
      const file = await openInput(e, opts.onWarning);
      if (!file) {
        jobs.skipped.add(entry);
        continue;
      }
      builder.event({ kind: 'begin', entry });
      try {
        await readInto(builder, file, e, chunker, progress, opts.onWarning, signal);
      } catch (err) {
        throw toHexzError(err, { path: e.source });
      } finally {
        await file.close();
      }
      builder.event({ kind: 'end', entry });
      await builder.flush(false);
    }
    await batcher.submit();
    await builder.flush(true);
    await pipeline.finish();
    throwIfAborted(signal);
    const kept = jobs.skipped.size ? entries.filter((x) => !jobs.skipped.has(x)) : entries;

    // ---- index, root, trailer ----
    progress.phase = 'finish';
    opts.onProgress?.(progress);
    const { stats, codecStats } = jobs;
    const uniqueRawBytes = Object.values(codecStats).reduce((n, c) => n + c.rawBytes, 0);
    const created = opts.created ?? new Date();
    // The writer itself refuses to commit once the signal fired (so does every write before it).
    throwIfAborted(signal);
    const { size, rootHash } = await writer.finish(kept, {
      chunking,
      defaultCodec: codecId,
      defaultLevel: compression === 'zstd' ? level : 0,
      metadata: {
        creator: `hexz/${VERSION}`,
        created: created.toISOString(),
        source: { name: walked.name, type: walked.kind },
        compression: { codec: compression, ...(compression === 'zstd' ? { level } : {}) },
        chunking: { algorithm: 'gear32-fastcdc', min: chunking.min, avg: chunking.avg, max: chunking.max, normalization: chunking.normalization, seed: chunking.seed },
        user: opts.user ?? {},
        stats: { uniqueRawBytes, codecs: codecStats },
      },
    });
    const remote = sink.backend !== 'file' && sink.backend !== 'memory';
    sink = undefined;
    const seconds = (performance.now() - t0) / 1000;
    const logicalBytes = writer.logical;
    return {
      output: outUrl,
      uuid: formatUuid(uuid),
      kind: walked.kind,
      files: kept.filter((x) => x.type === 'file').length,
      directories: kept.filter((x) => x.type === 'directory').length,
      symlinks: kept.filter((x) => x.type === 'symlink').length,
      logicalBytes,
      ...stats,
      storedBytes: writer.storedChunkBytes,
      archiveBytes: size,
      ...(remote ? { uploadedBytes: size } : {}),
      encrypted: keys !== undefined,
      ...(opts.signKey ? { signerKeyId: Buffer.from(opts.signKey.keyId).toString('hex') } : {}),
      baseIndexBytes: baseInfo.bytesRead,
      reusedFiles,
      rootHash: Buffer.from(rootHash).toString('hex'),
      seconds,
      mibPerSecond: logicalBytes / 1048576 / Math.max(seconds, 1e-6),
      dedupRatio: stats.newBytes ? (logicalBytes - stats.holeBytes - stats.baseBytes) / stats.newBytes : 1,
      compressionRatio: writer.storedChunkBytes ? uniqueRawBytes / writer.storedChunkBytes : 1,
      bases: baseInfo.entries.map((b) => ({ url: resolveLocation(outUrl, b.hint), uuid: formatUuid(b.uuid), direct: b.direct })),
    };
  } catch (err) {
    await sink?.abort(err).catch(() => {});
    throw err;
  } finally {
    await pipeline?.close();
    await Promise.all(baseInfo.archives.map((a) => a.close()));
  }
}
