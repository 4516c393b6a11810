/**
 * The packer's ordered pipeline over a pool of worker threads (./worker.ts).
 *
 * Jobs live in a fixed set of job slots — SharedArrayBuffers for the raw input and the encoded output,
 * shared with every worker — so no buffer is allocated, copied or transferred per job and the number
 * of slots bounds memory. A job goes:
 *
 *   acquire a free slot → fill it (caller; or, for a file batch, the worker reads the files into it
 *   and cuts them) → submit → a worker hashes every chunk and compresses the ones whose id no thread
 *   has seen (./seen-set.ts) → write (caller, in job order) → slot freed
 *
 * Writing (where the caller classifies every chunk by its full id and lays it out) happens strictly
 * in submission order, so the archive is deterministic whatever the threads' timing. One message
 * each way per job: a worker never waits for the main thread in the middle of a job.
 */
import { Worker } from 'node:worker_threads';
import { SCAN_MEMORY_RESERVED, type ChunkingParams } from '../chunker/fastcdc.js';
import type { WasmMemory } from '../chunker/wasm.js';
import type { ArchiveKeys } from '../crypto/keys.js';
import { HexzError } from '../errors.js';
import { endWorker } from '../worker-exit.js';
import type { SeenSet } from './seen-set.js';
import type { BatchReply, WorkerConfig, WorkerReply } from './worker.js';

type Done = Extract<WorkerReply, { type: 'done' }>;

/** Room in an output slot beyond its input: zstd's worst-case expansion and sealing overhead of ~64 chunks. */
const OUTPUT_SLACK = 256 * 1024;

export interface PipelineJob<E, B = unknown> {
  seq: number;
  slot: number;
  events: E[];
  ranges: number[];
  /** A file batch (`submitBatch`): the caller's description of its files; the worker cut the chunks. */
  batch?: B;
}

/** What the worker made of a job (see ./worker.ts): ids, holes, and the chunks it compressed. */
export interface JobResult {
  ids: Uint8Array;
  zero: Uint8Array;
  /** Stored bytes of chunk i in `data` (in chunk order); 0 when the worker did not compress it. */
  lengths: Uint32Array;
  codecs: Uint8Array;
  data: Uint8Array;
  /** The job's raw input (to compress what the worker left out, in the rare cases that needs it). */
  input: Buffer;
  /** Chunk i is input[ranges[2i], ranges[2i+1]) (the job's ranges, or those the worker cut for a file batch). */
  ranges: ArrayLike<number>;
  /** File batches: what the worker read (./worker.ts). */
  batch?: BatchReply;
}

export interface PipelineOptions<E, B = unknown> {
  /** The worker threads to use (started earlier with `new WorkerThreads(n)`). */
  threads: WorkerThreads;
  codec: number;
  level: number;
  keys?: ArchiveKeys;
  /** Bytes per input slot. */
  capacity: number;
  /**
   * Where the input slots live: a scan memory (`createScanMemory`) of at least `slotCount(threads) ×
   * capacity` bytes, so the chunker scans them in place.
   */
  memory: WasmMemory;
  /** How file batches are cut (the archive's chunking parameters). */
  chunking: ChunkingParams;
  /** Ids already known (the bases'), shared with the workers; the pipeline adds what it sees. */
  seen: SeenSet;
  /** In job order: consume the job's result (valid only until the promise resolves). */
  write(job: PipelineJob<E, B>, result: JobResult): Promise<void>;
}

/** Job slots for `threads` workers: two each (one being worked on, one waiting) and two being filled or written. */
export function slotCount(threads: number): number {
  return Math.max(1, threads) * 2 + 2;
}

interface Thread {
  worker: Worker;
  busy: number;
}

/**
 * Worker threads started ahead of the pipeline that will use them: a thread takes tens of
 * milliseconds to boot and load its modules, which overlaps with walking the input and reading the
 * bases when the threads are started first. Configuration (codec, keys, job slots) follows in an
 * `init` message.
 */
export class WorkerThreads {
  readonly workers: Worker[];
  private taken = false;

  constructor(count: number) {
    this.workers = Array.from({ length: Math.max(1, count) }, () => new Worker(new URL('./worker.js', import.meta.url)));
    // Until a pipeline takes them over, an early failure must not crash the process.
    for (const w of this.workers) w.on('error', () => {});
  }

  /** Hand the threads to one pipeline. */
  take(): Worker[] {
    if (this.taken) throw new HexzError('INTERNAL', 'packer worker threads are already in use');
    this.taken = true;
    return this.workers;
  }

  /** End the threads after the jobs they hold (never `terminate()` one inside zstd: ../worker-exit.ts). */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => endWorker(w)));
  }
}

export class ChunkPipeline<E, B = unknown> {
  readonly capacity: number;
  private readonly inputs: Buffer[];
  private readonly outputs: SharedArrayBuffer[];
  private readonly freeSlots: number[];
  private readonly threads: Thread[];
  private readonly waiting = new Map<number, { resolve: (r: Done) => void; reject: (e: unknown) => void; thread: Thread }>();
  private readonly jobs = new Map<number, PipelineJob<E, B>>();
  private readonly done = new Map<number, Done>();
  private nextSeq = 0;
  private nextWrite = 0;
  private writing = false;
  private failure?: unknown;
  private wakeups: Array<() => void> = [];

