/**
 * `pack`: turn a file or directory into an archive, or into a thin delta of one or more bases.
 *
 * Pipeline (all stages overlap; output order is fixed by sequence numbers, so the same input and
 * options always give the same bytes apart from the UUID, creation time and, when encrypted, the
 * random nonces of index frames):
 *
 *   main thread: read files into 4 MiB job slots → cut chunks (FastCDC)
 *   worker:      hash every chunk (BLAKE3), flag all-zero chunks, and compress (and seal) the chunks
 *                whose id no thread has seen (a shared set that starts with the bases' ids)
 *   main thread: in job order, classify each chunk by its full id — hole, already known (base chain or
 *                earlier in this archive), or new — and append new chunks and every reference to the
 *                archive writer
 *
 * Memory is bounded by the number of jobs in flight, whatever the input size.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { sharedCache, type BlockCache } from '../../cache/block-cache.js';
import { meterStorage, newCounters } from '../../cache/metered.js';
import { createWriter, relativeLocation, resolveLocation, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageWriter } from '../../storage/types.js';
import { createChunker, createScanMemory, DEFAULT_CHUNKING, type ChunkingParams } from '../chunker/fastcdc.js';
import { CODEC_IDS, DEFAULT_ZSTD_LEVEL, codecByName, type CodecName } from '../codecs/index.js';
import { deriveArchiveKeys, masterKey, newKdfParams, type ArchiveKeys, type KeySource } from '../crypto/keys.js';
import type { SigningKey, TrustedKeys } from '../crypto/signatures.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import { bytesEqual } from '../format/bytes.js';
import { encodeChunk } from '../format/chunk.js';
import { refsPerPage } from '../format/chunk-index.js';
import { HASH_BYTES } from '../hash.js';
import { NO_KDF, formatUuid, parseUuid, type KdfParams } from '../format/header.js';
import type { FileEntry } from '../format/file-table.js';
import type { BaseEntry } from '../format/root.js';
import { openArchive, type Archive } from '../reader/archive.js';
import type { BaseResolution } from '../reader/bases.js';
import { VERSION } from '../version.js';
import { ArchiveWriter } from './archive-writer.js';
import { refuseOutputAt } from './chain-output.js';
import { JobBuilder, openInput, readInto, readRangeInto, type JobEvent } from './job-builder.js';
import { walkInput, type InputEntry, type WalkedInput } from './walk.js';
import type { ChunkRef } from '../format/chunk-index.js';
import { ChunkPipeline, slotCount, WorkerThreads, type JobResult, type PipelineJob } from './worker-pool.js';
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

/** Where a known chunk lives; `offset` is -1 until a new chunk has been written. */
interface Location {
  owner: number;
  offset: number;
  stored: number;
  codec: number;
}

