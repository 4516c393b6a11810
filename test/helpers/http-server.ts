/**
 * A real HTTP server on port 0 serving the files of a directory the way a static file server or CDN
 * does: single and suffix Range, 416 with `bytes * /size`, strong ETags, If-Match/412, HEAD. Only the
 * fault knobs are "mock": they let tests produce 503 storms, connections reset mid-body, servers that
 * ignore Range or suffix ranges, objects replaced while open, redirects and hangs.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface HttpFaults {
  /** Answer the next N requests with 503. */
  fail503: number;
  /** Send half of the next N GET bodies, then reset the connection. */
  resetMidBody: number;
  /** Never answer the next N requests (timeouts, aborts). */
  hang: number;
  /** Answer ranged GETs with 200 and the whole body, like a server without Range support. */
  ignoreRange: boolean;
  /** Refuse suffix ranges (`bytes=-N`) with this status (e.g. 416 or 400); 0 to accept them. */
  rejectSuffix: number;
  /** Answer `bytes=-N` with bytes 0..N, like s3rver (Content-Range tells the truth). */
  suffixBug: boolean;
  /** Never check If-Match, like many CDNs. */
  ignoreIfMatch: boolean;
  /** Send no ETag header. */
  noEtag: boolean;
  /** Answer HEAD with this status (405 like a GET-only server, 403 like a presigned GET URL); 0 to serve it. */
  refuseHead: number;
  /** When set, requests without exactly this Authorization header get 401. */
  requireAuth?: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  ifMatch?: string;
  authorization?: string;
}

export interface TestHttpServer {
  /** Base URL, ending in `/`; a file `a.hxz` of the directory is at `${url}a.hxz`. */
  url: string;
  dir: string;
  faults: HttpFaults;
  /** Every request received, in order. */
  requests: LoggedRequest[];
  /** TCP connections accepted so far (keep-alive reuse keeps this low). */
  readonly connections: number;
  /** Clear faults, redirects, the request hook and the request log. */
  reset(): void;
  /** Answer `from` (a path like `/old.hxz`) with a redirect to `to` (a path or absolute URL). */
  redirect(from: string, to: string, status?: number): void;
  /** Write a file atomically (temp + rename), so it gets a new ETag like a re-uploaded object. */
  put(name: string, bytes: Uint8Array): Promise<string>;
  /**
   * Called with every request before it is served (and awaited): lets a test change the served
   * files at a precise point, e.g. replace an archive right after a client opened it.
   */
  onRequest?: (req: LoggedRequest) => void | Promise<void>;
  stop(): Promise<void>;
}

function noFaults(): HttpFaults {
  return { fail503: 0, resetMidBody: 0, hang: 0, ignoreRange: false, rejectSuffix: 0, suffixBug: false, ignoreIfMatch: false, noEtag: false, refuseHead: 0 };
}

/** `[start, end]` inclusive, 'unsatisfiable', or undefined for no usable Range header. */
function parseRange(header: string | undefined, size: number, suffixBug: boolean): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (suffixBug) return size === 0 ? 'unsatisfiable' : { start: 0, end: Math.min(n, size - 1) };
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * Start a server over `dir` (a fresh temp directory when omitted; removed again by `stop`). With
 * `tls` (a PEM key and certificate) it speaks HTTPS, and `url` is an `https://` URL.
 */
export async function startHttpServer(opts: { dir?: string; tls?: { key: string | Buffer; cert: string | Buffer } } = {}): Promise<TestHttpServer> {
  const ownsDir = !opts.dir;
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-http-')));
  const faults = noFaults();
  const requests: LoggedRequest[] = [];
  const redirects = new Map<string, { to: string; status: number }>();

  const listener: http.RequestListener = (req, res) => {
    void handle(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  };
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, listener) : http.createServer(listener);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const h = req.headers;
    const logged: LoggedRequest = { method: req.method ?? '', path: urlPath, range: h.range, ifMatch: h['if-match'], authorization: h.authorization };
    requests.push(logged);
    await self.onRequest?.(logged);
    if (faults.hang > 0) {
      faults.hang--;
      return; // never answered; stop() closes the connection
    }
    if (faults.fail503 > 0) {
      faults.fail503--;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('try later');
      return;
    }
    if (faults.requireAuth !== undefined && h.authorization !== faults.requireAuth) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    const redirect = redirects.get(urlPath);
    if (redirect) {
      res.writeHead(redirect.status, { location: redirect.to }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (req.method === 'HEAD' && faults.refuseHead) {
      res.writeHead(faults.refuseHead, { allow: 'GET' }).end();
      return;
    }
    const file = path.join(dir, path.normalize(urlPath).replace(/^(\.\.[/\\])+/, ''));
    // One descriptor for stat and read, so the ETag always describes the bytes sent even while
    // `put` renames a new version into place.
    const fh = await fs.open(file, 'r').catch(() => undefined);
    if (!fh) {
      res.writeHead(404).end();
      return;
    }
    try {
      await serve(req, res, fh);
    } finally {
      await fh.close();
    }
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, fh: FileHandle): Promise<void> {
    const h = req.headers;
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) {
      res.writeHead(404).end();
      return;
    }
    const size = Number(st.size);
    const etag = `"${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeNs.toString(16)}"`;
    const headers: http.OutgoingHttpHeaders = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', 'last-modified': new Date(Number(st.mtimeMs)).toUTCString() };
    if (!faults.noEtag) headers.etag = etag;
    const ifMatch = h['if-match'];
    if (ifMatch && !faults.ignoreIfMatch && ifMatch.trim() !== '*' && !ifMatch.split(',').map((s) => s.trim()).includes(etag)) {
      res.writeHead(412, headers).end();
      return;
    }
    const range = faults.ignoreRange ? undefined : parseRange(h.range, size, faults.suffixBug);
    if (range && faults.rejectSuffix && /^bytes=-/.test(h.range ?? '')) {
      res.writeHead(faults.rejectSuffix, faults.rejectSuffix === 416 ? { ...headers, 'content-range': `bytes */${size}` } : headers).end();
      return;
    }
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` }).end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const length = Math.max(0, end - start + 1);
    const status = range ? 206 : 200;
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    headers['content-length'] = length;
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': size }).end();
      return;
    }
    const body = Buffer.alloc(length);
    if (length > 0) await fh.read(body, 0, length, start);
    if (faults.resetMidBody > 0 && length > 1) {
      faults.resetMidBody--;
      res.writeHead(status, headers);
      res.write(body.subarray(0, length >> 1), () => setTimeout(() => res.socket?.destroy(), 5));
      return;
    }
    res.writeHead(status, headers).end(body);
  }

  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = opts.tls ? 'https' : 'http';

  const self: TestHttpServer = {
    url: `${scheme}://127.0.0.1:${port}/`,
    dir,
    faults,
    requests,
    get connections() {
      return connections;
    },
    reset() {
      Object.assign(faults, noFaults(), { requireAuth: undefined });
      redirects.clear();
      self.onRequest = undefined;
      requests.length = 0;
    },
    redirect(from, to, status = 302) {
      redirects.set(from, { to, status });
    },
    async put(name, bytes) {
      const target = path.join(dir, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, target);
      return `${scheme}://127.0.0.1:${port}/${name.split('/').map(encodeURIComponent).join('/')}`;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsDir) await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return self;
}
