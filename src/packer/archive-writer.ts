/**
 * Lays out an archive front to back (docs/format.md, section 1) into a `StorageWriter`: header, chunk
 * data with chunk-index pages flushed as they fill, then file-table pages, root and trailer. Nothing
 * is ever written twice or out of order, so the output can stream into an S3 multipart upload.
 */
import type { StorageWriter } from '../../storage/types.js';
import type { ChunkingParams } from '../chunker/fastcdc.js';
import { HexzError } from '../errors.js';
import { hash } from '../hash.js';
import type { ArchiveKeys } from '../crypto/keys.js';
import { encodeSignedTrailer, type SigningKey } from '../crypto/signatures.js';
import { ByteWriter } from '../format/bytes.js';
import { writeChunkRef, ZERO_ID, type ChunkRef } from '../format/chunk-index.js';
import {
  FLAG_ENCRYPTED,
  FORMAT_VERSION,
  FRAME_CHUNK_PAGE,
  FRAME_FILE_PAGE,
  FRAME_ROOT,
  MAX_FILE_PAGE_TARGET_BYTES,
  MAX_HOLE_BYTES,
  MIN_FILE_PAGE_BYTES,
  TARGET_PAGES_PER_TABLE,
} from '../format/constants.js';
import { encodeFilePage, entryEncodedSize, type FileEntry } from '../format/file-table.js';
import { encodeFrame } from '../format/frame.js';
import { encodeHeader, encodeTrailer, type KdfParams, type Trailer } from '../format/header.js';
import { ContentDigest } from '../format/content-digest.js';
import { encodeRoot, type ArchiveMetadata, type BaseEntry, type ChunkPageEntry, type FilePageEntry } from '../format/root.js';

/** Output is handed to the storage writer in pieces of about this size (fewer syscalls / S3 parts). */
const FLUSH_BYTES = 8 * 1024 * 1024;

/**
 * Copied output that may wait for the storage writer (`writeBehind`) before the caller is held up: the
 * page cache throttles writes of a few hundred MiB to disk speed now and then, and packing goes on
 * meanwhile instead of waiting for every write.
 */
const WRITE_BEHIND_BYTES = 32 * 1024 * 1024;

export interface ArchiveWriterOptions {
  uuid: Uint8Array;
  keys?: ArchiveKeys;
  kdf: KdfParams;
  refsPerPage: number;
  bases: BaseEntry[];
  /** Sign the trailer with this key (docs/format.md, section 3.1); it is written last, so streaming outputs can be signed too. */
  signKey?: SigningKey;
}

export interface FinishFields {
  chunking: ChunkingParams;
  defaultCodec: number;
  defaultLevel: number;
  metadata: ArchiveMetadata;
}

type RefInput = Omit<ChunkRef, 'logical'>;

export class ArchiveWriter {
  /** Absolute offset of the next byte. */
  position = 0;
  /** Logical bytes referenced so far. */
  logical = 0;
  refCount = 0;
  storedChunkCount = 0;
  storedChunkBytes = 0;
  holeBytes = 0;
  selfLogicalBytes = 0;
  readonly baseLogicalBytes: number[];

  /**
   * Output is copied into reusable staging buffers of FLUSH_BYTES: one copy instead of a concat per
   * flush, no fresh allocation (page faults) per flush, and callers may reuse what they appended
   * as soon as `append` returns. Chunk data can instead be lent (`appendChunk(bytes, true)`): it is
   * written from the caller's buffer by the next `drain()`, without a copy. The packer copies (a
   * memcpy per job) so that its job slots are free at once and writes overlap packing
   * (`writeBehind`).
   */
  private stage: Buffer = Buffer.allocUnsafeSlow(FLUSH_BYTES);
  private staged = 0;
  /** Pieces waiting for `drain()`, in order: full (or cut-off) staging buffers, and lent bytes. */
  private ready: Array<{ bytes: Uint8Array; stage?: Buffer }> = [];
  private spare: Buffer[] = [];
  /** Bytes in `ready`; the loop writing them out, while it runs; the first write failure. */
  private readyBytes = 0;
  private writing?: Promise<void>;
  private inFlight?: { bytes: Uint8Array };
  private writeFailure?: { error: unknown };
  private page = new ByteWriter(64 * 1024);
  private pageCount = 0;
  private pageFirstLogical = 0;
  private pendingHole = 0;
  private readonly chunkPages: ChunkPageEntry[] = [];
  /** Content digest of the file between beginFile and endFile (docs/format.md, section 7.3). */
  private digest?: ContentDigest;
  private knownDigest?: Uint8Array;

  constructor(
    private readonly sink: StorageWriter,
    private readonly opts: ArchiveWriterOptions,
  ) {
    this.baseLogicalBytes = opts.bases.map(() => 0);
    const flags = opts.keys ? FLAG_ENCRYPTED : 0;
    this.append(encodeHeader({ version: FORMAT_VERSION, flags, uuid: opts.uuid }));
  }

