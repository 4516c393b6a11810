/**
 * Worker side of a file batch (./file-batch.ts): read a batch of small files whole into a job slot
 * (open, one positional read, close: three system calls a file), and cut each into chunks with the
 * same FastCDC scan the main thread uses (over the same scan memory, in place). The chunks then go
 * through the worker's usual hash-and-compress loop; the files' content digests (docs/format.md,
 * section 7.3) are computed here too, from the chunk ids, so the main thread only lays out references.
 */
import fs from 'node:fs';
import type { Chunker } from '../chunker/fastcdc.js';
import { hash, HASH_BYTES } from '../hash.js';

/** Why a file of a batch has no content: the error of its open (skippable) or of its read. */
export interface FileFailure {
  /** Index of the file in the batch. */
  file: number;
  /** The failing call was the open (a vanished or unreadable file is skipped, as the main thread does). */
  open: boolean;
  code?: string;
  errno?: number;
  syscall?: string;
  message: string;
}

export interface ReadBatch {
  /** Chunk ranges in the slot: start, end, start, end, … in file order. */
  ranges: Uint32Array;
  /** Per file: chunks, then bytes read (fewer than its size when it shrank); -1 chunks when it failed. */
  files: Float64Array;
  failures: FileFailure[];
}

/** Read and chunk `sources` (`sizes` bytes each at walk time, summing to at most the slot) into `slot`. */
export function readBatch(slot: Buffer, chunker: Chunker, sources: string[], sizes: Float64Array): ReadBatch {
  const n = sources.length;
  const files = new Float64Array(2 * n);
  const failures: FileFailure[] = [];
  const ranges: number[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const size = sizes[i];
    if (size === 0) continue; // an empty file is not opened (as on the main thread)
    let fd: number;
    try {
      fd = fs.openSync(sources[i], 'r');
    } catch (err) {
      failures.push(failureOf(i, true, err));
      files[2 * i] = -1;
      continue;
    }
    let got = 0;
    try {
      while (got < size) {
        const r = fs.readSync(fd, slot, at + got, size - got, got);
        if (r === 0) break; // shrank since the walk
        got += r;
      }
    } catch (err) {
      failures.push(failureOf(i, false, err));
      files[2 * i] = -1;
      continue;
    } finally {
      fs.closeSync(fd);
    }
    const end = at + got;
    let chunks = 0;
    for (let s = at; s < end; chunks++) {
      const len = chunker.cut(slot, s, end, true);
      ranges.push(s, s + len);
      s += len;
    }
    files[2 * i] = chunks;
    files[2 * i + 1] = got;
    at = end;
  }
  return { ranges: Uint32Array.from(ranges), files, failures };
}

function failureOf(file: number, open: boolean, err: unknown): FileFailure {
  const e = err as NodeJS.ErrnoException;
  return { file, open, code: e?.code, errno: e?.errno, syscall: e?.syscall, message: e instanceof Error ? e.message : String(err) };
}

/** Bytes of one record of the canonical chunk sequence (kind, u64 length, id). */
const RECORD_BYTES = 1 + 8 + HASH_BYTES;

/**
 * Content digests of the batch's files (docs/format.md, section 7.3; what ../format/content-digest.ts
 * computes chunk by chunk on the main thread): one hash over each file's records, all-zero chunks
 * merged into one zero-run record.
 */
export function batchDigests(batch: ReadBatch, ids: Uint8Array, zero: Uint8Array): Uint8Array {
  const n = batch.files.length / 2;
  const digests = new Uint8Array(n * HASH_BYTES);
  let records = Buffer.alloc(RECORD_BYTES * 16);
  let chunk = 0;
  for (let i = 0; i < n; i++) {
    const chunks = batch.files[2 * i];
    if (chunks < 0) continue;
    if (records.byteLength < chunks * RECORD_BYTES) records = Buffer.alloc(chunks * RECORD_BYTES);
    let at = 0;
    let zeros = 0;
    const flushZeros = () => {
      if (zeros === 0) return;
      records.fill(0, at, at + RECORD_BYTES);
      records.writeBigUInt64LE(BigInt(zeros), at + 1);
      at += RECORD_BYTES;
      zeros = 0;
    };
    for (let c = 0; c < chunks; c++, chunk++) {
      const length = batch.ranges[2 * chunk + 1] - batch.ranges[2 * chunk];
      if (zero[chunk]) {
        zeros += length;
        continue;
      }
      flushZeros();
      records[at] = 1;
      records.writeBigUInt64LE(BigInt(length), at + 1);
      records.set(ids.subarray(chunk * HASH_BYTES, (chunk + 1) * HASH_BYTES), at + 9);
      at += RECORD_BYTES;
    }
    flushZeros();
    digests.set(hash(records.subarray(0, at)), i * HASH_BYTES);
  }
  return digests;
}
