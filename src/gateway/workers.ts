/**
 * `hexz serve --workers N`: the gateway on every core of one process, with one cache.
 *
 * N worker threads (./worker-thread.ts) each run a whole gateway and listen on the same port with
 * SO_REUSEPORT (Node ≥ 22.12), so the kernel spreads connections over them. They share one chunk
 * arena in shared memory (cache/arena.ts), made here: one budget for the whole server, not N
 * budgets of which each would be smaller than the hot set (measured: two processes with the budget
 * split in half served less than one). The main thread serves no request; it supervises:
 * - `/metrics` on any worker shows the whole server: the main thread collects every worker's
 *   registry and its own (process metrics, worker restarts) and aggregates them (prom-client);
 * - a worker that dies is logged, counted and replaced, and its pins in the cache given back;
 * - `close()` drains every worker (in-flight responses finish, within the shutdown timeout).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { BlockCache } from '../../cache/block-cache.js';
import { HexzError, type ErrorCode } from '../errors.js';
import { serveConfig, type ServeConfig } from './config.js';
import type { Liveness } from './health-server.js';
import type { FromWorker, GatewayWorkerData, ToWorker } from './worker-thread.js';

/** Workers by default: one per core the process may use. */
/**
 * Young-generation size of each gateway thread's V8 heap. V8 sizes it from the machine's memory
 * (on 24 GiB, far more than a request needs): under load every thread grew its young generation
 * to ~150 MiB of RSS, so two workers reached 445–560 MiB with a 256 MiB cache budget. 32 MiB keeps a
 * busy worker's short-lived request objects in the young generation at the same request rate
 * (measured: /tree load 27k → 30k req/s, peak RSS 445 → 301 MiB; docs/operations.md, "Memory").
 */
const WORKER_YOUNG_GENERATION_MB = 32;

export function defaultGatewayWorkers(): number {
  return Math.max(1, os.availableParallelism());
}

/** One registry's metrics as JSON, the unit prom-client aggregates. */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** How long a `/metrics` request waits for the other workers' numbers before answering with what it has. */
const COLLECT_TIMEOUT_MS = 2_000;
/** A worker that keeps dying is replaced at most this often (a crash loop must not spin the CPU). */
const RESTART_DELAY_MS = 1_000;
/** How often the main thread pings every worker (liveness, ./health-server.ts). */
const HEARTBEAT_MS = 2_000;
/**
 * A worker whose event loop has not answered a ping for this long is stuck (a busy loop answers
 * within milliseconds: messages are handled every turn, unlike connections queued for accept).
 */
export const WORKER_STALE_MS = 30_000;

export interface GatewayCluster {
  url: string;
  port: number;
  config: ServeConfig;
  workers: number;
  /** Workers replaced after dying, since start. */
  restarts(): number;
  /** The worker threads serving now (diagnostics and tests: terminating one shows the supervision). */
  threads(): Worker[];
  /** Whether every worker's event loop answers (the liveness port's answer). */
  liveness(): Liveness;
  /** Drain every worker and stop. Safe to call more than once. */
  close(): Promise<void>;
}

interface Slot {
  worker: Worker;
  arenaThread?: number;
  ready: boolean;
  exited: boolean;
  /** When the worker last answered a ping (or became ready). */
  lastPong: number;
}

function urlOf(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host;
  return `http://${h}:${port}`;
}

/**
 * Start `workers` gateway threads on one port over one cache. Resolves when all listen; rejects with
 * the first worker's start-up error (a bad configuration, a port in use) after stopping the others.
 */
