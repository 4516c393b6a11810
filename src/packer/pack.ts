/**
 * `pack`: turn a file or directory into an archive, or into a thin delta of one or more bases.
 *
 * Pipeline (all stages overlap; output order is fixed by sequence numbers, so the same input and
 * options always give the same bytes apart from the UUID, creation time and, when encrypted, the
 * random nonces of index frames):
 *
 *   main thread: read files into 4 MiB job buffers → cut chunks (FastCDC)
 *   worker:      hash every chunk (BLAKE3), flag all-zero chunks
 *   main thread: in job order, classify each chunk: hole, already known (base chain or earlier in this
 *                archive), or new
 *   worker:      compress (and seal) only the new chunks
 *   main thread: in job order, append new chunks and references to the archive writer
 *
 * Memory is bounded by the number of jobs in flight, whatever the input size.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import { BlockCache } from '../../cache/block-cache.js';
import { meterStorage, newCounters } from '../../cache/metered.js';
import { createWriter, relativeLocation, resolveLocation, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageWriter } from '../../storage/types.js';
import { createChunker, DEFAULT_CHUNKING, type Chunker, type ChunkingParams } from '../chunker/fastcdc.js';
import { CODEC_IDS, DEFAULT_ZSTD_LEVEL, codecByName, type CodecName } from '../codecs/index.js';
import { deriveArchiveKeys, masterKey, newKdfParams, type ArchiveKeys, type KeySource } from '../crypto/keys.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import { bytesEqual } from '../format/bytes.js';
import { refsPerPage } from '../format/chunk-index.js';
import { HASH_BYTES } from '../hash.js';
import { NO_KDF, formatUuid, parseUuid, type KdfParams } from '../format/header.js';
import type { FileEntry } from '../format/file-table.js';
import type { BaseEntry } from '../format/root.js';
import { openArchive, type Archive } from '../reader/archive.js';
import type { BaseResolution } from '../reader/bases.js';
import { VERSION } from '../version.js';
import { ArchiveWriter } from './archive-writer.js';
import { fileRegions } from './sparse.js';
import { walkInput, type InputEntry } from './walk.js';
import { ChunkWorkerPool } from './worker-pool.js';

/** Files smaller than this are read whole even if sparse: probing for holes would cost more than it saves. */
const SPARSE_MIN_BYTES = 4 * 1024 * 1024;

/** Bytes of input per job sent to a worker: large enough to amortise messaging, small enough to pipeline. */
const JOB_BYTES = 4 * 1024 * 1024;

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
  /** Encrypt with this key (also needed to read encrypted bases). */
  key?: KeySource;
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
}

export interface PackProgress {
  phase: 'walk' | 'bases' | 'chunk' | 'finish';
  bytesRead: number;
  totalBytes: number;
  filesDone: number;
  filesTotal: number;
}

export interface PackSummary {
  output: string;
  uuid: string;
  kind: 'file' | 'directory';
  files: number;
  directories: number;
  symlinks: number;
  /** Logical bytes (sum of file sizes). */
  logicalBytes: number;
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
  /** Bytes of stored chunk data after compression/sealing. */
  storedBytes: number;
  /** Size of the archive written or uploaded. */
  archiveBytes: number;
  /** Bytes read from bases (their indexes only). */
  baseIndexBytes: number;
  seconds: number;
  /** Input MiB per second. */
  mibPerSecond: number;
  dedupRatio: number;
  compressionRatio: number;
  bases: Array<{ url: string; uuid: string; direct: boolean }>;
}

/** Where a known chunk lives; `offset` is -1 until a new chunk has been written. */
interface Location {
  owner: number;
  offset: number;
  stored: number;
  codec: number;
}

type JobEvent =
  | { kind: 'begin'; entry: FileEntry }
  | { kind: 'end'; entry: FileEntry }
  | { kind: 'chunk'; index: number; length: number }
  /** `count` all-zero chunks of a sparse file's hole, cut without reading them. */
  | { kind: 'hole'; length: number; count: number };

interface Job {
  seq: number;
  events: JobEvent[];
  ranges: number[];
  hashed?: { ids: Uint8Array; zero: Uint8Array };
  classes?: Array<Location | null>;
  encoded?: { data: Uint8Array; lengths: Uint32Array; codecs: Uint8Array };
}

