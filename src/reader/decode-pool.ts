/**
 * Decoding on every core: a small pool of worker threads (./decode-worker.ts) that decode extents —
 * a run of chunks read with one storage request — straight into the shared chunk arena. The reading
 * thread only plans, reads and orders; a job is one message each way per extent (a few MiB), never
 * one per chunk, since per-chunk messages cost more than they save (measured: bench/README.md).
 *
 * Stored bytes reach a worker in shared memory (read there directly, or copied once: a memcpy is a
 * small fraction of decoding them). A chunk that does not decode or verify fails the job
 * with its typed `CORRUPT` / `AUTH_FAILED` error; the reader that asked gets it, nobody gets bytes.
 * Workers are unref'd (an idle pool never keeps a process alive); `close()` asks them to leave after
 * their queued jobs (../worker-exit.ts: terminating one inside zstd would abort the process).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ArchiveKeys } from '../crypto/keys.js';
import { HexzError, type ErrorCode, type ErrorContext } from '../errors.js';
import { endWorker } from '../worker-exit.js';

/** Decode threads when nothing says otherwise: one per core (the reading thread mostly waits on I/O). */
export function defaultDecodeThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/** Keys of an encrypted archive, sent once before the first job that needs them. */
export interface KeysMessage {
  t: 'keys';
  id: number;
  keys: ArchiveKeys;
}

/** One extent to decode. Offsets of chunk i: stored bytes at `storedAt[i]` of the input, plaintext at `outAt + rawAt[i]`. */
export interface DecodeJob {
  t: 'job';
  job: number;
  /** 0 for a plain archive, else the id of a KeysMessage. */
  keys: number;
  input: ArrayBuffer | SharedArrayBuffer;
  inputOffset: number;
  inputLength: number;
  /** Where the plaintext goes: the cache arena's data, or a shared buffer of the read's own (sharing it costs no copy). */
  out: SharedArrayBuffer;
  outAt: number;
  count: number;
  storedAt: Int32Array;
  storedLength: Int32Array;
  rawAt: Int32Array;
  rawLength: Int32Array;
  codec: Uint8Array;
  ids: Uint8Array;
  /** Stored offset of each chunk, for error messages. */
  offsets: Float64Array;
  context: ErrorContext;
}

export interface DecodeReply {
  job: number;
  error?: { code: ErrorCode; message: string; context: ErrorContext };
}

/** A chunk of an extent to decode: its stored bytes at `storedAt` of the read, its plaintext at `rawAt` of the output. */
export interface ExtentChunk {
  id: Uint8Array;
  codec: number;
  storedAt: number;
  storedLength: number;
  rawAt: number;
  rawLength: number;
  /** Stored offset in the archive (error context). */
  offset: number;
}

interface Pending {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PoolWorker {
  worker: Worker;
  inflight: number;
  /** Keys ids this worker has been sent. */
  keys: Set<number>;
}

export class DecodePool {
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly keyIds = new WeakMap<ArchiveKeys, number>();
  private nextJob = 1;
  private nextKeys = 1;
  private closed = false;
  private failure?: Error;

  constructor(readonly threads: number) {
    const url = new URL('./decode-worker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(url);
      const w: PoolWorker = { worker, inflight: 0, keys: new Set() };
      worker.on('message', (r: DecodeReply) => this.settle(w, r));
      worker.on('error', (err) => this.crashed(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.crashed(new Error(`decode worker exited with code ${code}`));
      });
      worker.unref();
      this.workers.push(w);
    }
  }

  private settle(w: PoolWorker, r: DecodeReply): void {
    w.inflight--;
    // Idle workers never keep the process alive — except once closing, when endWorker holds them
    // referenced until their thread has ended (a reply to a job sent before the close must not let
    // the process exit first: that was exit 13, "unsettled top-level await", after failed reads).
    if (w.inflight === 0 && !this.closed) w.worker.unref();
    const p = this.pending.get(r.job);
    if (!p) return;
    this.pending.delete(r.job);
    if (r.error) p.reject(new HexzError(r.error.code, r.error.message, r.error.context));
    else p.resolve();
  }

