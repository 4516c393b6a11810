/**
 * The gateway as a Fastify plugin, separate from the server that listens (src/gateway/server.ts):
 * tests can `inject` into it, and an operator can mount it into a Fastify server of their own.
 *
 * The plugin wires the cross-cutting parts: routing of archive URLs by view, CORS, bearer-token
 * authentication, request ids and logs, metrics, and the single error handler that maps
 * `HexzError` codes to HTTP through ERROR_TABLE. The routes themselves live in routes/.
 */
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { archiveRoutes } from '../../routes/archives.js';
import { autoindexRoutes } from '../../routes/autoindex.js';
import { diffRoutes } from '../../routes/diff.js';
import { fileRoutes } from '../../routes/files.js';
import { healthRoutes } from '../../routes/health.js';
import { metricsRoutes } from '../../routes/metrics.js';
import { treeRoutes } from '../../routes/tree.js';
import { uiRoutes } from '../../routes/ui.js';
import { HexzError } from '../errors.js';
import { KEEP_ALIVE_TIMEOUT_MS, type ServeConfig } from './config.js';
import { trackExchange } from './exchange.js';
import { errorResponse, makeRedactor, sendProtocolError, type GatewayContext } from './http.js';
import { routeViewOfUrl } from './names.js';
import { SequentialReaders } from './sequential.js';

/** What the plugin needs beyond the route context: accepted bearer tokens (none: no authentication). */
export interface GatewayDeps extends Omit<GatewayContext, 'sequential'> {
  /** Accepted bearer tokens; empty or absent disables authentication. */
  authTokens?: string[];
}

/** Name of the route constraint that tells archive views apart (see `viewOfUrl`). */
export const VIEW_CONSTRAINT = 'archiveView';

/** Headers a browser may read from cross-origin responses (CORS), beyond the safelisted ones. */
export const CORS_EXPOSED_HEADERS = ['Content-Range', 'ETag', 'Accept-Ranges', 'Content-Length', 'Content-Disposition', 'X-Request-Id'];

/** Preflight answers are cached this long by browsers (10 minutes, Chromium's cap is 2 hours). */
const CORS_MAX_AGE_S = 600;

/** Methods the gateway answers; any other is 405 READ_ONLY. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Request ids a client may choose (`X-Request-Id`); anything else gets a fresh UUID. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The route constraint strategy: derives the view (`info`, `files`, `files-index`, `tree`, `disk`) from the raw URL,
 * so archive names may contain slashes while each view stays its own route plugin with its own
 * schemas (find-my-way cannot match a multi-segment parameter in the middle of a path).
 */
type ConstraintStrategy = Parameters<FastifyInstance['addConstraintStrategy']>[0];
type StrategyStore = ReturnType<ConstraintStrategy['storage']>;
const viewStrategy: ConstraintStrategy = {
  name: VIEW_CONSTRAINT,
  storage() {
    const handlers = new Map<string, Parameters<StrategyStore['set']>[1]>();
    return {
      get: (view: string) => handlers.get(view) ?? null,
      set: (view: string, store) => void handlers.set(view, store),
    };
  },
  deriveConstraint: (req: IncomingMessage) => routeViewOfUrl(req.url ?? ''),
  mustMatchWhenDerived: true,
};

/**
 * CORS headers of a response that @fastify/cors never saw (its hook does not run for requests Fastify
 * rejects before routing): the same headers the plugin sets on a simple request.
 */