  private append(bytes: Uint8Array): number {
    const at = this.position;
    let from = 0;
    while (from < bytes.byteLength) {
      const n = Math.min(bytes.byteLength - from, FLUSH_BYTES - this.staged);
      this.stage.set(bytes.subarray(from, from + n), this.staged);
      this.staged += n;
      from += n;
      if (this.staged === FLUSH_BYTES) this.cutStage();
    }
    this.position += bytes.byteLength;
    return at;
  }

  /** Queue what is staged and start a fresh staging buffer. */
  private cutStage(): void {
    this.ready.push({ bytes: this.stage.subarray(0, this.staged), stage: this.stage });
    this.readyBytes += this.staged;
    this.stage = this.spare.pop() ?? Buffer.allocUnsafeSlow(FLUSH_BYTES);
    this.staged = 0;
  }

  /** Queue `bytes` without copying them; adjacent lent bytes of one buffer become one write. */
  private lend(bytes: Uint8Array): number {
    const at = this.position;
    if (this.staged > 0) this.cutStage();
    const last = this.ready[this.ready.length - 1];
    if (last && last !== this.inFlight && !last.stage && last.bytes.buffer === bytes.buffer && last.bytes.byteOffset + last.bytes.byteLength === bytes.byteOffset) {
      last.bytes = new Uint8Array(bytes.buffer, last.bytes.byteOffset, last.bytes.byteLength + bytes.byteLength);
    } else this.ready.push({ bytes });
    this.readyBytes += bytes.byteLength;
    this.position += bytes.byteLength;
    return at;
  }

  /**
   * Hand queued pieces (and, with `force`, what is staged) to the storage writer: the backpressure
   * point. Lent bytes are free again when it resolves.
   */
  async drain(force = false): Promise<void> {
    if (force && this.staged > 0) this.cutStage();
    while ((this.ready.length > 0 || this.writing) && !this.writeFailure) {
      this.startWriting();
      await this.writing;
    }
    if (this.writeFailure) throw this.writeFailure.error;
  }

  /**
   * Like `drain`, for copied output only (nothing lent since the last drain): the pieces are written
   * in the background, and this waits only while more than WRITE_BEHIND_BYTES are pending. A failed
   * write is thrown here or by the next `drain`.
   */
  async writeBehind(): Promise<void> {
    while (this.readyBytes > WRITE_BEHIND_BYTES && !this.writeFailure) {
      this.startWriting();
      await this.writing;
    }
    if (this.writeFailure) throw this.writeFailure.error;
    if (this.ready.length > 0) this.startWriting();
  }

  /** Write the ready pieces in order, one at a time, until none is left or a write fails. */
  private startWriting(): void {
    if (this.writing || this.writeFailure) return;
    this.writing = (async () => {
      try {
        while (this.ready.length > 0) {
          const piece = (this.inFlight = this.ready[0]);
          await this.sink.write(piece.bytes);
          this.ready.shift();
          this.readyBytes -= piece.bytes.byteLength;
          if (piece.stage) this.spare.push(piece.stage);
        }
      } catch (error) {
        this.writeFailure = { error };
      } finally {
        this.writing = this.inFlight = undefined;
      }
    })();
  }

  /**
   * Store a chunk's encoded bytes; returns their offset. `lent`: the caller keeps `bytes` unchanged
   * until the next `drain()` resolves, and they are written from there without a copy.
   */
  appendChunk(bytes: Uint8Array, lent = false): number {
    this.storedChunkCount++;
    this.storedChunkBytes += bytes.byteLength;
    return lent ? this.lend(bytes) : this.append(bytes);
  }

  /** Reference a stored chunk (here or in a base) as the next logical bytes. */
  addRef(ref: RefInput): void {
    this.flushHole();
    this.emit(ref);
    this.digest?.chunk(ref.id, ref.raw);
  }

  /** The next `raw` logical bytes are zero. Adjacent holes merge into one reference. */
  addHole(raw: number): void {
    this.digest?.zero(raw);
    while (raw > 0) {
      if (this.pendingHole === MAX_HOLE_BYTES) this.flushHole();
      const take = Math.min(raw, MAX_HOLE_BYTES - this.pendingHole);
      this.pendingHole += take;
      raw -= take;
    }
  }

  /**
   * Start a file: its logical offset and first reference are the current ones. `digest`: its content
   * digest, when already computed from its chunks (a worker did, for a file batch); else it is
   * computed from what is added until `endFile`.
   */
  beginFile(entry: FileEntry, digest?: Uint8Array): void {
    this.flushHole();
    entry.logical = this.logical;
    entry.firstRef = this.refCount;
    this.digest = digest ? undefined : new ContentDigest();
    this.knownDigest = digest;
  }

  /** End a file: its size and reference count follow from what was added since `beginFile`. */
  endFile(entry: FileEntry): void {
    this.flushHole();
    entry.size = this.logical - entry.logical;
    entry.refCount = this.refCount - entry.firstRef;
    entry.digest = this.knownDigest ?? this.digest?.finish();
    this.digest = undefined;
    this.knownDigest = undefined;
    if (entry.size === 0) {
      entry.logical = 0;
      entry.firstRef = 0;
    }
  }

