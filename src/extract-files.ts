/**
 * Writing the regular files of an extract (./extract.ts) from one bulk read of the archive: every
 * file's bytes come from `Archive.leasedPieces` over all files in table order — which is the order of
 * the logical space, so the chunks of many small files are fetched and decoded together in extents —
 * and go to disk as positional writes of up to `WRITE_BATCH` contiguous bytes straight from cache
 * memory, several writes in flight while the next extents decode.
 *
 * Each file is written to a temporary name next to its target (`.NAME.hexz-XXXXXXXX.tmp`, created with
 * O_EXCL | O_NOFOLLOW), then given its mode and mtime and renamed into place when complete, so a
 * failed or interrupted extract never leaves a partly written file under a final name: what it could
 * not finish is removed. Errors name the file (`no space left on device: writing …/x.bin`).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, throwIfAborted, toHexzError } from './errors.js';
import type { FileEntry } from './format/file-table.js';
import type { Archive, LeasedPiece } from './reader/archive.js';

/** Bytes of contiguous file content written with one writev: fewer syscalls and thread-pool round trips. */
const WRITE_BATCH = 1024 * 1024;
/** File-system operations in flight at once (writes, renames, attribute changes): keeps the disk and the thread pool busy while the next extents decode. */
const MAX_PENDING_OPS = 16;

export interface FileWriteOptions {
  signal?: AbortSignal;
  /** Called before anything in the destination is replaced or created. */
  onWrite?: () => void;
  /** Bytes of content passed so far (holes included). */
  onBytes?: (n: number) => void;
  /** Make sure the parent directory of `target` exists and is safe to write in (no symlink on the way). */
  ensureParent: (target: string, e: FileEntry) => Promise<void>;
  /** Where entry `e` goes. */
  targetOf: (e: FileEntry) => string;
  /** Replace an existing file (never a directory). */
  force: boolean;
  /** The mtime `fs.utimes` should be given for `e`. */
  mtimeOf: (e: FileEntry) => number | Date;
}

/** Write `buffers` at `position`, all of them: a short writev is finished by more writes. */
export async function writeAllAt(fh: fs.FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  let { bytesWritten } = await fh.writev(buffers, position);
  for (const b of buffers) {
    if (bytesWritten >= b.byteLength) {
      bytesWritten -= b.byteLength;
      position += b.byteLength;
      continue;
    }
    let done = bytesWritten;
    bytesWritten = 0;
    while (done < b.byteLength) {
      const r = await fh.write(b, done, b.byteLength - done, position + done);
      done += r.bytesWritten;
    }
    position += b.byteLength;
  }
}

/** One file being written: its temporary file and what is queued for it. */
class FileSink {
  fh?: fs.FileHandle;
  /** The file's operations, in order (open, writes, finish); rejected from its first failure on. */
  chain: Promise<void> = Promise.resolve();
  batch: LeasedPiece[] = [];
  batchAt = 0;
  batchBytes = 0;
  renamed = false;

  constructor(
    readonly entry: FileEntry,
    readonly target: string,
    readonly temp: string,
  ) {}
}

/** `err` as a typed error that names the file it happened to. */
function fileError(err: unknown, what: string, file: string, e: FileEntry): HexzError {
  const h = toHexzError(err, { path: e.path });
  if (h.code === 'ABORTED') return h;
  return new HexzError(h.code === 'INTERNAL' ? 'STORAGE_IO' : h.code, `${h.message}: ${what} ${file}`, { ...h.context, path: e.path, file }, { cause: err });
}

/**
 * Write `files` (regular files of `archive`, in table order) into place. Resolves when every file is
 * complete and renamed; on failure, removes the temporary files of those that were not, then throws.
 */