export function corsHeadersFor(origins: string[], origin: string | undefined): Record<string, string> {
  if (!origins.length) return {};
  const h: Record<string, string> = { 'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', ') };
  if (origins.includes('*')) h['access-control-allow-origin'] = '*';
  else {
    h.vary = 'Origin';
    if (origin && origins.includes(origin)) h['access-control-allow-origin'] = origin;
  }
  return h;
}

/**
 * Errors Fastify raises before routing (a malformed percent-escape in the path: `FST_ERR_BAD_URL`)
 * bypass every hook and the error handler of the plugin. `serverOptions` routes them here, to the
 * handler the gateway plugin registered for its server, so they get the gateway's error body, request
 * id, CORS headers, log line and metrics like every other answer.
 */
type FrameworkErrorHandler = (error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply) => void;
const frameworkErrorHandlers = new WeakMap<object, FrameworkErrorHandler>();

/**
 * The `frameworkErrors` option of a Fastify server that hosts the gateway plugin (`serverOptions`
 * sets it; pass it yourself when mounting the plugin into a server of your own).
 */
export function gatewayFrameworkErrors(error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  const handler = frameworkErrorHandlers.get(request.server.server);
  if (handler) return handler(error, request, reply);
  void reply
    .code(400)
    .type('application/json; charset=utf-8')
    .send({ error: { code: 'INVALID_ARGUMENT', message: 'malformed request' } });
}

/** Constant-time check of a presented token against every accepted one (no early exit, no length leak). */
export function tokenMatcher(tokens: string[]): (presented: string) => boolean {
  const digests = tokens.map((t) => createHash('sha256').update(t).digest());
  return (presented) => {
    const d = createHash('sha256').update(presented).digest();
    let ok = false;
    for (const t of digests) ok = timingSafeEqual(t, d) || ok;
    return ok;
  };
}

/** The gateway plugin: hooks, CORS, error handling and every route. */
export const gatewayPlugin: FastifyPluginAsync<GatewayDeps> = async (app, deps) => {
  const ctx: GatewayContext = { config: deps.config, registry: deps.registry, content: deps.content, metrics: deps.metrics, sequential: new SequentialReaders(), shuttingDown: deps.shuttingDown };
  const redact = makeRedactor(deps.registry.root.url);
  if (!app.hasConstraintStrategy(VIEW_CONSTRAINT)) app.addConstraintStrategy(viewStrategy);

  frameworkErrorHandlers.set(app.server, (err, request, reply) => {
    reply.header('x-request-id', request.id);
    reply.headers(corsHeadersFor(deps.config.corsOrigins, request.headers.origin));
    trackExchange(request, reply, deps.metrics, 'unmatched');
    const e =
      err.code === 'FST_ERR_BAD_URL'
        ? new HexzError('UNSAFE_PATH', 'malformed percent-escape in the URL path', {}, { cause: err })
        : new HexzError('INVALID_ARGUMENT', err.message || 'malformed request', {}, { cause: err });
    const { status, body, error } = errorResponse(e, redact);
    request.log.info({ code: error.code }, error.message);
    void reply.code(status).type('application/json; charset=utf-8').send(body);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Logs and metrics at the end of the exchange, completed or cut (onResponse misses cut ones).
    trackExchange(request, reply, deps.metrics, request.routeOptions.config?.route ?? 'unmatched');
  });

  if (deps.config.corsOrigins.length) {
    const origins = deps.config.corsOrigins;
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : origins,
      methods: ['GET', 'HEAD', 'OPTIONS'],
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: CORS_MAX_AGE_S,
      strictPreflight: false,
    });
  }

  // Read-only, whatever the request carries: refused before its body is parsed (a body over the 1 KiB
  // limit would otherwise be a 400 about its size), after CORS so a browser can read the answer.
  app.addHook('onRequest', async (request, reply) => {
    if (READ_METHODS.has(request.method)) return;
    reply.header('allow', 'GET, HEAD, OPTIONS');
    throw new HexzError('READ_ONLY', `${request.method} is not supported: the gateway is read-only`);
  });

  const tokens = deps.authTokens?.filter(Boolean) ?? [];
  if (tokens.length) {
    const matches = tokenMatcher(tokens);
    app.addHook('onRequest', async (request, reply) => {
      // Preflights carry no credentials by design; CORS answers them before this hook matters.
      if (request.routeOptions.config?.public || request.method === 'OPTIONS') return;
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? '');
      if (!m || !matches(m[1])) {
        reply.header('www-authenticate', 'Bearer realm="hexz"');
        return sendProtocolError(reply, 'UNAUTHORIZED', m ? 'invalid bearer token' : 'a bearer token is required (Authorization: Bearer TOKEN)');
      }
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const { status, body, error } = errorResponse(err, redact);
    if (status >= 500) request.log.error({ err: error, cause: error.cause }, error.message);
    else request.log.info({ code: error.code }, error.message);
    if (reply.raw.headersSent) {
      // The body is under way: the only honest signal left is to cut the connection.
      reply.raw.destroy(error);
      return reply;
    }
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    if (!READ_METHODS.has(request.method)) {
      reply.header('allow', 'GET, HEAD, OPTIONS');
      throw new HexzError('READ_ONLY', `${request.method} is not supported: the gateway is read-only`);
    }
    throw new HexzError('PATH_NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`);
  });

  await app.register(healthRoutes, { ctx });
  await app.register(metricsRoutes, { ctx });
  await app.register(archiveRoutes, { ctx });
  await app.register(treeRoutes, { ctx });
  await app.register(fileRoutes, { ctx });
  await app.register(autoindexRoutes, { ctx });
  await app.register(diffRoutes, { ctx });
  await app.register(uiRoutes, { ctx });
};

/** Fastify server options of the gateway: logging (to stdout, or to `logStream`), request ids, timeouts. */
export function serverOptions(config: ServeConfig, logStream?: { write(line: string): unknown }): FastifyServerOptions {
  return {
    logger: logStream ? { level: config.logLevel, stream: logStream } : { level: config.logLevel },
    // One line per request from our own tracking (src/gateway/exchange.ts) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (req) => {
      const id = req.headers['x-request-id'];
      return typeof id === 'string' && CLIENT_REQUEST_ID.test(id) ? id : randomUUID();
    },
    // Receiving a request (headers, no body here) must not take long; slow-loris clients are cut.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.idleTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // In-flight responses finish on close; idle keep-alive connections are closed at once.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Malformed URLs answered like every other error (see gatewayFrameworkErrors).
    frameworkErrors: gatewayFrameworkErrors,
    // The gateway takes no request bodies.
    bodyLimit: 1024,
  };
}

/**
 * A Fastify instance with the gateway registered, not listening: `startGateway` listens on it,
 * tests may `inject` into it.
 */
export async function buildApp(deps: GatewayDeps, options: FastifyServerOptions = serverOptions(deps.config)): Promise<FastifyInstance> {
  const app = Fastify(options);
  await app.register(gatewayPlugin, deps);
  return app;
}