function idKey(ids: Uint8Array, i: number): string {
  return Buffer.from(ids.buffer, ids.byteOffset + i * HASH_BYTES, HASH_BYTES).toString('latin1');
}

/** Reads input bytes into job buffers, cuts chunks, and submits jobs to the pipeline. */
class JobBuilder {
  private buf: Buffer;
  private filled = 0;
  private chunkStart = 0;
  private events: JobEvent[] = [];
  private ranges: number[] = [];
  private readonly capacity: number;

  constructor(
    maxChunk: number,
    private readonly submit: (buffer: ArrayBuffer, events: JobEvent[], ranges: number[]) => Promise<void>,
  ) {
    this.capacity = Math.max(JOB_BYTES, 4 * maxChunk);
    this.buf = Buffer.allocUnsafeSlow(this.capacity);
  }

  event(e: JobEvent): void {
    this.events.push(e);
  }

  /** Free space for reading; flushes the job (carrying an unfinished chunk over) when full. */
  async space(): Promise<{ buf: Buffer; at: number; room: number }> {
    if (this.filled === this.capacity) await this.flush(true);
    return { buf: this.buf, at: this.filled, room: this.capacity - this.filled };
  }

  advance(n: number): void {
    this.filled += n;
  }

  /** Bytes read into the buffer that belong to a chunk not cut yet. */
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

  /** Submit if the job is big enough (or `force`), carrying the bytes of an unfinished chunk over. */
  async flush(force: boolean): Promise<void> {
    if (!force && this.filled < this.capacity / 2) return;
    if (this.events.length === 0 && this.filled === 0) return;
    const carry = this.filled - this.chunkStart;
    const next = Buffer.allocUnsafeSlow(this.capacity);
    if (carry > 0) this.buf.copy(next, 0, this.chunkStart, this.filled);
    const done = this.buf;
    const events = this.events;
    const ranges = this.ranges;
    this.buf = next;
    this.filled = carry;
    this.chunkStart = 0;
    this.events = [];
    this.ranges = [];
    await this.submit(done.buffer as ArrayBuffer, events, ranges);
  }
}

/** Load the chunk index of every base (never their chunk data) into the dedup map. */
async function loadBases(
  outUrl: string,
  bases: string[],
  opts: PackOptions,
  known: Map<string, Location>,
): Promise<{ entries: BaseEntry[]; archives: Archive[]; bytesRead: number }> {
  const entries: BaseEntry[] = [];
  const slotOf = new Map<string, number>();
  const archives: Archive[] = [];
  const counters = newCounters();
  const counting = (s: Storage): Storage => meterStorage(opts.wrapStorage ? opts.wrapStorage(s) : s, counters);
  const slotFor = (uuid: Uint8Array, entry: () => BaseEntry): number => {
    const k = Buffer.from(uuid).toString('hex');
    let slot = slotOf.get(k);
    if (slot === undefined) {
      entries.push(entry());
      slot = entries.length;
      slotOf.set(k, slot);
    }
    return slot;
  };
  for (const location of bases) {
    const url = toStorageUrl(location);
    // A private cache: base index pages are read once here and need not displace anything else.
    const base = await openArchive(url, { ...opts, wrapStorage: counting, cache: new BlockCache({ maxBytes: 64 << 20 }) });
    archives.push(base);
    const direct = slotFor(base.trailer.uuid, () => ({ uuid: base.trailer.uuid, rootHash: base.rootHash, logicalBytes: 0, direct: true, hint: relativeLocation(outUrl, base.url) }));
    entries[direct - 1].direct = true;
    const slots = base.root.bases.map((b, i) => {
      const abs = base.bases[i]?.url ?? resolveLocation(base.url, b.hint);
      return slotFor(b.uuid, () => ({ uuid: b.uuid, rootHash: b.rootHash, logicalBytes: 0, direct: false, hint: relativeLocation(outUrl, abs) }));
    });
    for await (const ref of base.refsIn(0, base.root.logicalSize)) {
      if (ref.hole) continue;
      const k = Buffer.from(ref.id.buffer, ref.id.byteOffset, HASH_BYTES).toString('latin1');
      if (known.has(k)) continue;
      known.set(k, { owner: ref.owner === 0 ? direct : slots[ref.owner - 1], offset: ref.offset, stored: ref.stored, codec: ref.codec });
    }
  }
  if (entries.length > 0xffff) throw new HexzError('INVALID_ARGUMENT', 'too many bases (more than 65,535 archives in the chain)');
  return { entries, archives, bytesRead: counters.bytes };
}

