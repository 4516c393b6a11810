/**
 * `hexz serve`: run the HTTP gateway (docs/gateway.md). The configuration is read here, once, from
 * flags, environment and the optional config file; the command resolves only after a graceful
 * shutdown (Ctrl-C / SIGTERM), so run.ts exits 0 when the gateway has drained.
 */
import { sharedCache } from '../../../cache/block-cache.js';
import { loadServeConfig, withFlagName, type ServeFlags } from '../serve-config.js';
import { startGateway } from '../../gateway/server.js';
import { toHexzError } from '../../errors.js';
import type { CommandContext, CommandResult } from '../context.js';

/** How long the start-up reachability check of the storage root may take before it is reported. */
const STARTUP_CHECK_TIMEOUT_MS = 5_000;

/** Start the gateway and serve until the command's abort signal fires. */
export async function run(ctx: CommandContext, _args: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const config = await loadServeConfig(opts as ServeFlags, process.env);
  // The process's one cache, sized from the serve configuration (which may come from the config file).
  const gateway = await startGateway(config, { cache: sharedCache(config.cacheBytes) }).catch((err: unknown) => {
    throw withFlagName(err);
  });
  gateway.app.log.info({ url: gateway.url, storage: gateway.registry.root.url, cacheBytes: config.cacheBytes, auth: config.authTokenFiles.length > 0 }, 'hexz gateway listening');
  // Unreachable storage is not fatal (it may come up later; /readyz reports it), but say so now.
  gateway.registry.check(AbortSignal.timeout(STARTUP_CHECK_TIMEOUT_MS)).catch((err: unknown) => {
    gateway.app.log.warn({ storage: gateway.registry.root.url, err: toHexzError(err).message }, 'storage root is not reachable yet: /readyz answers 503 until it is');
  });
  if (!ctx.signal.aborted) await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  gateway.app.log.info('shutting down: finishing in-flight responses');
  await gateway.close();
  gateway.app.log.info('stopped');
  return {};
}