  private flushHole(): void {
    if (this.pendingHole === 0) return;
    const raw = this.pendingHole;
    this.pendingHole = 0;
    this.emit({ id: ZERO_ID, offset: 0, stored: 0, raw, owner: 0, codec: 0, hole: true });
  }

  private emit(ref: RefInput): void {
    if (this.pageCount === 0) this.pageFirstLogical = this.logical;
    writeChunkRef(this.page, { ...ref, logical: this.logical });
    if (ref.hole) this.holeBytes += ref.raw;
    else if (ref.owner === 0) this.selfLogicalBytes += ref.raw;
    else this.baseLogicalBytes[ref.owner - 1] += ref.raw;
    this.logical += ref.raw;
    this.refCount++;
    if (++this.pageCount === this.opts.refsPerPage) this.flushChunkPage();
  }

  private frame(kind: number, body: Uint8Array): Uint8Array {
    return encodeFrame(kind, body, { uuid: this.opts.uuid, keys: this.opts.keys });
  }

  private flushChunkPage(): void {
    if (this.pageCount === 0) return;
    const stored = this.frame(FRAME_CHUNK_PAGE, this.page.finish());
    const offset = this.append(stored);
    this.chunkPages.push({ firstLogical: this.pageFirstLogical, offset, length: stored.byteLength, count: this.pageCount, hash: hash(stored) });
    this.page = new ByteWriter(64 * 1024);
    this.pageCount = 0;
  }

  /**
   * Write the last chunk page, the file table, root and trailer, and commit. `entries` must be in
   * file-table order with files' chunk ranges filled in by begin/endFile.
   */
  async finish(entries: FileEntry[], fields: FinishFields): Promise<{ size: number; rootHash: Uint8Array }> {
    this.flushHole();
    this.flushChunkPage();

    const totalEstimate = entries.reduce((n, e) => n + entryEncodedSize(e), 0);
    // Section 7.2: pages grow with the table up to 16 MiB (readers refuse pages over 64 MiB), then multiply.
    const pageBytes = Math.min(MAX_FILE_PAGE_TARGET_BYTES, Math.max(MIN_FILE_PAGE_BYTES, Math.ceil(totalEstimate / TARGET_PAGES_PER_TABLE)));
    const filePages: FilePageEntry[] = [];
    // Where each page's files begin (section 5): files are laid out back to back in table order.
    let logical = 0;
    let ref = 0;
    for (let i = 0; i < entries.length; ) {
      let bytes = 0;
      let j = i;
      while (j < entries.length && (j === i || bytes + entryEncodedSize(entries[j]) <= pageBytes)) bytes += entryEncodedSize(entries[j++]);
      const stored = this.frame(FRAME_FILE_PAGE, encodeFilePage(entries.slice(i, j), FORMAT_VERSION));
      const offset = this.append(stored);
      filePages.push({ firstPath: entries[i].path, offset, length: stored.byteLength, count: j - i, hash: hash(stored), firstLogical: logical, firstRef: ref });
      for (let k = i; k < j; k++) {
        const e = entries[k];
        if (e.type === 'file' && e.size > 0) {
          logical = e.logical + e.size;
          ref = e.firstRef + e.refCount;
        }
      }
      i = j;
      await this.drain();
    }

    const logicalSize = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
    if (logicalSize !== this.logical) {
      throw new HexzError('INTERNAL', `file sizes add up to ${logicalSize} but ${this.logical} bytes were chunked`);
    }
    const bases = this.opts.bases.map((b, i) => ({ ...b, logicalBytes: this.baseLogicalBytes[i] }));
    const rootBody = encodeRoot({
      logicalSize,
      fileCount: entries.length,
      refCount: this.refCount,
      storedChunkCount: this.storedChunkCount,
      storedChunkBytes: this.storedChunkBytes,
      selfLogicalBytes: this.selfLogicalBytes,
      holeBytes: this.holeBytes,
      chunking: fields.chunking,
      defaultCodec: fields.defaultCodec,
      defaultLevel: fields.defaultLevel,
      bases,
      metadata: fields.metadata,
      chunkPages: this.chunkPages,
      filePages,
    }, FORMAT_VERSION);
    const rootStored = this.frame(FRAME_ROOT, rootBody);
    const rootOffset = this.append(rootStored);
    const rootHash = hash(rootStored);
    const trailer: Trailer = {
      version: FORMAT_VERSION,
      flags: this.opts.keys ? FLAG_ENCRYPTED : 0,
      uuid: this.opts.uuid,
      rootOffset,
      rootLength: rootStored.byteLength,
      rootHash,
      kdf: this.opts.kdf,
      keyCheck: this.opts.keys?.keyCheck ?? new Uint8Array(16),
    };
    this.append(this.opts.signKey ? encodeSignedTrailer(trailer, this.opts.signKey) : encodeTrailer(trailer));
    await this.drain(true);
    await this.sink.commit();
    return { size: this.position, rootHash };
  }
}