/** Pick the chunking parameters, keys and KDF of the new archive, consistent with its bases. */
async function settle(
  opts: PackOptions,
  baseArchives: Archive[],
): Promise<{ chunking: ChunkingParams; keys?: ArchiveKeys; kdf: KdfParams }> {
  const first = baseArchives[0];
  let chunking = opts.chunking ?? first?.root.chunking ?? { ...DEFAULT_CHUNKING };
  if (first) {
    const inherited = first.root.chunking;
    if (opts.chunking && JSON.stringify(opts.chunking) !== JSON.stringify(inherited)) {
      opts.onWarning?.('chunking parameters are inherited from the base so chunk boundaries line up; the given ones are ignored');
    }
    chunking = inherited;
    for (const b of baseArchives) {
      if (b.encrypted !== Boolean(opts.key)) {
        throw new HexzError(
          'INVALID_ARGUMENT',
          b.encrypted
            ? `base ${b.url} is encrypted: a delta of it must be encrypted with the same key (give --encrypt with its key)`
            : `base ${b.url} is not encrypted: an encrypted delta cannot build on a plain base (see docs/format.md, section 9)`,
          { url: b.url },
        );
      }
    }
  }
  if (!opts.key) return { chunking, kdf: NO_KDF };
  // A delta of an encrypted base reuses the base's key derivation so the key, and so the chunk ids, match.
  const kdf = first ? first.trailer.kdf : newKdfParams(opts.key);
  const keys = deriveArchiveKeys(await masterKey(opts.key, kdf));
  for (const b of baseArchives) {
    if (!bytesEqual(b.trailer.keyCheck, keys.keyCheck)) {
      throw new HexzError('WRONG_KEY', `base ${b.url} is encrypted under another key; a delta must use the key of its base`, { url: b.url });
    }
  }
  return { chunking, keys, kdf };
}

