/**
 * A real HTTP proxy on port 0 in front of a real server (the test HTTP server, s3rver), injecting the
 * faults a real origin or middlebox produces and a real server cannot be made to: per request, it
 * stalls before the headers (the connection stays open, nothing is answered), stalls in the middle of
 * the body (status, headers and half the body, then silence), resets the connection (RST) before or in
 * the middle of the body, or passes the exchange through unchanged.
 *
 * Every request is logged with the fault it met and the id of the client connection it came on, so a
 * test can check that a retry used a fresh connection and that the stalled one was closed.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = 'pass' | 'stall-headers' | 'stall-body' | 'reset' | 'reset-body';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  range?: string;
  fault: Fault;
  /** Id of the client connection (1, 2, … in order of arrival). */
  connection: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT/`: a path of the upstream server is at `${url}path`. */
  url: string;
  /** `http://127.0.0.1:PORT`, for S3Options.endpoint. */
  endpoint: string;
  /** Every request received, in order. */
  requests: ProxiedRequest[];
  /** Only requests for which this returns true meet faults (default: every request); others pass. */
  match: (req: http.IncomingMessage) => boolean;
  /** Faults for the next matching requests, one each, in order; after them requests pass (or meet `always`). */
  next(...faults: Fault[]): void;
  /** The fault of every matching request once `next` is used up ('pass' to clear). */
  always(fault: Fault): void;
  /** Resolves once the client connection with this id is closed (never, if it stays open). */
  whenClosed(connection: number): Promise<void>;
  /** Clear faults, the match and the log (connections stay as they are). */
  reset(): void;
  stop(): Promise<void>;
}

/** How long a reset waits after the last bytes it lets through, so the client reads them before the RST (which may discard unread data). */
const RESET_GRACE_MS = 20;

/** Start a proxy to `upstream` (an `http://host:port` origin). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  const queue: Fault[] = [];
  let standing: Fault = 'pass';
  const requests: ProxiedRequest[] = [];
  const ids = new WeakMap<Socket, number>();
  const closedIds = new Set<number>();
  const closeWaiters = new Map<number, Array<() => void>>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const server = http.createServer((req, res) => {
    const fault: Fault = self.match(req) ? (queue.shift() ?? standing) : 'pass';
    const socket = req.socket;
    requests.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range, fault, connection: ids.get(socket) ?? 0 });
    if (fault === 'stall-headers') {
      req.resume(); // read the request, never answer it
      return;
    }
    if (fault === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (fault === 'pass') {
        upRes.pipe(res);
        return;
      }
      // Half the body (by Content-Length; the first chunk when there is none), then the fault.
      const length = Number(upRes.headers['content-length']);
      let room = Number.isFinite(length) ? Math.floor(length / 2) : undefined;
      let hit = false;
      const strike = () => {
        hit = true;
        upRes.destroy();
        if (fault === 'reset-body') setTimeout(() => socket.resetAndDestroy(), RESET_GRACE_MS);
        // stall-body: the response stays open and silent until the client gives up.
      };
      if (room === 0) {
        res.flushHeaders();
        strike();
        return;
      }
      upRes.on('data', (chunk: Buffer) => {
        if (hit) return;
        const n = room === undefined ? chunk.byteLength : Math.min(room, chunk.byteLength);
        res.write(chunk.subarray(0, n));
        if (room !== undefined) room -= n;
        if (room === undefined || room === 0) strike();
      });
      upRes.on('end', () => {
        if (!hit) strike(); // the body was shorter than expected: fault after all of it
      });
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('connection', (socket: Socket) => {
    const id = ++connections;
    ids.set(socket, id);
    sockets.add(socket);
    socket.on('close', () => {
      closedIds.add(id);
      sockets.delete(socket);
      for (const wake of closeWaiters.get(id) ?? []) wake();
      closeWaiters.delete(id);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const self: FaultProxy = {
    url: `http://127.0.0.1:${port}/`,
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    match: () => true,
    next(...faults) {
      queue.push(...faults);
    },
    always(fault) {
      standing = fault;
    },
    whenClosed(connection) {
      if (closedIds.has(connection)) return Promise.resolve();
      return new Promise((resolve) => closeWaiters.set(connection, [...(closeWaiters.get(connection) ?? []), resolve]));
    },
    reset() {
      queue.length = 0;
      standing = 'pass';
      self.match = () => true;
      requests.length = 0;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return self;
}
