/**
 * The packer's ordered pipeline over a pool of worker threads (./worker.ts).
 *
 * Jobs live in a fixed set of job slots — SharedArrayBuffers for the raw input and the encoded output,
 * shared with every worker — so no buffer is allocated, copied or transferred per job and the number
 * of slots bounds memory. A job goes:
 *
 *   acquire a free slot → fill it (caller) → submit → a worker hashes it → classify (caller, in job
 *   order) → the same worker encodes the chunks to keep → write (caller, in job order) → slot freed
 *
 * Classification and writing happen strictly in submission order, so the archive is deterministic
 * whatever the threads' timing.
 */
import { Worker } from 'node:worker_threads';
import type { ArchiveKeys } from '../crypto/keys.js';
import { HexzError } from '../errors.js';
import type { WorkerReply } from './worker.js';

type Hashed = Extract<WorkerReply, { type: 'hashed' }>;
type Encoded = Extract<WorkerReply, { type: 'encoded' }>;

/** Room in an output slot beyond its input: zstd's worst-case expansion and sealing overhead of ~64 chunks. */
const OUTPUT_SLACK = 256 * 1024;

export interface PipelineJob<E> {
  seq: number;
  slot: number;
  events: E[];
  ranges: number[];
  hashed?: { ids: Uint8Array; zero: Uint8Array };
}

export interface PipelineOptions<E> {
  threads: number;
  codec: number;
  level: number;
  keys?: ArchiveKeys;
  /** Bytes per input slot. */
  capacity: number;
  /** In job order, once hashed: which chunks (indices into `ranges`) to encode. */
  classify(job: PipelineJob<E> & { hashed: { ids: Uint8Array; zero: Uint8Array } }): Uint32Array;
  /** In job order, once encoded: consume the encoded bytes (valid only until the promise resolves). */
  write(job: PipelineJob<E>, encoded: { data: Uint8Array; lengths: Uint32Array; codecs: Uint8Array }): Promise<void>;
}

interface Thread {
  worker: Worker;
  busy: number;
}

export class ChunkPipeline<E> {
  readonly capacity: number;
  private readonly inputs: SharedArrayBuffer[];
  private readonly outputs: SharedArrayBuffer[];
  private readonly freeSlots: number[];
  private readonly threads: Thread[];
  private readonly owner = new Map<number, Thread>();
  private readonly waiting = new Map<string, { resolve: (r: WorkerReply) => void; reject: (e: unknown) => void }>();
  private readonly jobs = new Map<number, PipelineJob<E>>();
  private readonly encoded = new Map<number, Encoded>();
  private nextSeq = 0;
  private nextClassify = 0;
  private nextWrite = 0;
  private writing = false;
  private failure?: unknown;
  private wakeups: Array<() => void> = [];

  constructor(private readonly opts: PipelineOptions<E>) {
    const threads = Math.max(1, opts.threads);
    const slots = threads * 2 + 2;
    this.capacity = opts.capacity;
    this.inputs = Array.from({ length: slots }, () => new SharedArrayBuffer(opts.capacity));
    this.outputs = Array.from({ length: slots }, () => new SharedArrayBuffer(opts.capacity + OUTPUT_SLACK));
    this.freeSlots = Array.from({ length: slots }, (_, i) => i);
    const workerData = { codec: opts.codec, level: opts.level, keys: opts.keys, inputs: this.inputs, outputs: this.outputs };
    this.threads = Array.from({ length: threads }, () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData });
      const t: Thread = { worker, busy: 0 };
      worker.on('message', (reply: WorkerReply) => this.onReply(t, reply));
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

  private onReply(thread: Thread, reply: WorkerReply): void {
    thread.busy--;
    const phase = reply.type === 'hashed' ? 'hash' : reply.type === 'encoded' ? 'encode' : reply.phase;
    const key = `${phase}:${reply.seq}`;
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    if (reply.type === 'error') w.reject(new HexzError('INTERNAL', `packer worker: ${reply.message}`));
    else w.resolve(reply);
  }

  private send(thread: Thread, key: string, msg: object, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(key, { resolve, reject });
      thread.busy++;
      thread.worker.postMessage(msg, transfer);
    });
  }

  /** A free slot to fill (waits while every slot is in flight: the pipeline's backpressure). */
  async acquire(): Promise<{ slot: number; buffer: Buffer }> {
    for (;;) {
      this.check();
      const slot = this.freeSlots.pop();
      if (slot !== undefined) return { slot, buffer: Buffer.from(this.inputs[slot]) };
      await new Promise<void>((r) => this.wakeups.push(r));
    }
  }

  /** Start a filled slot through the pipeline. */
  submit(slot: number, events: E[], ranges: number[]): void {
    this.check();
    const job: PipelineJob<E> = { seq: this.nextSeq++, slot, events, ranges };
    this.jobs.set(job.seq, job);
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    this.owner.set(job.seq, thread);
    const r = Uint32Array.from(ranges);
    this.send(thread, `hash:${job.seq}`, { type: 'hash', seq: job.seq, slot, ranges: r }, [r.buffer as ArrayBuffer]).then((h) => {
      job.hashed = { ids: (h as Hashed).ids, zero: (h as Hashed).zero };
      this.advance();
    }, (err) => this.fail(err));
  }

  /** Move every job that can move: classify hashed jobs in order, write encoded jobs in order. */
  private advance(): void {
    if (this.failure) return;
    for (let job = this.jobs.get(this.nextClassify); job?.hashed; job = this.jobs.get(this.nextClassify)) {
      this.nextClassify++;
      let indices: Uint32Array;
      try {
        indices = this.opts.classify(job as PipelineJob<E> & { hashed: { ids: Uint8Array; zero: Uint8Array } });
      } catch (err) {
        return this.fail(err);
      }
      const seq = job.seq;
      const thread = this.owner.get(seq)!;
      this.owner.delete(seq);
      this.send(thread, `encode:${seq}`, { type: 'encode', seq, indices }, [indices.buffer as ArrayBuffer]).then((e) => {
        this.encoded.set(seq, e as Encoded);
        void this.writeReady();
      }, (err) => this.fail(err));
    }
  }

  /** Write encoded jobs in order, one at a time, freeing their slots. */
  private async writeReady(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      for (let enc = this.encoded.get(this.nextWrite); enc && !this.failure; enc = this.encoded.get(this.nextWrite)) {
        const job = this.jobs.get(this.nextWrite)!;
        this.encoded.delete(job.seq);
        this.nextWrite++;
        const data = enc.overflow ?? new Uint8Array(this.outputs[job.slot], 0, enc.total);
        await this.opts.write(job, { data, lengths: enc.lengths, codecs: enc.codecs });
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
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