async function openInput(e: InputEntry, onWarning?: (m: string) => void): Promise<FileHandle | undefined> {
  try {
    return await fs.open(e.source, 'r');
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
async function readInto(builder: JobBuilder, fh: FileHandle, e: InputEntry, chunker: Chunker, progress: PackProgress, onWarning?: (m: string) => void): Promise<void> {
  let pos = 0; // bytes of this file placed in the job buffer so far (read or zero-filled)
  const place = async (n: number, source: 'read' | 'zero'): Promise<number> => {
    const { buf, at, room } = await builder.space();
    const want = Math.min(room, n);
    let got = want;
    if (source === 'zero') buf.fill(0, at, at + want);
    else got = (await fh.read(buf, at, want, pos)).bytesRead;
    pos += got;
    progress.bytesRead += got;
    builder.advance(got);
    builder.cut(chunker, pos >= e.size);
    return got;
  };
  // Only probe for holes where they can pay off: big files with fewer blocks than bytes.
  const sparse = e.size >= SPARSE_MIN_BYTES && e.allocated < e.size;
  for await (const region of fileRegions(fh.fd, e.size, sparse)) {
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
 * Pack `input` (a file or directory) into `output` (a path or URL, written atomically). Returns a
 * summary with the dedup accounting. With `bases`, only chunks the base chain lacks are stored.
 */
export async function pack(input: string, output: string | StorageWriter, opts: PackOptions = {}): Promise<PackSummary> {
  const t0 = performance.now();
  const compression = opts.compression ?? 'zstd';
  codecByName(compression);
  const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
  const threads = Math.max(1, opts.threads ?? os.availableParallelism());
  const signal = opts.signal;
  const progress: PackProgress = { phase: 'walk', bytesRead: 0, totalBytes: 0, filesDone: 0, filesTotal: 0 };
  opts.onProgress?.(progress);

  const walked = await walkInput(input, opts.onWarning);
  progress.totalBytes = walked.totalBytes;
  progress.filesTotal = walked.entries.filter((e) => e.type === 'file').length;
  throwIfAborted(signal);

  const outUrl = typeof output === 'string' ? toStorageUrl(output) : output.url;
  const known = new Map<string, Location>();
  progress.phase = 'bases';
  opts.onProgress?.(progress);
  const baseInfo = opts.bases?.length ? await loadBases(outUrl, opts.bases, opts, known) : { entries: [], archives: [], bytesRead: 0 };
  let sink: StorageWriter | undefined;
  let pool: ChunkWorkerPool | undefined;
  try {
    const { chunking, keys, kdf } = await settle(opts, baseInfo.archives);
    const chunker = createChunker(chunking);
    const uuid = opts.uuid ? parseUuid(opts.uuid) : parseUuid(randomUUID());
    const codecId = CODEC_IDS[compression];
    sink = typeof output === 'string' ? await createWriter(outUrl, { overwrite: opts.overwrite, ...opts.storage }) : output;
    const writer = new ArchiveWriter(sink, {
      uuid,
      keys,
      kdf,
      refsPerPage: refsPerPage(walked.totalBytes / chunking.avg),
      bases: baseInfo.entries,
    });
    pool = new ChunkWorkerPool(threads, { codec: codecId, level, keys });

    const stats = { chunks: 0, baseChunks: 0, baseBytes: 0, dupChunks: 0, dupBytes: 0, newChunks: 0, newBytes: 0, holeBytes: 0 };
    const codecStats: Record<string, { chunks: number; rawBytes: number; storedBytes: number }> = {};

    // ---- the ordered pipeline ----
    const jobs = new Map<number, Job>();
    let nextSeq = 0;
    let nextClassify = 0;
    let nextWrite = 0;
    let failure: unknown;
    let writeChain = Promise.resolve();
    const maxInFlight = threads * 2 + 1;
    let slotWaiters: Array<() => void> = [];
    const wake = () => {
      const w = slotWaiters;
      slotWaiters = [];
      for (const f of w) f();
    };
    const fail = (err: unknown) => {
      failure ??= err;
      wake();
    };

    const classify = (job: Job): Uint32Array => {
      const { ids, zero } = job.hashed!;
      const classes: Array<Location | null> = [];
      const fresh: number[] = [];
      for (const ev of job.events) {
        if (ev.kind === 'hole') {
          stats.chunks += ev.count;
          stats.holeBytes += ev.length;
        }
        if (ev.kind !== 'chunk') continue;
        const i = ev.index;
        stats.chunks++;
        if (zero[i]) {
          classes.push(null);
          stats.holeBytes += ev.length;
          continue;
        }
        const k = idKey(ids, i);
        const loc = known.get(k);
        if (loc) {
          if (loc.owner === 0) {
            stats.dupChunks++;
            stats.dupBytes += ev.length;
          } else {
            stats.baseChunks++;
            stats.baseBytes += ev.length;
          }
          classes.push(loc);
        } else {
          const fresh0: Location = { owner: 0, offset: -1, stored: 0, codec: 0 };
          known.set(k, fresh0);
          classes.push(fresh0);
          fresh.push(i);
          stats.newChunks++;
          stats.newBytes += ev.length;
        }
      }
      job.classes = classes;
      return Uint32Array.from(fresh);
    };

    const writeJob = async (job: Job): Promise<void> => {
      const { ids } = job.hashed!;
      const enc = job.encoded!;
      let k = 0;
      let at = 0;
      let c = 0;
      for (const ev of job.events) {
        if (ev.kind === 'begin') writer.beginFile(ev.entry);
        else if (ev.kind === 'hole') writer.addHole(ev.length);
        else if (ev.kind === 'end') {
          writer.endFile(ev.entry);
          progress.filesDone++;
        } else {
          const loc = job.classes![c++];
          if (!loc) {
            writer.addHole(ev.length);
            continue;
          }
          if (loc.owner === 0 && loc.offset < 0) {
            const bytes = enc.data.subarray(at, at + enc.lengths[k]);
            at += enc.lengths[k];
            loc.codec = enc.codecs[k];
            loc.stored = bytes.byteLength;
            loc.offset = writer.appendChunk(bytes);
            const name = loc.codec === 0 ? 'none' : compression;
            const cs = (codecStats[name] ??= { chunks: 0, rawBytes: 0, storedBytes: 0 });
            cs.chunks++;
            cs.rawBytes += ev.length;
            cs.storedBytes += bytes.byteLength;
            k++;
          }
          writer.addRef({ id: ids.subarray(ev.index * HASH_BYTES, (ev.index + 1) * HASH_BYTES), offset: loc.offset, stored: loc.stored, raw: ev.length, owner: loc.owner, codec: loc.codec, hole: false });
        }
      }
      await writer.drain();
      opts.onProgress?.(progress);
    };

    const drive = () => {
      if (failure) return;
      for (let job = jobs.get(nextClassify); job?.hashed; job = jobs.get(nextClassify)) {
        nextClassify++;
        const j = job;
        const indices = classify(j);
        pool!.encode(j.seq, indices).then((enc) => {
          j.encoded = { data: enc.data, lengths: enc.lengths, codecs: enc.codecs };
          drive();
        }, fail);
      }
      for (let job = jobs.get(nextWrite); job?.encoded; job = jobs.get(nextWrite)) {
        nextWrite++;
        const j = job;
        writeChain = writeChain.then(async () => {
          if (failure) return;
          await writeJob(j);
          jobs.delete(j.seq);
          wake();
        });
        writeChain.catch(fail);
      }
    };

    const submit = async (buffer: ArrayBuffer, events: JobEvent[], ranges: number[]): Promise<void> => {
      while (!failure && jobs.size >= maxInFlight) await new Promise<void>((r) => slotWaiters.push(r));
      if (failure) throw failure;
      throwIfAborted(signal);
      const job: Job = { seq: nextSeq++, events, ranges };
      jobs.set(job.seq, job);
      pool!.hash(job.seq, buffer, Uint32Array.from(ranges)).then((h) => {
        job.hashed = { ids: h.ids, zero: h.zero };
        drive();
      }, fail);
    };

    // ---- read and chunk every file in table order ----
    progress.phase = 'chunk';
    const builder = new JobBuilder(chunking.max, submit);
    const entries: FileEntry[] = [];
    for (const e of walked.entries) {
      throwIfAborted(signal);
      if (failure) throw failure;
      const entry: FileEntry = { path: e.path, type: e.type, mode: e.mode, mtimeNs: e.mtimeNs, size: e.size, logical: 0, firstRef: 0, refCount: 0, target: e.target };
      if (e.type !== 'file') {
        entries.push(entry);
        continue;
      }
      const fh = e.size > 0 ? await openInput(e, opts.onWarning) : undefined;
      if (e.size > 0 && !fh) continue;
      entries.push(entry);
      builder.event({ kind: 'begin', entry });
      if (fh) {
        try {
          await readInto(builder, fh, e, chunker, progress, opts.onWarning);
        } catch (err) {
          throw toHexzError(err, { path: e.source });
        } finally {
          await fh.close();
        }
      }
      builder.event({ kind: 'end', entry });
      await builder.flush(false);
    }
    await builder.flush(true);
    while (!failure && (nextWrite < nextSeq || jobs.size > 0)) await new Promise<void>((r) => slotWaiters.push(r));
    await writeChain;
    if (failure) throw failure;
    throwIfAborted(signal);

    // ---- index, root, trailer ----
    progress.phase = 'finish';
    opts.onProgress?.(progress);
    const uniqueRawBytes = Object.values(codecStats).reduce((n, c) => n + c.rawBytes, 0);
    const created = opts.created ?? new Date();
    const { size } = await writer.finish(entries, {
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
    sink = undefined;
    const seconds = (performance.now() - t0) / 1000;
    const logicalBytes = writer.logical;
    return {
      output: outUrl,
      uuid: formatUuid(uuid),
      kind: walked.kind,
      files: entries.filter((x) => x.type === 'file').length,
      directories: entries.filter((x) => x.type === 'directory').length,
      symlinks: entries.filter((x) => x.type === 'symlink').length,
      logicalBytes,
      ...stats,
      storedBytes: writer.storedChunkBytes,
      archiveBytes: size,
      baseIndexBytes: baseInfo.bytesRead,
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
    await pool?.close();
    await Promise.all(baseInfo.archives.map((a) => a.close()));
  }
}