export async function startGatewayWorkers(config: Partial<ServeConfig>, opts: { workers?: number; log?: (fields: Record<string, unknown>, msg: string) => void } = {}): Promise<GatewayCluster> {
  const cfg = serveConfig(config);
  const n = Math.max(1, opts.workers ?? defaultGatewayWorkers());
  const log = opts.log ?? ((fields, msg) => process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), ...fields, msg })}\n`));
  // The one cache: this thread makes the arena, each worker attaches to it with its share of the rest.
  const cache = new BlockCache({ maxBytes: cfg.cacheBytes, threads: n });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const restarts = new Counter({ name: 'hexz_gateway_worker_restarts_total', help: 'Gateway worker threads that died and were replaced', registers: [registry] });
  const slots: Slot[] = [];
  let closing = false;
  let port = cfg.port;
  let restartCount = 0;
  const url = new URL('./worker-thread.js', import.meta.url);

  const collects = new Map<number, { pending: number; jsons: MetricsJson[]; done: () => void }>();
  let nextCollect = 1;

  /** Everyone's metrics, aggregated: the text a worker's /metrics answers. */
  const aggregate = async (): Promise<string> => {
    const id = nextCollect++;
    const live = slots.filter((s) => s.ready);
    const jsons: MetricsJson[] = [await registry.getMetricsAsJSON()];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      collects.set(id, { pending: live.length, jsons, done });
      if (live.length === 0) done();
      for (const s of live) s.worker.postMessage({ t: 'collect', id } satisfies ToWorker);
    });
    collects.delete(id);
    return AggregatorRegistry.aggregate(jsons).metrics();
  };

  const spawn = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      // The liveness port is the main thread's (serve.ts), never a worker's.
      const worker = new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB }, workerData: { config: { ...cfg, port, healthPort: undefined }, arena: cache.arenaHandle, threads: n } satisfies GatewayWorkerData });
      const slot: Slot = { worker, ready: false, exited: false, lastPong: Date.now() };
      slots[index] = slot;
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'pong') slot.lastPong = Date.now();
        else if (m.t === 'ready') {
          slot.ready = true;
          slot.lastPong = Date.now();
          slot.arenaThread = m.arenaThread;
          port = m.port; // the first worker picks the port when 0 was asked; the others join it
          resolve();
        } else if (m.t === 'failed') {
          reject(new HexzError((m.code as ErrorCode) ?? 'INTERNAL', m.message, m.context ?? {}));
        } else if (m.t === 'metrics') {
          const c = collects.get(m.id);
          if (c) {
            c.jsons.push(m.json as MetricsJson);
            if (--c.pending === 0) c.done();
          }
        } else if (m.t === 'metrics-request') {
          void aggregate().then((text) => worker.postMessage({ t: 'metrics-text', id: m.id, text } satisfies ToWorker));
        }
      });
      worker.on('error', (err) => {
        if (!slot.ready) reject(err);
        else log({ worker: index, err: err.message }, 'gateway worker failed');
      });
      worker.on('exit', (code) => {
        slot.ready = false;
        slot.exited = true;
        // Pins and segments the worker held in the shared cache would otherwise never come back.
        if (slot.arenaThread !== undefined) cache.arena.releaseThread(slot.arenaThread);
        if (closing || slots[index] !== slot) return;
        restarts.inc();
        restartCount++;
        log({ worker: index, code }, 'gateway worker exited; starting another');
        setTimeout(() => {
          if (!closing) spawn(index).catch((err: Error) => log({ worker: index, err: err.message }, 'gateway worker could not be replaced'));
        }, RESTART_DELAY_MS).unref();
      });
    });

  const heartbeat = setInterval(() => {
    for (const s of slots) if (s?.ready) s.worker.postMessage({ t: 'ping' } satisfies ToWorker);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const liveness = (): Liveness => {
    const now = Date.now();
    const ready = slots.filter((s) => s.ready);
    // A worker being replaced is not a failure of the process; none serving at all is.
    if (ready.length === 0) return { ok: false, reason: 'no gateway worker thread is serving' };
    const stuck = ready.findIndex((s) => now - s.lastPong > WORKER_STALE_MS);
    if (stuck >= 0) return { ok: false, reason: `gateway worker ${stuck} has not answered for ${Math.round((now - ready[stuck].lastPong) / 1000)} s` };
    return { ok: true };
  };

  const close = async () => {
    if (closing) return;
    closing = true;
    clearInterval(heartbeat);
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.exited) return resolve();
            const timer = setTimeout(() => void s.worker.terminate().then(() => resolve()), cfg.shutdownTimeoutMs + 2_000);
            s.worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            s.worker.postMessage({ t: 'drain' } satisfies ToWorker);
          }),
      ),
    );
  };

  try {
    await spawn(0); // first: it binds the port (a port of 0 becomes a real one)
    await Promise.all(Array.from({ length: n - 1 }, (_, i) => spawn(i + 1)));
  } catch (err) {
    await close();
    throw err;
  }
  return { url: urlOf(cfg.host, port), port, config: cfg, workers: n, restarts: () => restartCount, threads: () => slots.filter((s) => !s.exited).map((s) => s.worker), liveness, close };
}
