/**
 * Content digests of workspace files (src/format/content-digest.ts): from an archive's chunk
 * references (no chunk data read) and from the bytes of a file on disk (chunked and hashed the way
 * the packer would), so a workspace can tell a changed file from a rewritten but equal one.
 */
import { promises as fs } from 'node:fs';
import { createChunker, type ChunkingParams } from '../chunker/fastcdc.js';
import { HexzError, throwIfAborted, toHexzError } from '../errors.js';
import { isAllZero } from '../format/chunk.js';
import type { ChunkRef } from '../format/chunk-index.js';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { ContentDigest } from '../format/content-digest.js';

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

/** Accumulates the canonical sequence (src/format/content-digest.ts), optionally listing the data chunks. */
export class DigestBuilder {
  private readonly d = new ContentDigest();
  readonly chunks?: DigestChunk[];

  constructor(keepChunks = false) {
    if (keepChunks) this.chunks = [];
  }

  zero(length: number): void {
    this.d.zero(length);
  }

  chunk(id: Uint8Array, raw: number): void {
    this.d.chunk(id, raw);
    this.chunks?.push({ id: Buffer.from(id).toString('hex'), raw });
  }

  finish(): FileDigest {
    return { digest: this.d.finish().toString('hex'), chunks: this.chunks };
  }
}

/** The digest of a file from its chunk references in an archive (index pages only). */
export async function digestFromRefs(refs: AsyncIterable<ChunkRef> | Iterable<ChunkRef>, keepChunks = false): Promise<FileDigest> {
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

/**
 * The digest of a file given as pieces (src/workspace/overlay/extents.ts, `planFile`): HEAD's chunk
 * references where it is unchanged, and ranges read through `read` and chunked the packer's way
 * (each range starts at a chunk boundary and ends at one or at the end of the file). Returns the
 * bytes it read, so status can say what it hashed.
 */
export async function digestPieces(
  pieces: ReadonlyArray<{ kind: 'refs'; refs: readonly ChunkRef[] } | { kind: 'read'; start: number; end: number }>,
  read: (buf: Buffer, at: number, n: number, pos: number) => Promise<void>,
  chunking: ChunkingParams,
  idOf: (plain: Uint8Array) => Uint8Array,
): Promise<FileDigest & { readBytes: number }> {
  const d = new DigestBuilder();
  let readBytes = 0;
  for (const piece of pieces) {
    if (piece.kind === 'refs') {
      for (const r of piece.refs) {
        if (r.hole) d.zero(r.raw);
        else d.chunk(r.id, r.raw);
      }
      continue;
    }
    const chunker = createChunker(chunking);
    const buf = chunker.buffer(READ_BYTES + chunking.max);
    let filled = 0;
    let pos = piece.start;
    while (pos < piece.end || filled > 0) {
      if (pos < piece.end) {
        const n = Math.min(buf.byteLength - filled, piece.end - pos);
        await read(buf, filled, n, pos);
        pos += n;
        filled += n;
        readBytes += n;
      }
      const eof = pos >= piece.end;
      let at = 0;
      for (;;) {
        const n = chunker.cut(buf, at, filled, eof);
        if (n <= 0) break;
        const cut = buf.subarray(at, at + n);
        if (isAllZero(cut)) d.zero(n);
        else d.chunk(idOf(cut), n);
        at += n;
        if (at === filled) break;
      }
      buf.copy(buf, 0, at, filled);
      filled -= at;
      if (eof && filled > 0) throw new HexzError('INTERNAL', `chunker left ${filled} bytes at the end of a range`);
    }
  }
  return { ...d.finish(), readBytes };
}
