/**
 * A real S3-compatible server for tests: s3rver (file-backed, the S3 wire protocol) in a child process.
 *
 * A child process because s3rver needs `NODE_OPTIONS=--openssl-legacy-provider` (without it
 * ListObjectsV2 pagination answers 500), and because tests must be able to kill it mid-upload and start
 * it again on the same directory.
 *
 * What s3rver 3.7 lacks is added in front of its request handler, in the child:
 * - AbortMultipartUpload (s3rver answers 405): the upload's directory is removed, as S3 drops its parts;
 *   like S3, a later UploadPart of that upload is NoSuchUpload (s3rver would store it, recreating the
 *   upload), and a part that was still arriving when the upload was aborted is dropped with it;
 * - ListMultipartUploads (s3rver answers 501): the uploads s3rver still holds for the bucket;
 * - conditional writes (s3rver ignores the header): PutObject and CompleteMultipartUpload with
 *   `If-None-Match: *` answer 412 PreconditionFailed when the key exists, as S3 does;
 * - fault injection: `setFaults({ failUploadParts: n })` makes the next n UploadPart requests answer
 *   500, `setFaults({ hangRequests: n })` leaves the next n requests unanswered; for GetObject,
 *   `failGets: n` answers the next n with 503 SlowDown (as S3 throttles), `cutGets: n` sends the next n
 *   responses' headers and half their body, then closes the connection (FIN), and `resetGets: n` does
 *   the same but resets it (RST);
 * - conditional reads, only when started with `honourIfMatch`: GetObject/HeadObject whose `If-Match`
 *   does not name the object's current ETag answer 412 PreconditionFailed, as S3 does (checked just
 *   before s3rver reads the object: a replacement racing the request itself is not caught);
 * - a request log (`requests()`, `clearRequests()`): method, bucket, key, query, headers and status of
 *   every request but the helper's own, for tests that check what the client sent.
 * Everything else is s3rver's own behaviour, quirks included (suffix ranges return N+1 bytes from the
 * start, If-Match is ignored unless `honourIfMatch`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** What the server in front of s3rver faults on (see `setFaults`); each counts down as it is used. */
export interface S3Faults {
  failUploadParts: number;
  hangRequests: number;
  failGets: number;
  cutGets: number;
  resetGets: number;
}

/** One request as it reached the server (the log of `requests()`). */
export interface S3RecordedRequest {
  method: string;
  bucket: string;
  /** Decoded key ('' for bucket-level requests). */
  key: string;
  /** The query string, without `?`. */
  query: string;
  /** Request headers, names lower-case. */
  headers: Record<string, string>;
  /** Response status; undefined while unanswered (or never answered: `hangRequests`). */
  status?: number;
  /** The fault the request met, if any ('fail', 'cut', 'reset', 'hang'). */
  fault?: string;
}

export interface S3TestServer {
  /** `http://127.0.0.1:PORT`, for S3Options.endpoint. */
  endpoint: string;
  port: number;
  /** The data directory (pass it to `startS3Server` again to restart on the same data). */
  dir: string;
  /** Environment for child-process CLI tests (credentials, region, HEXZ_S3_ENDPOINT). */
  env: Record<string, string>;
  /** Stop gracefully and remove the data directory if this server created it. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the data directory: a crash in the middle of whatever is going on. */
  kill(): Promise<void>;
  /**
   * Inject faults: the next `failUploadParts` UploadPart requests answer 500; the next `hangRequests`
   * requests are never answered; the next `failGets` GetObject requests answer 503 SlowDown; the next
   * `cutGets` (`resetGets`) GetObject requests get their headers and half the body, then the
   * connection is closed (reset). Counters not given are left as they are. Resolves with the counters
   * left (requests not yet hit by a fault).
   */
  setFaults(faults?: Partial<S3Faults>): Promise<S3Faults>;
  /** Requests received since the start or the last `clearRequests()` (at most the last 10,000). */
  requests(): Promise<S3RecordedRequest[]>;
  clearRequests(): Promise<void>;
  /** Ids of multipart uploads s3rver still holds for `bucket` (neither completed nor aborted). */
  pendingUploads(bucket: string): string[];
  /** Parts stored so far by the pending multipart uploads of `bucket`. */
  pendingParts(bucket: string): number;
}

