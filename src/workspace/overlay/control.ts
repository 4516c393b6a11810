/**
 * The control socket of a mounted workspace (`<state>/control.sock`, mode 0600): how `hexz status`
 * and `hexz commit` reach the process that serves the mount, which alone holds the live namespace.
 * One JSON request per connection, one JSON answer (`{ ok: true, result }` or `{ ok: false, error }`
 * with the HexzError's code, message and context), newline-terminated.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { HexzError, toHexzError, type ErrorCode } from '../../errors.js';

export interface ControlRequest {
  op: 'status' | 'commit' | 'ping' | 'retire';
  [key: string]: unknown;
}

/** Serve requests on `socket` until the returned close() is called. */
export async function serveControl(socket: string, handle: (req: ControlRequest) => Promise<unknown>): Promise<() => Promise<void>> {
  await fs.rm(socket, { force: true });
  const server = net.createServer((conn) => {
    let text = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(text.slice(0, nl)) as ControlRequest;
      } catch {
        conn.end(`${JSON.stringify({ ok: false, error: { code: 'INVALID_ARGUMENT', message: 'bad request', context: {} } })}\n`);
        return;
      }
      handle(req).then(
        (result) => conn.end(`${JSON.stringify({ ok: true, result }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`),
        (err) => conn.end(`${JSON.stringify({ ok: false, error: toHexzError(err).toJSON() })}\n`),
      );
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  await fs.chmod(socket, 0o600);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Send one request; undefined when nothing listens (the workspace is not mounted). */
export function callControl<T>(socket: string, req: ControlRequest): Promise<{ result: T } | undefined> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let text = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (d: string) => (text += d));
    conn.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
      else reject(toHexzError(err, { path: socket }));
    });
    conn.on('end', () => {
      if (!text) return reject(new HexzError('INTERNAL', `the workspace's server ended before answering (see mount.log next to ${socket})`, { path: socket }));
      try {
        const answer = JSON.parse(text) as { ok: boolean; result?: T; error?: { code: ErrorCode; message: string; context: Record<string, unknown> } };
        if (answer.ok) resolve({ result: answer.result as T });
        else reject(new HexzError(answer.error!.code, answer.error!.message, answer.error!.context as never));
      } catch (err) {
        reject(new HexzError('INTERNAL', `the workspace's server answered something unreadable: ${text.slice(0, 200)}`, { path: socket }, { cause: err }));
      }
    });
  });
}
