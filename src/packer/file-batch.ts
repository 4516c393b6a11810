/**
 * Small files travel in batches: the main thread only walks and orders them, and a worker thread
 * reads a whole batch into one job slot, cuts, hashes and compresses it (./file-batch-worker.ts). A
 * small file costs the main thread no system call and a few microseconds of JavaScript, where
 * reading and cutting it here cost it an open, a read and a close each, and made the main thread the
 * limit of packing many small files.
 */
import type { FileEntry } from '../format/file-table.js';
import type { InputEntry } from './walk.js';

/** Most files in one batch: a batch is one message each way, and its reply is written in one go. */
const MAX_BATCH_FILES = 2048;

/**
 * Files below this size are batched. Larger ones are read by the main thread, which probes the
 * sparse ones for holes (./job-builder.ts: it never probes smaller files) and streams files of any
 * size through job slots.
 */
export const BATCH_FILE_MAX_BYTES = 4 * 1024 * 1024 - 1;

/** A file of a batch: its table entry and what the walk found. */
export interface BatchFile {
  entry: FileEntry;
  input: InputEntry;
}

/** Where batches go: the pipeline (acquire a slot, submit the batch). */
export interface BatchSink {
  readonly capacity: number;
  acquire(): Promise<{ slot: number }>;
  submitBatch(slot: number, sources: string[], sizes: Float64Array, batch: BatchFile[]): void;
}

/** Collects consecutive small files and submits them as batches of at most one slot of bytes. */
export class FileBatcher {
  private files: BatchFile[] = [];
  private bytes = 0;

  constructor(private readonly sink: BatchSink) {}

  /** Whether a file of `size` bytes goes into a batch. */
  takes(size: number): boolean {
    return size <= BATCH_FILE_MAX_BYTES && size <= this.sink.capacity;
  }

  /** Add a file (`takes(size)` must hold), submitting the current batch first if it would not fit. */
  async add(file: BatchFile): Promise<void> {
    if (this.bytes + file.input.size > this.sink.capacity || this.files.length >= MAX_BATCH_FILES) await this.submit();
    this.files.push(file);
    this.bytes += file.input.size;
  }

  /** Submit the files collected so far (if any). */
  async submit(): Promise<void> {
    if (this.files.length === 0) return;
    const files = this.files;
    this.files = [];
    this.bytes = 0;
    const { slot } = await this.sink.acquire();
    this.sink.submitBatch(
      slot,
      files.map((f) => f.input.source),
      Float64Array.from(files, (f) => f.input.size),
      files,
    );
  }
}