function idKey(ids: Uint8Array, i: number): string {
  return Buffer.from(ids.buffer, ids.byteOffset + i * HASH_BYTES, HASH_BYTES).toString('latin1');
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
  const refuseSelf = (url: string, what: string) => refuseOutputAt(outUrl, url, what, 'packing would overwrite an archive the new one depends on');
  // Up front, before any index is read: the output must not be a base…
  for (const location of bases) await refuseSelf(toStorageUrl(location), `the base ${location}`);
  try {
    for (const location of bases) {
      const url = toStorageUrl(location);
      // Index pages go through the process's one cache (one memory budget); pages are read once here,
      // and entries too large for the budget are not kept.
      const base = await openArchive(url, { ...opts, wrapStorage: counting, cache: opts.cache ?? sharedCache() });
      archives.push(base);
      // …nor an archive of a base's chain (opening a base resolved its chain; nothing is read yet).
      const ancestors = await base.findBases();
      for (const s of ancestors) await refuseSelf(s.url, `an ancestor of the base ${location} (part of its chain)`);
      const direct = slotFor(base.trailer.uuid, () => ({ uuid: base.trailer.uuid, rootHash: base.rootHash, logicalBytes: 0, direct: true, hint: relativeLocation(outUrl, base.url) }));
      entries[direct - 1].direct = true;
      const slots = base.root.bases.map((b, i) => {
        const abs = ancestors[i]?.url ?? resolveLocation(base.url, b.hint);
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
  } catch (err) {
    await Promise.all(archives.map((a) => a.close()));
    throw err;
  }
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
  }
  const encryptedBase = baseArchives.find((b) => b.encrypted);
  const encrypt = opts.encrypt === 'auto' ? encryptedBase !== undefined : (opts.encrypt ?? Boolean(opts.key));
  if (encrypt && !opts.key) throw new HexzError('INVALID_ARGUMENT', 'encrypting needs a key', { remedy: 'encryption-key' });
  for (const b of baseArchives) {
    if (b.encrypted !== encrypt) {
      throw new HexzError(
        'INVALID_ARGUMENT',
        b.encrypted
          ? `base ${b.url} is encrypted: a delta of an encrypted base must be encrypted with the same key`
          : `base ${b.url} is not encrypted: an encrypted delta cannot build on a plain base (see docs/format.md, section 9)`,
        { url: b.url, ...(b.encrypted ? { remedy: 'encrypt' as const } : {}) },
      );
    }
  }
  if (opts.encrypt === 'auto' && encryptedBase) {
    opts.onWarning?.(`base ${encryptedBase.url} is encrypted, so the delta is encrypted too, with the same key`);
  }
  if (!encrypt) return { chunking, kdf: NO_KDF };
  // A delta of an encrypted base reuses the base's key derivation so the key, and so the chunk ids, match.
  const kdf = first ? first.trailer.kdf : newKdfParams(opts.key!);
  const keys = deriveArchiveKeys(await masterKey(opts.key!, kdf));
  for (const b of baseArchives) {
    if (!bytesEqual(b.trailer.keyCheck, keys.keyCheck)) {
      throw new HexzError('WRONG_KEY', `base ${b.url} is encrypted under another key; a delta must use the key of its base`, { url: b.url });
    }
  }
  return { chunking, keys, kdf };
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
  let pipeline: ChunkPipeline<JobEvent> | undefined;
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
    const stats = { chunks: 0, baseChunks: 0, baseBytes: 0, dupChunks: 0, dupBytes: 0, newChunks: 0, newBytes: 0, holeBytes: 0 };
    let reusedFiles = 0;
    const codecStats: Record<string, { chunks: number; rawBytes: number; storedBytes: number }> = {};
    /** Compress a chunk the worker left out (another chunk shared its id's key in the seen set). */
    const encodeHere = (plain: Uint8Array, id: Uint8Array) => {
      const e = encodeChunk(plain, id, codecId, level, keys);
      return { bytes: e.bytes, codec: e.codec };
    };

    // In job order: classify every chunk by its full id — a hole, already known (base chain or earlier
    // in this archive), or new — append new chunks' bytes, then every reference, to the archive writer.
    const write = async (job: PipelineJob<JobEvent>, r: JobResult): Promise<void> => {
      let at = 0; // next stored bytes of the worker's output
      for (const ev of job.events) {
        if (ev.kind === 'begin') writer.beginFile(ev.entry);
        else if (ev.kind === 'end') {
          writer.endFile(ev.entry);
          progress.filesDone++;
        } else if (ev.kind === 'hole') {
          stats.chunks += ev.count;
          stats.holeBytes += ev.length;
          writer.addHole(ev.length);
        } else if (ev.kind === 'ref') {
          // A reused base chunk: where it lives is already known from the bases' index.
          const loc = known.get(Buffer.from(ev.id).toString('latin1'));
          if (!loc) throw new HexzError('CORRUPT', `chunk ${Buffer.from(ev.id).toString('hex')} of a reused file is not in the bases' index`);
          stats.chunks++;
          stats.baseChunks++;
          stats.baseBytes += ev.length;
          writer.addRef({ id: ev.id, offset: loc.offset, stored: loc.stored, raw: ev.length, owner: loc.owner, codec: loc.codec, hole: false });
        } else {
          const i = ev.index;
          const storedHere = r.lengths[i];
          const bytesHere = r.data.subarray(at, at + storedHere);
          at += storedHere;
          stats.chunks++;
          if (r.zero[i]) {
            stats.holeBytes += ev.length;
            writer.addHole(ev.length);
            continue;
          }
          const id = r.ids.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
          const k = idKey(r.ids, i);
          let loc = known.get(k);
          if (loc) {
            if (loc.owner === 0) {
              stats.dupChunks++;
              stats.dupBytes += ev.length;
            } else {
              stats.baseChunks++;
              stats.baseBytes += ev.length;
            }
          } else {
            const enc = storedHere > 0 ? { bytes: bytesHere, codec: r.codecs[i] } : encodeHere(r.input.subarray(job.ranges[2 * i], job.ranges[2 * i + 1]), id);
            // Lent: the job's output stays untouched until the drain below has written it.
            loc = { owner: 0, offset: writer.appendChunk(enc.bytes, true), stored: enc.bytes.byteLength, codec: enc.codec };
            known.set(k, loc);
            stats.newChunks++;
            stats.newBytes += ev.length;
            const name = loc.codec === 0 ? 'none' : compression;
            const cs = (codecStats[name] ??= { chunks: 0, rawBytes: 0, storedBytes: 0 });
            cs.chunks++;
            cs.rawBytes += ev.length;
            cs.storedBytes += enc.bytes.byteLength;
          }
          writer.addRef({ id, offset: loc.offset, stored: loc.stored, raw: ev.length, owner: loc.owner, codec: loc.codec, hole: false });
        }
      }
      await writer.drain();
      opts.onProgress?.(progress);
    };

    // Every id the bases hold, so workers never compress a chunk a base already has.
    const seen = SeenSet.create(known.size + walked.totalBytes / chunking.avg);
    for (const k of known.keys()) seen.add(SeenSet.keyOf(Buffer.from(k, 'latin1')));

    pipeline = new ChunkPipeline<JobEvent>({ threads: workers, codec: codecId, level, keys, capacity, memory, seen, write });

    // ---- read and chunk every file in table order ----
    progress.phase = 'chunk';
    const builder = new JobBuilder(pipeline);
    const entries: FileEntry[] = [];
    for (const e of walked.entries) {
      throwIfAborted(signal);
      const entry: FileEntry = { path: e.path, type: e.type, mode: e.mode, mtimeNs: e.mtimeNs, size: e.size, logical: 0, firstRef: 0, refCount: 0, target: e.target };
      if (e.type !== 'file') {
        entries.push(entry);
        continue;
      }
      const reused = e.size > 0 && opts.reuse ? await opts.reuse(e, baseInfo.archives) : undefined;
      if (reused && 'pieces' in reused) {
        entries.push(entry);
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
        entries.push(entry);
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
      const file = e.size > 0 ? await openInput(e, opts.onWarning) : undefined;
      if (e.size > 0 && !file) continue;
      entries.push(entry);
      builder.event({ kind: 'begin', entry });
      if (file) {
        try {
          await readInto(builder, file, e, chunker, progress, opts.onWarning, signal);
        } catch (err) {
          throw toHexzError(err, { path: e.source });
        } finally {
          await file.close();
        }
      }
      builder.event({ kind: 'end', entry });
      await builder.flush(false);
    }
    await builder.flush(true);
    await pipeline.finish();
    throwIfAborted(signal);

    // ---- index, root, trailer ----
    progress.phase = 'finish';
    opts.onProgress?.(progress);
    const uniqueRawBytes = Object.values(codecStats).reduce((n, c) => n + c.rawBytes, 0);
    const created = opts.created ?? new Date();
    // The writer itself refuses to commit once the signal fired (so does every write before it).
    throwIfAborted(signal);
    const { size, rootHash } = await writer.finish(entries, {
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
      files: entries.filter((x) => x.type === 'file').length,
      directories: entries.filter((x) => x.type === 'directory').length,
      symlinks: entries.filter((x) => x.type === 'symlink').length,
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
