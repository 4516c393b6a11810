/**
 * `/healthz` (the process answers) and `/readyz` (the storage root is reachable and the gateway is
 * not shutting down). Both stay open when bearer-token authentication is on, so probes need no secret.
 */
import type { FastifyPluginAsync } from 'fastify';
import { errorResponse, type RoutePluginOptions } from '../src/gateway/http.js';

/** A readiness check that takes longer than this counts as not ready (probes time out at 1 s by default in Kubernetes; storage gets a little more). */
export const READY_CHECK_TIMEOUT_MS = 2_000;

const STATUS_SCHEMA = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
  required: ['status'],
} as const;

/** Health and readiness routes. */
export const healthRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  app.get('/healthz', { config: { route: 'healthz', public: true }, schema: { response: { 200: STATUS_SCHEMA } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { route: 'readyz', public: true }, schema: { response: { 200: STATUS_SCHEMA, 503: STATUS_SCHEMA } } }, async (_request, reply) => {
    if (ctx.shuttingDown()) return reply.code(503).send({ status: 'shutting down' });
    try {
      await ctx.registry.check(AbortSignal.timeout(READY_CHECK_TIMEOUT_MS));
      return { status: 'ready' };
    } catch (err) {
      const { body } = errorResponse(err, (m) => m);
      return reply.code(503).send({ status: 'storage unreachable', error: { code: body.error.code, message: 'the storage root cannot be listed' } });
    }
  });
};
