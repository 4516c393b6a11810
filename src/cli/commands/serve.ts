/**
 * `hexz serve`: run the HTTP gateway (docs/gateway.md). The configuration is read here, once, from
 * flags, environment and the optional config file. With one worker the gateway runs on this thread;
 * with more (the default: one per core) on worker threads sharing the port and one cache
 * (src/gateway/workers.ts). The command resolves only after a graceful shutdown (Ctrl-C / SIGTERM),
 * so run.ts exits 0 when the gateway has drained.
 */
import { sharedCache } from '../../../cache/block-cache.js';
import { openStorageRoot } from '../../../storage/index.js';
import { startHealthServer, type Liveness } from '../../gateway/health-server.js';
import { defaultGatewayWorkers, startGatewayWorkers } from '../../gateway/workers.js';
import { HexzError, toHexzError } from '../../errors.js';
import type { CommandContext, CommandResult } from '../context.js';
import { loadServeConfig, withFlagName, type ServeFlags } from '../serve-config.js';

/** How long the start-up reachability check of the storage root may take before it is reported. */
const STARTUP_CHECK_TIMEOUT_MS = 5_000;

/** A log line in the gateway's format (pino's JSON) for what the main thread says itself. */
function logLine(level: number, fields: Record<string, unknown>, msg: string): void {
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, ...fields, msg })}\n`);
}

/** Start the gateway and serve until the command's abort signal fires. */
export async function run(ctx: CommandContext, _args: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const config = await loadServeConfig(opts as ServeFlags, process.env);
  const workers = config.workers || defaultGatewayWorkers();
  const quiet = config.logLevel === 'silent' || config.logLevel === 'fatal' || config.logLevel === 'error';
  const info = (fields: Record<string, unknown>, msg: string) => !quiet && config.logLevel !== 'warn' && logLine(30, fields, msg);
  const warn = (fields: Record<string, unknown>, msg: string) => !quiet && logLine(40, fields, msg);
  let close: () => Promise<void>;
  let url: string;
  let liveness: () => Liveness = () => ({ ok: true }); // one thread: if it answers, it is alive
  try {
    if (workers > 1) {
      const cluster = await startGatewayWorkers(config, { workers, log: info });
      ({ url, close, liveness } = cluster);
    } else {
      // Loaded here: with worker threads the main thread only supervises and never loads Fastify,
      // the routes or the page (~30 MiB of the main thread's heap and code).
      const { startGateway } = await import('../../gateway/server.js');
      // The process's one cache, sized from the serve configuration (which may come from the config file).
      const gateway = await startGateway(config, { cache: sharedCache(config.cacheBytes) });
      ({ url, close } = gateway);
    }
  } catch (err) {
    throw withFlagName(err);
  }
  let healthUrl: string | undefined;
  if (config.healthPort !== undefined) {
    try {
      const health = await startHealthServer(config.host, config.healthPort, liveness);
      healthUrl = `${new URL(url).protocol}//${new URL(url).hostname}:${health.port}/healthz`;
      const closeGateway = close;
      close = async () => {
        await closeGateway();
        await health.close();
      };
    } catch (err) {
      await close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new HexzError('INVALID_ARGUMENT', `--health-port: port ${config.healthPort} on ${config.host} is already in use`, { option: 'healthPort' }, { cause: err });
      throw toHexzError(err);
    }
  }
  info({ url, healthUrl, storage: config.storage, cacheBytes: config.cacheBytes, workers, auth: config.authTokenFiles.length > 0 }, 'hexz gateway listening');
  // Unreachable storage is not fatal (it may come up later; /readyz reports it), but say so now.
  void openStorageRoot(config.storage, config.storageOptions)
    .then((root) => root.check({ signal: AbortSignal.timeout(STARTUP_CHECK_TIMEOUT_MS) }))
    .catch((err: unknown) => warn({ storage: config.storage, err: toHexzError(err).message }, 'storage root is not reachable yet: /readyz answers 503 until it is'));
  if (!ctx.signal.aborted) await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  info({}, 'shutting down: finishing in-flight responses');
  await close();
  info({}, 'stopped');
  return {};
}
