/**
 * A fixed pool of packer workers (./worker.ts). Each job is hashed and later encoded by the same
 * worker, which keeps the job's bytes between the two phases; new jobs go to the least busy worker.
 */
import { Worker } from 'node:worker_threads';
import { HexzError } from '../errors.js';
import type { WorkerConfig, WorkerReply } from './worker.js';

type Hashed = Extract<WorkerReply, { type: 'hashed' }>;
type Encoded = Extract<WorkerReply, { type: 'encoded' }>;

interface Slot {
  worker: Worker;
  busy: number;
}

export class ChunkWorkerPool {
  private readonly slots: Slot[];
  private readonly owner = new Map<number, Slot>();
  private readonly waiting = new Map<string, { resolve: (r: WorkerReply) => void; reject: (e: unknown) => void }>();
  private failure?: Error;

  constructor(threads: number, config: WorkerConfig) {
    this.slots = Array.from({ length: Math.max(1, threads) }, () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: config });
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.failure) this.fail(new Error(`packer worker exited with code ${code}`));
      });
      return slot;
    });
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    slot.busy--;
    const phase = reply.type === 'hashed' ? 'hash' : reply.type === 'encoded' ? 'encode' : reply.phase;
    const key = `${phase}:${reply.seq}`;
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    if (reply.type === 'error') w.reject(new HexzError('INTERNAL', `packer worker: ${reply.message}`));
    else w.resolve(reply);
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private send(slot: Slot, key: string, msg: object, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(key, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage(msg, transfer);
    });
  }

  /** Hash the chunks `ranges` of `buffer` (transferred to the worker). */
  async hash(seq: number, buffer: ArrayBuffer, ranges: Uint32Array): Promise<Hashed> {
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    this.owner.set(seq, slot);
    return (await this.send(slot, `hash:${seq}`, { type: 'hash', seq, buffer, ranges }, [buffer, ranges.buffer as ArrayBuffer])) as Hashed;
  }

  /** Encode the chunks at `indices` of a hashed job; releases the job's bytes in the worker. */
  async encode(seq: number, indices: Uint32Array): Promise<Encoded> {
    const slot = this.owner.get(seq);
    this.owner.delete(seq);
    if (!slot) throw new HexzError('INTERNAL', `job ${seq} was never hashed`);
    return (await this.send(slot, `encode:${seq}`, { type: 'encode', seq, indices }, [indices.buffer as ArrayBuffer])) as Encoded;
  }

  async close(): Promise<void> {
    this.failure ??= new Error('pool closed');
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