/** Runs in the child (CommonJS, `node -e`); configuration comes in HEXZ_S3RVER_CONFIG. */
const CHILD_SCRIPT = String.raw`
const fs = require('fs');
const path = require('path');
const cfg = JSON.parse(process.env.HEXZ_S3RVER_CONFIG);
const S3rver = require(cfg.s3rver);
const faults = { failUploadParts: 0, hangRequests: 0, failGets: 0, cutGets: 0, resetGets: 0 };
// The request log: every request but the helper's own, newest last, bounded.
const MAX_LOG = 10000;
let log = [];
// Aborted uploads ('bucket/id'): s3rver may still be storing a part of one that was cut off mid-body
// (it creates the directory again); such leftovers are swept away, as S3 frees them.
const abortedUploads = new Set();
function uploadDir(bucket, id) {
  return path.join(cfg.dir, bucket, '._S3rver_uploads', id);
}
function sweepAborted() {
  for (const k of abortedUploads) {
    const [bucket, id] = k.split('/');
    fs.rmSync(uploadDir(bucket, id), { recursive: true, force: true });
  }
}
setInterval(sweepAborted, 25).unref();
const hung = [];
function xmlError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>' + code + '</Code><Message>' + message + '</Message></Error>');
}
function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}
function objectPath(u) {
  const segs = u.pathname.split('/').slice(1).map(decodeURIComponent);
  return { bucket: segs[0] || '', key: segs.slice(1).join('/') };
}
// GetObject (and HeadObject): a key, and none of the sub-resources s3rver serves on keys.
function isObjectRead(req, u) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  try {
    if (!objectPath(u).key) return false;
  } catch {
    return false;
  }
  return !['uploads', 'uploadId', 'acl', 'tagging', 'torrent'].some((p) => u.searchParams.has(p));
}
// S3 compares ETags without their quotes.
function unquote(etag) {
  return String(etag).trim().replace(/^W\//, '').replace(/"/g, '');
}
/**
 * Let the response's headers and the first half of its body through, then close the connection
 * (half-close, FIN) or reset it (RST), once what was let through is flushed. Error responses (not
 * 2xx) pass untouched.
 */
function cutResponse(res, reset) {
  const write = res.write;
  const end = res.end;
  let limit;
  let sent = 0;
  let cut = false;
  const kill = () => {
    const socket = res.socket;
    if (!socket) return;
    // A moment for the headers to be read before a reset, which may discard unread data.
    if (reset) setTimeout(() => socket.resetAndDestroy(), 20);
    else socket.end();
  };
  const passing = () => res.statusCode < 200 || res.statusCode >= 300;
  res.write = function (chunk, encoding, cb) {
    if (cut) return true;
    if (passing()) return write.apply(res, arguments);
    if (limit === undefined) limit = Math.floor(Number(res.getHeader('content-length') || 0) / 2);
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8');
    const room = limit - sent;
    if (buf.byteLength < room) {
      sent += buf.byteLength;
      return write.call(res, buf);
    }
    cut = true;
    if (room > 0) write.call(res, buf.subarray(0, room), kill);
    else {
      res.flushHeaders();
      setImmediate(kill);
    }
    return true;
  };
  res.end = function (chunk, encoding, cb) {
    if (!cut && passing()) return end.apply(res, arguments);
    if (chunk && typeof chunk !== 'function') res.write(chunk, encoding);
    if (!cut) {
      // The whole body fitted below the limit (or there was none): cut after what was sent.
      cut = true;
      res.flushHeaders();
      setImmediate(kill);
    }
    return res;
  };
}
(async () => {
  const s3 = new S3rver({ address: '127.0.0.1', port: cfg.port, directory: cfg.dir, silent: true, configureBuckets: cfg.buckets.map((name) => ({ name })) });
  await s3.run();
  const server = s3.httpServer;
  const [handler] = server.listeners('request');
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    const u = new URL(req.url, 'http://localhost');
    if (u.pathname === '/__hexz/faults') {
      if (req.method === 'POST') for (const [k, v] of u.searchParams) faults[k] = Number(v);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(faults));
      return;
    }
    if (u.pathname === '/__hexz/requests') {
      if (req.method === 'DELETE') log = [];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.method === 'DELETE' ? '[]' : JSON.stringify(log));
      return;
    }
    let where;
    try {
      where = objectPath(u);
    } catch {
      where = { bucket: '', key: u.pathname }; // not valid escaping: s3rver answers it
    }
    const entry = { method: req.method, ...where, query: u.search.slice(1), headers: { ...req.headers } };
    log.push(entry);
    if (log.length > MAX_LOG) log.splice(0, log.length - MAX_LOG);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status ??= res.headersSent ? res.statusCode : undefined));
    if (faults.hangRequests > 0) {
      faults.hangRequests--;
      entry.fault = 'hang';
      hung.push(res); // never answered
      return;
    }
    if (req.method === 'GET' && isObjectRead(req, u)) {
      if (faults.failGets > 0) {
        faults.failGets--;
        entry.fault = 'fail';
        req.resume();
        return xmlError(res, 503, 'SlowDown', 'Please reduce your request rate. (injected failure)');
      }
      if (faults.cutGets > 0 || faults.resetGets > 0) {
        const reset = faults.cutGets === 0;
        if (reset) faults.resetGets--;
        else faults.cutGets--;
        entry.fault = reset ? 'reset' : 'cut';
        cutResponse(res, reset);
      }
    }
    if (cfg.honourIfMatch && isObjectRead(req, u) && req.headers['if-match'] !== undefined) {
      const { bucket, key } = objectPath(u);
      const wanted = String(req.headers['if-match']).split(',').map(unquote);
      s3.store.getMetadata(bucket, key).then(
        (meta) => {
          if (wanted.includes('*') || wanted.includes(unquote(meta.etag))) return handler(req, res);
          req.resume();
          if (req.method === 'HEAD') {
            res.writeHead(412);
            res.end();
          } else xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
        },
        () => handler(req, res), // no such object (or bucket): s3rver answers that
      );
      return;
    }
    if (req.method === 'DELETE' && u.searchParams.has('uploadId')) {
      const bucket = decodeURIComponent(u.pathname.split('/')[1] || '');
      const id = u.searchParams.get('uploadId');
      const dir = path.join(cfg.dir, bucket, '._S3rver_uploads', id);
      req.resume();
      if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(dir)) return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      abortedUploads.add(bucket + '/' + id);
      fs.rmSync(dir, { recursive: true, force: true });
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'PUT' && u.searchParams.has('partNumber')) {
      const { bucket } = objectPath(u);
      const id = u.searchParams.get('uploadId') || '';
      if (abortedUploads.has(bucket + '/' + id) || !/^[0-9a-f]+$/.test(id) || !fs.existsSync(uploadDir(bucket, id))) {
        req.resume();
        return xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      }
    }
    if (req.method === 'GET' && u.searchParams.has('uploads')) {
      sweepAborted();
      const { bucket, key } = objectPath(u);
      if (key) return xmlError(res, 400, 'InvalidRequest', 'ListMultipartUploads takes a bucket');
      const dir = path.join(cfg.dir, bucket, '._S3rver_uploads');
      const ids = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      const uploads = ids.map((id) => {
        let k = '';
        try { k = fs.readFileSync(path.join(dir, id, 'key'), 'utf8'); } catch {}
        const initiated = fs.statSync(path.join(dir, id)).mtime.toISOString();
        return '<Upload><Key>' + xmlEscape(k) + '</Key><UploadId>' + id + '</UploadId><Initiated>' + initiated + '</Initiated><StorageClass>STANDARD</StorageClass></Upload>';
      });
      req.resume();
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>' + xmlEscape(bucket) +
        '</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>' + uploads.join('') + '</ListMultipartUploadsResult>');
      return;
    }
    const conditional = req.headers['if-none-match'] === '*' &&
      ((req.method === 'PUT' && !u.searchParams.has('uploadId')) || (req.method === 'POST' && u.searchParams.has('uploadId')));
    if (conditional) {
      const { bucket, key } = objectPath(u);
      s3.store.existsObject(bucket, key).then((exists) => {
        if (!exists) return handler(req, res);
        req.resume();
        req.on('end', () => xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'));
      }, (err) => xmlError(res, 500, 'InternalError', String(err)));
      return;
    }
    if (req.method === 'PUT' && u.searchParams.has('partNumber') && faults.failUploadParts > 0) {
      faults.failUploadParts--;
      req.resume();
      req.on('end', () => xmlError(res, 500, 'InternalError', 'injected failure'));
      return;
    }
    handler(req, res);
  });
  process.stdout.write('LISTENING ' + server.address().port + '\n');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

/** How long s3rver may take to start listening (it loads Koa and friends). */
const START_TIMEOUT_MS = 30_000;
/** How long a graceful stop may take before SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Start s3rver with `buckets` created, on `port` (0: a free one) and `dir` (a fresh temp directory
 * when omitted). Resolves once it listens.
 */
export async function startS3Server(opts: { buckets?: string[]; dir?: string; port?: number; honourIfMatch?: boolean } = {}): Promise<S3TestServer> {
  const ownsDir = !opts.dir;
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-s3rver-')));
  const s3rver = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT], {
    env: {
      ...process.env,
      NODE_OPTIONS: '--openssl-legacy-provider',
      HEXZ_S3RVER_CONFIG: JSON.stringify({ s3rver, dir, port: opts.port ?? 0, buckets: opts.buckets ?? ['hexz'], honourIfMatch: opts.honourIfMatch ?? false }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3rver did not start within ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited before listening (${code ?? signal}): ${stderr}`));
    });
  });
  child.stdout!.resume();
  const endpoint = `http://127.0.0.1:${port}`;

  const pendingUploads = (bucket: string): string[] => {
    try {
      return readdirSync(path.join(dir, bucket, '._S3rver_uploads'));
    } catch {
      return [];
    }
  };

  const kill = async () => {
    child.kill('SIGKILL');
    await waitForExit(child, STOP_TIMEOUT_MS);
  };

  return {
    endpoint,
    port,
    dir,
    env: {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      HEXZ_S3_ENDPOINT: endpoint,
    },
    async stop() {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, STOP_TIMEOUT_MS))) await kill();
      if (ownsDir) await fs.rm(dir, { recursive: true, force: true });
    },
    kill,
    async setFaults(faults = {}) {
      const q = new URLSearchParams(Object.entries(faults).map(([k, v]): [string, string] => [k, String(v)]));
      const res = await fetch(`${endpoint}/__hexz/faults?${q}`, { method: Object.keys(faults).length ? 'POST' : 'GET' });
      if (!res.ok) throw new Error(`setting faults failed: ${res.status}`);
      return (await res.json()) as S3Faults;
    },
    async requests() {
      const res = await fetch(`${endpoint}/__hexz/requests`);
      if (!res.ok) throw new Error(`reading the request log failed: ${res.status}`);
      return (await res.json()) as S3RecordedRequest[];
    },
    async clearRequests() {
      const res = await fetch(`${endpoint}/__hexz/requests`, { method: 'DELETE' });
      if (!res.ok) throw new Error(`clearing the request log failed: ${res.status}`);
      await res.arrayBuffer();
    },
    pendingUploads,
    pendingParts(bucket) {
      let n = 0;
      for (const id of pendingUploads(bucket)) {
        try {
          n += readdirSync(path.join(dir, bucket, '._S3rver_uploads', id)).filter((f) => /^\d+$/.test(f)).length;
        } catch {
          // completed or aborted meanwhile
        }
      }
      return n;
    },
  };
}