  /** A worker died: every job in flight fails, and later jobs fail at once (the reader decodes inline then). */
  private crashed(err: Error): void {
    this.failure ??= err;
    for (const [, p] of this.pending) p.reject(new HexzError('INTERNAL', `decode worker failed: ${err.message}`, {}, { cause: err }));
    this.pending.clear();
  }

  /** Whether jobs can be taken (not closed, no worker lost). */
  get usable(): boolean {
    return !this.closed && !this.failure;
  }

  /**
   * Decode `chunks` from `input` (the extent's stored bytes) into `out.buffer` at `out.offset` (the
   * cache arena's data, or a shared buffer of the caller's). `input` is copied into shared memory
   * unless it is there already.
   */
  decode(input: Uint8Array, chunks: readonly ExtentChunk[], out: { buffer: SharedArrayBuffer; offset: number }, keys: ArchiveKeys | undefined, context: ErrorContext): Promise<void> {
    if (!this.usable) return Promise.reject(new HexzError('INTERNAL', `decode pool ${this.closed ? 'closed' : `lost a worker: ${this.failure?.message}`}`));
    const w = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    let keysId = 0;
    if (keys) {
      keysId = this.keyIds.get(keys) ?? this.nextKeys++;
      this.keyIds.set(keys, keysId);
      if (!w.keys.has(keysId)) {
        w.worker.postMessage({ t: 'keys', id: keysId, keys } satisfies KeysMessage);
        w.keys.add(keysId);
      }
    }
    const n = chunks.length;
    const job: DecodeJob = {
      t: 'job',
      job: this.nextJob++,
      keys: keysId,
      input: input.buffer,
      inputOffset: input.byteOffset,
      inputLength: input.byteLength,
      out: out.buffer,
      outAt: out.offset,
      count: n,
      storedAt: new Int32Array(n),
      storedLength: new Int32Array(n),
      rawAt: new Int32Array(n),
      rawLength: new Int32Array(n),
      codec: new Uint8Array(n),
      ids: new Uint8Array(32 * n),
      offsets: new Float64Array(n),
      context,
    };
    for (let i = 0; i < n; i++) {
      const c = chunks[i];
      job.storedAt[i] = c.storedAt;
      job.storedLength[i] = c.storedLength;
      job.rawAt[i] = c.rawAt;
      job.rawLength[i] = c.rawLength;
      job.codec[i] = c.codec;
      job.ids.set(c.id, 32 * i);
      job.offsets[i] = c.offset;
    }
    if (!(input.buffer instanceof SharedArrayBuffer)) {
      // Stored bytes from storage may be shared with other readers (a coalesced read, a cached tail,
      // an in-memory object): never transfer them; one copy into shared memory.
      const shared = new SharedArrayBuffer(input.byteLength);
      new Uint8Array(shared).set(input);
      job.input = shared;
      job.inputOffset = 0;
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.set(job.job, { resolve, reject });
      if (w.inflight++ === 0) w.worker.ref();
      w.worker.postMessage(job);
    });
  }

  /** End the workers (after the jobs they hold, whose results are dropped); jobs still in flight fail with ABORTED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) p.reject(new HexzError('ABORTED', 'decode pool closed'));
    this.pending.clear();
    await Promise.all(this.workers.map((w) => endWorker(w.worker)));
  }
}

let shared: DecodePool | undefined;

/**
 * The process's decode pool, started on first use with `threads` workers (the first caller's number
 * wins; a pool that lost a worker is replaced); 0 threads means "decode on the reading thread"
 * (undefined). Workers do not belong to a cache: every job names the shared memory it writes to.
 */
export function sharedDecodePool(threads = defaultDecodeThreads()): DecodePool | undefined {
  if (threads <= 0) return undefined;
  if (!shared || !shared.usable) shared = new DecodePool(threads);
  return shared;
}

/** End the process's decode pool, if one was started (before `process.exit`: see ../worker-exit.ts). */
export async function closeSharedDecodePool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}
