/**
 * Content digests of workspace files: one 32-byte value per file that is equal exactly when the
 * content is, computable both from an archive's chunk references (no chunk data read) and from the
 * bytes of a file on disk (chunked and hashed the way the packer would).
 *
 * The digest is over the canonical chunk sequence: each data chunk contributes its id and length; a
 * run of zero bytes contributes only its total length, however it was cut (the packer merges
 * adjacent all-zero chunks into hole references of up to 4 GiB, and cuts sparse files' holes
 * without reading them). So the digest depends only on the content and the archive's chunking
 * parameters and id key, never on how holes happened to be stored.
 */
import { promises as fs } from 'node:fs';
import { createChunker, type ChunkingParams } from '../chunker/fastcdc.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import { isAllZero } from '../format/chunk.js';
import type { ChunkRef } from '../format/chunk-index.js';
import { Blake3Hasher } from '@napi-rs/blake-hash';

/** One data chunk of a file: its id (hex) and plaintext length. Holes are not listed. */
export interface DigestChunk {
  id: string;
  raw: number;
}

export interface FileDigest {
  /** Hex digest of the canonical chunk sequence. */
  digest: string;
  /** The file's data chunks in order (for shared-bytes figures), when asked for. */
  chunks?: DigestChunk[];
}

const DATA = 1;
const ZEROS = 0;

/** Accumulates the canonical sequence; zero runs merge across however many pieces they came in. */
export class DigestBuilder {
  private readonly h = new Blake3Hasher();
  private zeros = 0;
  private readonly record = Buffer.alloc(1 + 8 + 32);
  readonly chunks?: DigestChunk[];

  constructor(keepChunks = false) {
    if (keepChunks) this.chunks = [];
  }

  zero(length: number): void {
    this.zeros += length;
  }

  chunk(id: Uint8Array, raw: number): void {
    this.flushZeros();
    this.record.writeUInt8(DATA, 0);
    this.record.writeBigUInt64LE(BigInt(raw), 1);
    this.record.set(id, 9);
    this.h.update(this.record);
    this.chunks?.push({ id: Buffer.from(id).toString('hex'), raw });
  }

  private flushZeros(): void {
    if (this.zeros === 0) return;
    this.record.fill(0);
    this.record.writeUInt8(ZEROS, 0);
    this.record.writeBigUInt64LE(BigInt(this.zeros), 1);
    this.h.update(this.record);
    this.zeros = 0;
  }

  finish(): FileDigest {
    this.flushZeros();
    return { digest: this.h.digestBuffer().toString('hex'), chunks: this.chunks };
  }
}

/** The digest of a file from its chunk references in an archive (index pages only). */
export async function digestFromRefs(refs: AsyncIterable<ChunkRef>, keepChunks = false): Promise<FileDigest> {
  const d = new DigestBuilder(keepChunks);
  for await (const r of refs) {
    if (r.hole) d.zero(r.raw);
    else d.chunk(r.id, r.raw);
  }
  return d.finish();
}

/** The digest of a symlink: its target (symlinks have no chunks). */
export function digestOfTarget(target: string): string {
  const h = new Blake3Hasher();
  h.update(Buffer.from(`symlink\0${target}`, 'utf8'));
  return h.digestBuffer().toString('hex');
}

/** Bytes read per call when hashing a file on disk; a multiple of any chunking's maximum is not needed. */
const READ_BYTES = 8 * 1024 * 1024;

/**
 * The digest of a file on disk, chunked with `chunking` and hashed with `idOf` (keyed for encrypted
 * archives), exactly as the packer would cut and name its chunks. Reads the file once, in bounded
 * memory.
 */
export async function digestFile(
  file: string,
  chunking: ChunkingParams,
  idOf: (plain: Uint8Array) => Uint8Array,
  opts: { keepChunks?: boolean; signal?: AbortSignal } = {},
): Promise<FileDigest> {
  const chunker = createChunker(chunking);
  const d = new DigestBuilder(opts.keepChunks);
  // Read straight into the chunker's scan memory, so the scan reads the bytes in place.
  const buf = chunker.buffer(READ_BYTES + chunking.max);
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    throw toHexzError(err, { path: file });
  }
  try {
    let filled = 0; // bytes in buf not yet cut
    let eof = false;
    while (!eof || filled > 0) {
      throwIfAborted(opts.signal, { path: file });
      if (!eof) {
        const { bytesRead } = await fh.read(buf, filled, buf.byteLength - filled, null);
        if (bytesRead === 0) eof = true;
        filled += bytesRead;
      }
      let at = 0;
      for (;;) {
        const n = chunker.cut(buf, at, filled, eof);
        if (n <= 0) break;
        const piece = buf.subarray(at, at + n);
        if (isAllZero(piece)) d.zero(n);
        else d.chunk(idOf(piece), n);
        at += n;
        if (at === filled) break;
      }
      buf.copy(buf, 0, at, filled);
      filled -= at;
      // A final cut consumes everything; anything left means the chunker broke its contract.
      if (eof && filled > 0) throw new HexzError('INTERNAL', `chunker left ${filled} bytes at the end of ${file}`);
    }
  } finally {
    await fh.close();
  }
  return d.finish();
}
