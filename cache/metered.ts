/**
 * Storage metering as a wrapper: counts requests, bytes and latency per backend. The gateway exports
 * these as Prometheus metrics; tests use them to assert how many requests an operation costs.
 */
import { readInto as readIntoAny, type ReadOptions, type Storage, type StorageStat } from '../storage/types.js';

export interface StorageCounters {
  requests: number;
  bytes: number;
  errors: number;
  /** Sum of request latencies in seconds. */
  seconds: number;
}

/** Observer called after every request (the gateway feeds histograms from it). */
export type StorageObserver = (event: { backend: string; op: 'read' | 'tail' | 'stat'; bytes: number; seconds: number; error?: unknown }) => void;

class MeteredStorage implements Storage {
  constructor(
    private readonly inner: Storage,
    readonly counters: StorageCounters,
    private readonly observe?: StorageObserver,
  ) {}

  get url(): string {
    return this.inner.url;
  }
  get backend(): string {
    return this.inner.backend;
  }

  private async timed<T>(op: 'read' | 'tail' | 'stat', run: () => Promise<T>, size: (v: T) => number): Promise<T> {
    const t0 = process.hrtime.bigint();
    this.counters.requests++;
    try {
      const v = await run();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const bytes = size(v);
      this.counters.bytes += bytes;
      this.counters.seconds += seconds;
      this.observe?.({ backend: this.backend, op, bytes, seconds });
      return v;
    } catch (error) {
      this.counters.errors++;
      this.observe?.({ backend: this.backend, op, bytes: 0, seconds: Number(process.hrtime.bigint() - t0) / 1e9, error });
      throw error;
    }
  }

  stat(opts?: ReadOptions): Promise<StorageStat> {
    return this.timed('stat', () => this.inner.stat(opts), () => 0);
  }

  read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    return this.timed('read', () => this.inner.read(offset, length, opts), (b) => b.byteLength);
  }

  readInto(offset: number, dst: Uint8Array, opts?: ReadOptions): Promise<void> {
    return this.timed('read', () => readIntoAny(this.inner, offset, dst, opts), () => dst.byteLength);
  }

  readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    return this.timed('tail', () => this.inner.readTail(length, opts), (r) => r.bytes.byteLength);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Fresh zeroed counters. */
export function newCounters(): StorageCounters {
  return { requests: 0, bytes: 0, errors: 0, seconds: 0 };
}

/** Wrap a storage so every request is counted into `counters` (and reported to `observe`). */
export function meterStorage(storage: Storage, counters: StorageCounters = newCounters(), observe?: StorageObserver): Storage & { counters: StorageCounters } {
  return new MeteredStorage(storage, counters, observe);
}
