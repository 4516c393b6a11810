/**
 * `verify`: check every structure and re-hash every chunk an archive references, bases included,
 * bypassing the cache; with trusted keys, the signature of every archive of the chain too. Problems
 * are collected (with the file and structure they affect) rather than stopping at the first, up to a
 * limit.
 */
import { refusalOf, type TrustedKeys } from '../crypto/signatures.js';
import { HexzError, isHexzError, throwIfAborted, toHexzError } from '../errors.js';
import { bytesEqual } from '../format/bytes.js';
import { ContentDigest } from '../format/content-digest.js';
import { HEADER_SIZE } from '../format/constants.js';
import { decodeHeader } from '../format/header.js';
import type { ChunkRef } from '../format/chunk-index.js';
import type { FileEntry } from '../format/file-table.js';
import type { Archive, ChainSignature } from './archive.js';
import { TreeCheck } from './tree.js';

export interface VerifyProblem {
  code: string;
  message: string;
  path?: string;
  structure?: string;
}

export interface VerifyReport {
  ok: boolean;
  archive: string;
  files: number;
  /** Chunk references checked. */
  refs: number;
  /** Distinct stored chunks re-hashed (this archive's and its bases'). */
  chunks: number;
  /** Plaintext bytes re-hashed. */
  bytes: number;
  /** Distinct chunks that live in bases. */
  baseChunks: number;
  /** The signature of every archive of the chain (this one first), checked against the trusted keys given. */
  signatures: ChainSignature[];
  problems: VerifyProblem[];
  seconds: number;
}

/** Plaintext bytes of chunks checked per batch: several extents for every decode thread. */
const VERIFY_BATCH_BYTES = 64 * 1024 * 1024;
/** Batches in flight: one being decoded while the next is gathered. */
const VERIFY_BATCHES_IN_FLIGHT = 2;

