/**
 * The liveness port (`--health-port` / HEXZ_HEALTH_PORT): a plain node:http server that answers only
 * `GET`/`HEAD /healthz`.
 *
 * Why a second port: under load the gateway's own port has a long accept queue, and since libuv
 * 1.45 a Node server accepts one connection per event-loop turn, so a probe that connects then
 * waits behind every connection queued before it (measured with 1,000 busy connections: /healthz
 * on the gateway port answered after 6–17 s, i.e. when the load stopped). A probe on its own
 * listening socket is accepted on the next turn. With worker threads it is served by the main
 * thread, which serves no content, and says whether every worker's event loop still answers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the probe reports: alive, or why not. */
export type Liveness = { ok: true } | { ok: false; reason: string };

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(head ? undefined : text);
}

/** Listen on `host:port` (0: a free port) and answer `/healthz` from `liveness()`. */
export async function startHealthServer(host: string, port: number, liveness: () => Liveness): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const head = req.method === 'HEAD';
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/healthz') return send(res, 404, { error: { code: 'PATH_NOT_FOUND', message: `this port answers only /healthz (content is on the gateway's port)` } }, head);
    if (req.method !== 'GET' && !head) return send(res, 405, { error: { code: 'INVALID_ARGUMENT', message: `method ${req.method} not allowed on /healthz` } }, head);
    const l = liveness();
    if (l.ok) send(res, 200, { status: 'ok' }, head);
    else send(res, 503, { status: 'unhealthy', reason: l.reason }, head);
  });
  // Probes open a connection each; do not keep them.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 512 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
