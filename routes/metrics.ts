/** `/metrics`: Prometheus exposition of the gateway's registry (docs/gateway.md, "Metrics"). */
import type { FastifyPluginAsync } from 'fastify';
import type { RoutePluginOptions } from '../src/gateway/http.js';

/** The metrics route. Behind the bearer token when authentication is on (Prometheus can send one). */
export const metricsRoutes: FastifyPluginAsync<RoutePluginOptions> = async (app, { ctx }) => {
  app.get('/metrics', { config: { route: 'metrics' }, schema: { response: { 200: { type: 'string' } } } }, async (_request, reply) => {
    const { contentType, body } = await ctx.metrics.render();
    return reply.type(contentType).send(body);
  });
};
