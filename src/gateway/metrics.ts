/**
 * Prometheus metrics of the gateway (prom-client), in a registry per gateway so several gateways in
 * one process (tests, benchmarks) never share counters. Names and labels are listed in
 * docs/gateway.md, "Metrics". Cache numbers are read from `BlockCache.stats()` at scrape time and
 * storage numbers arrive through the `meterStorage` observer, so neither hot path does extra work.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BlockCache } from '../../cache/block-cache.js';
import type { StorageObserver } from '../../cache/metered.js';
import { SIGNATURE_REFUSALS } from '../crypto/signatures.js';

/** Latency buckets from a cached 4 KiB range (sub-millisecond) to a slow S3 first byte (seconds). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface GatewayMetricsOptions {
  cache: BlockCache;
  /** Number of archives currently open (read at scrape time). */
  openArchives: () => number;
  /** Node process metrics (CPU, memory, event loop lag, GC); on by default. */
  processMetrics?: boolean;
  /**
   * The exposition of the whole server when this gateway is one of several worker threads
   * (src/gateway/workers.ts): `/metrics` then answers with it instead of this registry alone.
   */
  aggregate?: () => Promise<string>;
}

/** A counter whose value is copied from a monotonic source at scrape time. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    // Cache numbers describe the one shared cache: every worker reports the same, so never add them up.
    aggregator: 'max',
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The gateway's metrics: HTTP, bytes served, block cache, storage, open archives, process. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method'>;
  readonly bytesServed: Counter<'route'>;
  readonly storageRequests: Counter<'backend' | 'op' | 'outcome'>;
  readonly storageBytes: Counter<'backend' | 'op'>;
  readonly storageDuration: Histogram<'backend' | 'op'>;
  readonly archiveOpens: Counter<'outcome'>;
  /** Responses cut because storage sent nothing for the request timeout while their body was being sent. */
  readonly bodyStalls: Counter;
  readonly archiveRefusals: Counter<'reason'>;

  private readonly aggregate?: () => Promise<string>;

  constructor(opts: GatewayMetricsOptions) {
    this.aggregate = opts.aggregate;
    const registers = [this.registry];
    this.httpRequests = new Counter({ name: 'hexz_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'hexz_http_request_duration_seconds',
      help: 'Time from request to the last byte of the response',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.bytesServed = new Counter({ name: 'hexz_http_response_body_bytes_total', help: 'Response body bytes handed to the socket (not counted while queued; a cut response counts what left)', labelNames: ['route'], registers });
    this.storageRequests = new Counter({ name: 'hexz_storage_requests_total', help: 'Requests to storage by backend, operation and outcome', labelNames: ['backend', 'op', 'outcome'], registers });
    this.storageBytes = new Counter({ name: 'hexz_storage_read_bytes_total', help: 'Bytes read from storage', labelNames: ['backend', 'op'], registers });
    this.storageDuration = new Histogram({ name: 'hexz_storage_request_duration_seconds', help: 'Storage request latency', labelNames: ['backend', 'op'], buckets: LATENCY_BUCKETS, registers });
    this.bodyStalls = new Counter({ name: 'hexz_http_body_stalls_total', help: 'Responses cut because storage sent nothing for the request timeout while their body was being sent', registers });
    this.archiveOpens = new Counter({ name: 'hexz_archive_opens_total', help: 'Archive opens by outcome (opened, reopened after a change, failed)', labelNames: ['outcome'], registers });
    this.archiveRefusals = new Counter({
      name: 'hexz_archive_refusals_total',
      help: 'Archive opens refused because the archive or a base lacks a trusted signature, by reason (unsigned, untrusted_signer, bad_signature)',
      labelNames: ['reason'],
      registers,
    });
    // Every reason from the start, at 0: an alert on a rate needs the series to exist before the first refusal.
    for (const code of SIGNATURE_REFUSALS) this.archiveRefusals.inc({ reason: code.toLowerCase() }, 0);
    new Gauge({
      name: 'hexz_open_archives',
      help: 'Archives currently open',
      registers,
      collect() {
        this.set(opts.openArchives());
      },
    });

    const cache = opts.cache;
    mirroredCounter(this.registry, 'hexz_cache_hits_total', 'Block cache hits (chunks and index pages)', () => cache.stats().hits);
    mirroredCounter(this.registry, 'hexz_cache_misses_total', 'Block cache misses (loads from storage)', () => cache.stats().misses);
    mirroredCounter(this.registry, 'hexz_cache_shared_loads_total', 'Requests that joined a load already in flight', () => cache.stats().shared);
    mirroredCounter(this.registry, 'hexz_cache_loaded_bytes_total', 'Bytes loaded into the block cache', () => cache.stats().loadedBytes);
    mirroredCounter(this.registry, 'hexz_cache_evictions_total', 'Block cache evictions', () => cache.stats().evictions);
    mirroredCounter(this.registry, 'hexz_cache_load_failures_total', 'Block cache loads that failed', () => cache.stats().failures);
    new Gauge({
      name: 'hexz_cache_bytes',
      aggregator: 'max',
      help: 'Bytes held by the block cache',
      registers,
      collect() {
        this.set(cache.stats().bytes);
      },
    });
    new Gauge({
      name: 'hexz_cache_max_bytes',
      aggregator: 'max',
      help: 'Block cache budget',
      registers,
      collect() {
        this.set(cache.maxBytes);
      },
    });
    new Gauge({
      name: 'hexz_cache_entries',
      aggregator: 'max',
      help: 'Entries in the block cache',
      registers,
      collect() {
        this.set(cache.stats().entries);
      },
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Feeds storage metrics; pass to `meterStorage` for every storage the gateway opens. */
  readonly observeStorage: StorageObserver = (e) => {
    const outcome = e.error ? 'error' : 'ok';
    this.storageRequests.inc({ backend: e.backend, op: e.op, outcome });
    if (e.bytes) this.storageBytes.inc({ backend: e.backend, op: e.op }, e.bytes);
    this.storageDuration.observe({ backend: e.backend, op: e.op }, e.seconds);
  };

  /** Record one finished HTTP exchange. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.httpRequests.inc({ route, method, status: String(status) });
    this.httpDuration.observe({ route, method }, seconds);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: this.aggregate ? await this.aggregate() : await this.registry.metrics() };
  }
}
