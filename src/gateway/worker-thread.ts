/**
 * One gateway worker thread (src/gateway/workers.ts): a complete gateway (Fastify app, archive
 * registry, routes) listening with SO_REUSEPORT on the server's port, over the one chunk arena the
 * main thread made, so every worker serves from the same cache within the same budget.
 *
 * Messages: the main thread sends `drain` (finish in-flight responses, then exit) and `collect`
 * (this worker's metrics as JSON); the worker sends `ready`, `metrics`, and `metrics-request` when
 * its /metrics is asked for the whole server, answered with `metrics-text`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BlockCache } from '../../cache/block-cache.js';
import type { ArenaHandle } from '../../cache/arena.js';
import { startGateway } from './server.js';
import type { ServeConfig } from './config.js';

export interface GatewayWorkerData {
  config: ServeConfig;
  arena: ArenaHandle;
  /** Worker threads sharing the budget. */
  threads: number;
}

export type ToWorker = { t: 'drain' } | { t: 'ping' } | { t: 'collect'; id: number } | { t: 'metrics-text'; id: number; text: string };
export type FromWorker =
  | { t: 'ready'; port: number; arenaThread: number }
  | { t: 'failed'; message: string; code?: string; context?: Record<string, unknown> }
  | { t: 'metrics'; id: number; json: unknown }
  | { t: 'metrics-request'; id: number }
  | { t: 'pong' }
  | { t: 'closed' };

const port = parentPort!;
const data = workerData as GatewayWorkerData;
const post = (m: FromWorker) => port.postMessage(m);

const cache = new BlockCache({ maxBytes: data.config.cacheBytes, arena: data.arena, threads: data.threads });
const waiting = new Map<number, (text: string) => void>();
let nextId = 1;

try {
  const gateway = await startGateway(data.config, {
    cache,
    // Process metrics (memory, CPU, event loop of the process) come from the main thread, once.
    processMetrics: false,
    reusePort: true,
    // Extents decode on this thread: the gateway already runs a thread per core, and a decode pool
    // per gateway thread added two more V8 isolates each (~25 MiB of RSS apiece: 4 with 2 workers)
    // that only competed with the gateway threads for the same cores.
    decodeThreads: 0,
    aggregateMetrics: () =>
      new Promise<string>((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        post({ t: 'metrics-request', id });
      }),
  });
  port.on('message', (m: ToWorker) => {
    if (m.t === 'ping') post({ t: 'pong' }); // the supervisor's liveness check: this event loop turns
    else if (m.t === 'collect') void gateway.metrics.registry.getMetricsAsJSON().then((json) => post({ t: 'metrics', id: m.id, json }));
    else if (m.t === 'metrics-text') {
      waiting.get(m.id)?.(m.text);
      waiting.delete(m.id);
    } else if (m.t === 'drain') {
      void gateway.close().then(() => {
        cache.detach();
        post({ t: 'closed' });
        port.close();
      });
    }
  });
  post({ t: 'ready', port: gateway.port, arenaThread: cache.arena.thread });
} catch (err) {
  // The error crosses the thread as data: its code and context (which option it names) survive.
  const e = err as { message?: string; code?: string; context?: Record<string, unknown> };
  post({ t: 'failed', message: e.message ?? String(err), code: e.code, context: e.context });
  port.close();
}