  constructor(private readonly opts: PipelineOptions<E, B>) {
    const workers = opts.threads.take();
    const slots = slotCount(workers.length);
    this.capacity = opts.capacity;
    const offsets = Array.from({ length: slots }, (_, i) => SCAN_MEMORY_RESERVED + i * opts.capacity);
    if (opts.memory.buffer.byteLength < offsets[slots - 1] + opts.capacity) throw new HexzError('INTERNAL', 'packer scan memory too small for its job slots');
    this.inputs = offsets.map((o) => Buffer.from(opts.memory.buffer, o, opts.capacity));
    this.outputs = Array.from({ length: slots }, () => new SharedArrayBuffer(opts.capacity + OUTPUT_SLACK));
    this.freeSlots = Array.from({ length: slots }, (_, i) => i);
    const input = { buffer: opts.memory.buffer as SharedArrayBuffer, offsets, capacity: opts.capacity };
    const config: WorkerConfig = { codec: opts.codec, level: opts.level, keys: opts.keys, input, memory: opts.memory, chunking: opts.chunking, outputs: this.outputs, seen: opts.seen.buffer };
    this.threads = workers.map((worker) => {
      worker.postMessage({ type: 'init', config });
      const t: Thread = { worker, busy: 0 };
      worker.on('message', (reply: WorkerReply) => this.onReply(reply));
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.failure) this.fail(new HexzError('INTERNAL', `packer worker exited with code ${code}`));
      });
      return t;
    });
  }

  private wake(): void {
    const w = this.wakeups;
    this.wakeups = [];
    for (const f of w) f();
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.wake();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private onReply(reply: WorkerReply): void {
    const w = this.waiting.get(reply.seq);
    if (!w) return;
    this.waiting.delete(reply.seq);
    w.thread.busy--;
    if (reply.type === 'error') w.reject(new HexzError('INTERNAL', `packer worker: ${reply.message}`));
    else w.resolve(reply);
  }

  /** A free slot to fill (waits while every slot is in flight: the pipeline's backpressure). */
  async acquire(): Promise<{ slot: number; buffer: Buffer }> {
    for (;;) {
      this.check();
      const slot = this.freeSlots.pop();
      if (slot !== undefined) return { slot, buffer: this.inputs[slot] };
      await new Promise<void>((r) => this.wakeups.push(r));
    }
  }

  /** Start a filled slot through the pipeline: to the least busy worker. */
  submit(slot: number, events: E[], ranges: number[]): void {
    this.check();
    const r = Uint32Array.from(ranges);
    this.send({ seq: this.nextSeq++, slot, events, ranges }, { type: 'job', slot, ranges: r }, [r.buffer as ArrayBuffer]);
  }

  /**
   * Start a file batch through the pipeline: the worker reads `sources` (`sizes` bytes each, at most
   * the slot's capacity in all) into the slot and cuts them itself (./file-batch-worker.ts).
   */
  submitBatch(slot: number, sources: string[], sizes: Float64Array, batch: B): void {
    this.check();
    this.send({ seq: this.nextSeq++, slot, events: [], ranges: [], batch }, { type: 'files', slot, sources, sizes }, [sizes.buffer as ArrayBuffer]);
  }

  private send(job: PipelineJob<E, B>, msg: Record<string, unknown>, transfer: ArrayBuffer[]): void {
    this.jobs.set(job.seq, job);
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    new Promise<Done>((resolve, reject) => {
      this.waiting.set(job.seq, { resolve, reject, thread });
      thread.busy++;
      thread.worker.postMessage({ ...msg, seq: job.seq }, transfer);
    }).then(
      (d) => {
        this.done.set(job.seq, d);
        void this.writeReady();
      },
      (err) => this.fail(err),
    );
  }

  /** Write finished jobs in order, one at a time, freeing their slots. */
  private async writeReady(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      for (let d = this.done.get(this.nextWrite); d && !this.failure; d = this.done.get(this.nextWrite)) {
        const job = this.jobs.get(this.nextWrite)!;
        this.done.delete(job.seq);
        this.nextWrite++;
        const data = d.overflow ?? new Uint8Array(this.outputs[job.slot], 0, d.total);
        const ranges = d.batch?.ranges ?? job.ranges;
        await this.opts.write(job, { ids: d.ids, zero: d.zero, lengths: d.lengths, codecs: d.codecs, data, input: this.inputs[job.slot], ranges, batch: d.batch });
        this.jobs.delete(job.seq);
        this.freeSlots.push(job.slot);
        this.wake();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.writing = false;
    }
  }

  /** Wait until every submitted job is written; throws the first failure. */
  async finish(): Promise<void> {
    while (!this.failure && this.nextWrite < this.nextSeq) await new Promise<void>((r) => this.wakeups.push(r));
    this.check();
  }

  async close(): Promise<void> {
    this.failure ??= new HexzError('ABORTED', 'pipeline closed');
    this.wake();
    await this.opts.threads.terminate();
  }
}