export async function writeFiles(archive: Archive, files: readonly FileEntry[], opts: FileWriteOptions): Promise<number> {
  const sinks: FileSink[] = [];
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  let bytes = 0;

  /** Queue an operation on a file; at most MAX_PENDING_OPS run at once across all files. */
  const queue = async (sink: FileSink, op: () => Promise<void>) => {
    while (pending.size >= MAX_PENDING_OPS) await Promise.race(pending);
    if (failure) throw failure;
    // A file's operations run in order, and none runs after one of them (or any file) failed: a
    // file whose write failed is never finished and renamed into place.
    const p = sink.chain.then(() => {
      if (failure) throw failure;
      return op();
    });
    sink.chain = p;
    p.catch(() => {}); // failures are recorded below
    const tracked = p.then(
      () => {},
      (err) => {
        failure ??= err;
      },
    );
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };

  const open = (sink: FileSink) =>
    queue(sink, async () => {
      const { entry: e, target, temp } = sink;
      await opts.ensureParent(target, e);
      opts.onWrite?.();
      if (opts.force) {
        const st = await fs.lstat(target).catch(() => undefined);
        if (st?.isDirectory()) throw new HexzError('EXISTS', `cannot replace directory ${target} with a file`, { path: e.path });
      }
      try {
        sink.fh = await fs.open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
      } catch (err) {
        throw fileError(err, 'creating', target, e);
      }
    });

  const flush = (sink: FileSink) => {
    if (sink.batchBytes === 0) return Promise.resolve();
    const pieces = sink.batch;
    const at = sink.batchAt;
    sink.batch = [];
    sink.batchBytes = 0;
    return queue(sink, async () => {
      try {
        await writeAllAt(sink.fh!, pieces.map((p) => p.bytes), at);
      } catch (err) {
        throw fileError(err, 'writing', sink.target, sink.entry);
      } finally {
        for (const p of pieces) p.release();
      }
    });
  };

  const finish = async (sink: FileSink) => {
    await flush(sink);
    await queue(sink, async () => {
      const { entry: e, target, temp } = sink;
      const fh = sink.fh!;
      try {
        // Holes stay holes: they were skipped, and the size is set here.
        await fh.truncate(e.size);
        await fh.chmod(e.mode);
        await fh.utimes(opts.mtimeOf(e), opts.mtimeOf(e));
      } catch (err) {
        throw fileError(err, 'finishing', target, e);
      } finally {
        sink.fh = undefined;
        await fh.close().catch(() => {});
      }
      try {
        await fs.rename(temp, target);
      } catch (err) {
        throw fileError(err, 'renaming into place', target, e);
      }
      sink.renamed = true;
    });
  };

  const sinkFor = async (e: FileEntry) => {
    const target = opts.targetOf(e);
    const sink = new FileSink(e, target, path.join(path.dirname(target), `.${path.basename(target)}.hexz-${randomBytes(4).toString('hex')}.tmp`));
    sinks.push(sink);
    await open(sink);
    return sink;
  };

  try {
    // Empty files have no bytes to read: created and finished in table order with the rest.
    const withBytes: FileEntry[] = [];
    for (const e of files) {
      if (e.size > 0) withBytes.push(e);
      else await finish(await sinkFor(e));
    }
    let current: FileSink | undefined;
    let span = -1;
    for await (const piece of archive.leasedPieces(
      withBytes.map((entry) => ({ entry, start: 0, end: entry.size })),
      { signal: opts.signal, cold: true },
    )) {
      if (failure) {
        piece.release();
        throw failure;
      }
      if (piece.span !== span) {
        if (current) await finish(current);
        span = piece.span;
        current = await sinkFor(withBytes[span]);
      }
      const sink = current!;
      bytes += piece.bytes.byteLength;
      opts.onBytes?.(bytes);
      if (piece.hole) {
        piece.release();
        continue;
      }
      if (sink.batchBytes && sink.batchAt + sink.batchBytes !== piece.offset) await flush(sink);
      if (!sink.batchBytes) sink.batchAt = piece.offset;
      sink.batch.push(piece);
      sink.batchBytes += piece.bytes.byteLength;
      if (sink.batchBytes >= WRITE_BATCH) await flush(sink);
    }
    if (current) await finish(current);
    while (pending.size) await Promise.race(pending);
    if (failure) throw failure;
    throwIfAborted(opts.signal);
    return bytes;
  } catch (err) {
    failure ??= err;
    throw failure;
  } finally {
    // On failure: let what is in flight settle, then remove every file not renamed into place.
    while (pending.size) await Promise.race(pending).catch(() => {});
    if (failure) {
      for (const s of sinks) {
        for (const p of s.batch) p.release();
        if (s.renamed) continue;
        await s.fh?.close().catch(() => {});
        await fs.unlink(s.temp).catch(() => {});
      }
    }
  }
}