export async function verifyArchive(
  archive: Archive,
  opts: {
    signal?: AbortSignal;
    maxProblems?: number;
    onProgress?: (done: number, total: number) => void;
    /** Require a trusted signature on every archive of the chain: each one that lacks it is a problem. */
    trustedKeys?: TrustedKeys;
  } = {},
): Promise<VerifyReport> {
  const t0 = performance.now();
  const maxProblems = opts.maxProblems ?? 100;
  const signatures = await archive.signatures(opts.trustedKeys);
  const report: VerifyReport = { ok: true, archive: archive.url, files: 0, refs: 0, chunks: 0, bytes: 0, baseChunks: 0, signatures, problems: [], seconds: 0 };
  const problem = (err: unknown, path?: string) => {
    const e = toHexzError(err);
    if (report.problems.length < maxProblems) {
      report.problems.push({ code: e.code, message: e.message, path, structure: e.context.structure as string | undefined });
    }
    report.ok = false;
  };

  // Signatures first: which archive of the chain is unsigned, signed by an unknown key, or altered.
  if (opts.trustedKeys) {
    for (const c of signatures) {
      const refusal = refusalOf(c, { archive: archive.url, url: c.url, ...(c.slot ? { base: c.uuid, slot: c.slot } : {}) });
      if (refusal) problem(refusal);
    }
  }

  // Header: must exist and agree with the trailer.
  try {
    const header = decodeHeader(await archive.storage.read(0, HEADER_SIZE));
    if (!bytesEqual(header.uuid, archive.trailer.uuid) || header.flags !== archive.trailer.flags) {
      throw new HexzError('CORRUPT', 'corrupt header: UUID or flags differ from the trailer', { structure: 'header' });
    }
  } catch (err) {
    problem(err);
  }

  /** Per owner slot: stored offset → how the first reference there reads it. */
  const seenAt: Array<Map<number, string>> = [];
  const oddRefs = new Set<string>();
  const inflight = new Set<Promise<void>>();
  // Chunks to check go in batches, decoded in extents on the decode threads (Archive.verifyChunks).
  let batch: Array<{ ref: ChunkRef; path: string }> = [];
  let batchBytes = 0;
  const flushBatch = async () => {
    if (!batch.length) return;
    const todo = batch;
    batch = [];
    batchBytes = 0;
    while (inflight.size >= VERIFY_BATCHES_IN_FLIGHT) await Promise.race(inflight);
    const p: Promise<void> = archive.verifyChunks(todo.map((t) => t.ref)).then((failed) => {
      const bad = new Map(failed.map((f) => [f.ref, f.error]));
      for (const t of todo) {
        const err = bad.get(t.ref);
        if (err !== undefined) problem(err, t.path);
        else {
          report.chunks++;
          report.bytes += t.ref.raw;
        }
      }
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  let storedCount = 0;
  let storedBytes = 0;
  let logical = 0;
  let refIndex = 0;
  const total = archive.root.logicalSize;

  const checkFile = async (e: FileEntry) => {
    if (e.type !== 'file') return;
    report.files++;
    if (e.size > 0 && (e.logical !== logical || e.firstRef !== refIndex)) {
      problem(new HexzError('CORRUPT', `corrupt file table: ${e.path} starts at logical ${e.logical}/ref ${e.firstRef}, expected ${logical}/${refIndex}`, { structure: 'file table' }), e.path);
    }
    let count = 0;
    let bytes = 0;
    const digest = e.digest ? new ContentDigest() : undefined;
    for await (const ref of archive.fileRefs(e)) {
      throwIfAborted(opts.signal);
      count++;
      bytes += ref.raw;
      report.refs++;
      if (ref.hole) digest?.zero(ref.raw);
      else digest?.chunk(ref.id, ref.raw);
      if (ref.hole) continue;
      // A stored chunk is counted and checked once per location, and again for every reference to that
      // location that reads it differently (id, length, stored length or codec): a hostile index must
      // not hide a reference behind an earlier, valid one.
      const sig = `${Buffer.from(ref.id).toString('latin1')}${ref.raw},${ref.stored},${ref.codec}`;
      const byOffset = (seenAt[ref.owner] ??= new Map());
      const first = byOffset.get(ref.offset);
      if (first === undefined) {
        byOffset.set(ref.offset, sig);
        if (ref.owner === 0) {
          storedCount++;
          storedBytes += ref.stored;
        } else report.baseChunks++;
      } else {
        if (first === sig) continue;
        const odd = `${ref.owner}:${ref.offset}:${sig}`;
        if (oddRefs.has(odd)) continue;
        oddRefs.add(odd);
      }
      batch.push({ ref, path: e.path });
      batchBytes += ref.raw;
      if (batchBytes >= VERIFY_BATCH_BYTES) await flushBatch();
    }
    if (digest && !bytesEqual(digest.finish(), e.digest!)) {
      problem(new HexzError('CORRUPT', `corrupt file table: the content digest recorded for ${e.path} is not the one of its references`, { structure: 'file table' }), e.path);
    }
    if (count !== e.refCount || bytes !== e.size) {
      problem(new HexzError('CORRUPT', `corrupt index: ${e.path} has ${count} references covering ${bytes} bytes, file table says ${e.refCount} and ${e.size}`, { structure: 'chunk index' }), e.path);
    }
    logical += e.size;
    refIndex += count;
    opts.onProgress?.(logical, total);
  };

  // The table must describe a tree: every entry below a directory that has its own entry.
  const tree = new TreeCheck((p) => archive.lookup(p), true);
  try {
    for await (const e of archive.walk()) {
      const misplaced = await tree.check(e).catch((err: unknown) => toHexzError(err));
      if (misplaced) problem(misplaced, e.path);
      try {
        await checkFile(e);
      } catch (err) {
        if (isHexzError(err, 'ABORTED')) throw err;
        problem(err, e.path);
        logical += e.size;
        refIndex += e.refCount;
      }
      if (report.problems.length >= maxProblems) break;
    }
  } catch (err) {
    if (isHexzError(err, 'ABORTED')) throw err;
    problem(err);
  }
  await flushBatch();
  await Promise.all(inflight);
  if (report.ok) {
    const r = archive.root;
    if (logical !== r.logicalSize || refIndex !== r.refCount) {
      problem(new HexzError('CORRUPT', `corrupt root: files cover ${logical} bytes in ${refIndex} references, root says ${r.logicalSize} in ${r.refCount}`, { structure: 'root' }));
    }
    if (storedCount !== r.storedChunkCount || storedBytes !== r.storedChunkBytes) {
      problem(new HexzError('CORRUPT', `corrupt root: ${storedCount} stored chunks of ${storedBytes} bytes referenced, root says ${r.storedChunkCount} of ${r.storedChunkBytes}`, { structure: 'root' }));
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
