/**
 * The control socket of a mounted workspace (`<state>/control.sock`, mode 0600): how `hexz status`
 * and `hexz commit` reach the process that serves the mount, which alone holds the live namespace.
 * One JSON request per connection, newline-terminated; the answer is one JSON line,
 * `{ ok: true, result }` or `{ ok: false, error }` with the HexzError's code, message and context.
 *
 * A request with `events: true` may get `{ warning }` lines before its answer: the server's warnings
 * for that request reach the user's terminal, not only mount.log. (Without it the answer is the only
 * line, so a CLI from before events still understands a newer server.)
 *
 * Interrupting: the client half-closes its side (it will send nothing more) and keeps reading. The
 * server aborts the request's signal and answers as the request ends — ABORTED, or its result when it
 * was past the point where stopping would lose work (a commit past its commit point). A client that
 * goes away entirely aborts the request the same way.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { HexzError, throwIfAborted, toHexzError, type ErrorCode } from '../../errors.js';

export interface ControlRequest {
  op: 'status' | 'commit' | 'ping' | 'retire';
  /** Send warnings as `{ warning }` lines before the answer. */
  events?: boolean;
  [key: string]: unknown;
}

/** What a request's handler gets besides the request: its abort signal and where its warnings go. */
export interface ControlCall {
  /** Fires when the client interrupts the request or goes away. */
  signal: AbortSignal;
  /** A warning for this request's client (and for mount.log, which the caller also writes). */
  warn(message: string): void;
}

const line = (v: unknown) => `${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))}\n`;

/** Serve requests on `socket` until the returned close() is called. */
export async function serveControl(socket: string, handle: (req: ControlRequest, call: ControlCall) => Promise<unknown>): Promise<() => Promise<void>> {
  await fs.rm(socket, { force: true });
  // Half-open: a client that interrupts ends its side and still reads the answer.
  const server = net.createServer({ allowHalfOpen: true }, (conn) => {
    let text = '';
    let started = false;
    let answered = false;
    const controller = new AbortController();
    const interrupted = () => {
      if (!answered) controller.abort(new HexzError('ABORTED', 'the client interrupted the request'));
    };
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      if (started) return;
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      started = true;
      let req: ControlRequest;
      try {
        req = JSON.parse(text.slice(0, nl)) as ControlRequest;
      } catch {
        answered = true;
        conn.end(line({ ok: false, error: { code: 'INVALID_ARGUMENT', message: 'bad request', context: {} } }));
        return;
      }
      const warn = (message: string) => {
        if (req.events && !answered && conn.writable) conn.write(line({ warning: message }));
      };
      const answer = (v: unknown) => {
        answered = true;
        if (conn.writable) conn.end(line(v));
        else conn.destroy();
      };
      handle(req, { signal: controller.signal, warn }).then(
        (result) => answer({ ok: true, result }),
        (err) => answer({ ok: false, error: toHexzError(err).toJSON() }),
      );
    });
    conn.on('end', () => {
      if (started) interrupted();
      else conn.end(); // nothing asked
    });
    conn.on('close', interrupted);
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  await fs.chmod(socket, 0o600);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface CallOptions {
  /** Interrupt the request: the server stops it and answers (usually ABORTED). */
  signal?: AbortSignal;
  /** The server's warnings for this request, as they come. */
  onWarning?: (message: string) => void;
}

type Answer<T> = { ok: boolean; result?: T; error?: { code: ErrorCode; message: string; context: Record<string, unknown> } };

/** Send one request; undefined when nothing listens (the workspace is not mounted). */
export function callControl<T>(socket: string, req: ControlRequest, opts: CallOptions = {}): Promise<{ result: T } | undefined> {
  throwIfAborted(opts.signal);
  return new Promise((resolve, reject) => {
    const conn = net.createConnection({ path: socket, allowHalfOpen: true });
    let text = '';
    let answer: Answer<T> | undefined;
    const interrupt = () => {
      if (conn.writable) conn.end(); // the server sees the end of our side and aborts the request
    };
    opts.signal?.addEventListener('abort', interrupt, { once: true });
    const done = () => opts.signal?.removeEventListener('abort', interrupt);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(line({ ...req, events: Boolean(opts.onWarning) })));
    conn.on('data', (d: string) => {
      text += d;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const one = text.slice(0, nl);
        text = text.slice(nl + 1);
        let msg: Answer<T> & { warning?: string };
        try {
          msg = JSON.parse(one) as Answer<T> & { warning?: string };
        } catch (err) {
          done();
          conn.destroy();
          return reject(new HexzError('INTERNAL', `the workspace's server answered something unreadable: ${one.slice(0, 200)}`, { path: socket }, { cause: err }));
        }
        if (typeof msg.warning === 'string') opts.onWarning?.(msg.warning);
        else answer = msg;
      }
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      done();
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
      else reject(toHexzError(err, { path: socket }));
    });
    conn.on('end', () => {
      done();
      conn.end();
      if (!answer) return reject(new HexzError('INTERNAL', `the workspace's server ended before answering (see mount.log next to ${socket})`, { path: socket }));
      if (answer.ok) resolve({ result: answer.result as T });
      else reject(new HexzError(answer.error!.code, answer.error!.message, answer.error!.context as never));
    });
  });
}
