/**
 * Every exchange is logged and counted, including the ones Fastify's own hooks miss: responses cut in
 * the middle (a client that aborts mid-body, the shutdown timeout cutting a client that never reads)
 * and requests Fastify rejects before routing (malformed percent-escapes). Body bytes are counted when
 * they reach the socket, not when they are queued (src/gateway/exchange.ts).
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB, packArchive } from './fixture.js';

/** Bounded polling for an event the server reports asynchronously (not a timing assertion). */
const POLL_LIMIT = 500;

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
const BIG = randomBytesSeeded(48 * MiB + 5, 51);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-aborts-');
  root = path.join(tmp.dir, 'archives');
  const src = path.join(tmp.dir, 'big.bin');
  await fs.writeFile(src, BIG);
  await packArchive(src, root, 'big', { compression: 'none' });
});
afterAll(() => tmp.cleanup());

/** A gateway whose log lines are collected, and whose server-side sockets are kept. */
async function observed(config: Parameters<typeof startGateway>[0] = {}): Promise<{ gw: Gateway; logs: Array<Record<string, unknown>>; sockets: Socket[] }> {
  const logs: Array<Record<string, unknown>> = [];
  const gw = await startGateway(
    { storage: root, port: 0, logLevel: 'info', ...config },
    { processMetrics: false, logStream: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) } },
  );
  const sockets: Socket[] = [];
  gw.app.server.on('connection', (s: Socket) => sockets.push(s));
  return { gw, logs, sockets };
}

/** A GET that reads its first bytes, then stops reading; `received` counts body bytes. */
async function stalledRequest(url: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage; received: () => number }> {
  let req!: http.ClientRequest;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req = http.get(url, { agent: false }, resolve);
    req.on('error', reject);
  });
  let received = 0;
  res.on('data', (c: Buffer) => (received += c.length));
  res.on('error', () => {});
  req.on('error', () => {});
  await new Promise((r) => res.once('data', r));
  res.pause();
  return { req, res, received: () => received };
}

async function metric(gw: Gateway, pattern: RegExp): Promise<number | undefined> {
  const text = (await gw.metrics.render()).body;
  const m = pattern.exec(text);
  return m ? Number(m[1]) : undefined;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < POLL_LIMIT; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(10);
  }
  throw new Error(`never happened: ${what}`);
}

describe('a client that aborts mid-body', () => {
  it('is logged and counted (status 499); body bytes count only what reached the socket', async () => {
    const { gw, logs, sockets } = await observed();
    try {
      const stalled = await stalledRequest(`${gw.url}/v1/archives/big/disk`);
      const socket = sockets[0];
      // Wait until the kernel's buffers are full and Node queues bytes of its own (the server is stalled).
      await until('the server stalls on a client that does not read', () => (socket.writableLength > 0 ? true : undefined));
      stalled.req.destroy();
      const line = await until('a log line for the aborted request', () => logs.find((l) => l.msg === 'request aborted'));
      expect(line).toMatchObject({ route: 'disk', method: 'GET', status: 499, sentStatus: 200, aborted: true, length: String(BIG.length) });
      expect(await metric(gw, /hexz_http_requests_total\{route="disk",method="GET",status="499"\} (\d+)/)).toBe(1);
      expect(await metric(gw, /hexz_http_request_duration_seconds_count\{route="disk",method="GET"\} (\d+)/)).toBe(1);
      expect(logs.some((l) => l.msg === 'request completed' && l.route === 'disk')).toBe(false);

      const counted = (await metric(gw, /hexz_http_response_body_bytes_total\{route="disk"\} (\d+)/))!;
      expect(counted).toBe(line.bytes);
      // At least what the client received, at most what the server handed to the kernel (headers
      // included): the bytes still queued in the process when the connection closed are not counted.
      expect(counted).toBeGreaterThanOrEqual(stalled.received());
      expect(counted).toBeLessThanOrEqual(socket.bytesWritten);
      expect(counted).toBeLessThan(BIG.length);
    } finally {
      await gw.close();
    }
  });

  it('a completed response counts its whole body and logs "request completed"', async () => {
    const { gw, logs } = await observed();
    try {
      const r = await get(`${gw.url}/v1/archives/big/disk`, { range: `bytes=0-${2 * MiB - 1}` });
      expect(r.status).toBe(206);
      const line = await until('a log line', () => logs.find((l) => l.msg === 'request completed' && l.route === 'disk'));
      expect(line).toMatchObject({ status: 206, bytes: 2 * MiB, length: String(2 * MiB) });
      expect(await metric(gw, /hexz_http_response_body_bytes_total\{route="disk"\} (\d+)/)).toBe(2 * MiB);
      expect(await metric(gw, /hexz_http_requests_total\{route="disk",method="GET",status="206"\} (\d+)/)).toBe(1);
      await get(`${gw.url}/v1/archives/big/disk`, {}, 'HEAD');
      expect(await metric(gw, /hexz_http_response_body_bytes_total\{route="disk"\} (\d+)/)).toBe(2 * MiB);
    } finally {
      await gw.close();
    }
  });
});

describe('a response cut by the shutdown timeout', () => {
  it('is logged and counted as aborted', async () => {
    const { gw, logs } = await observed({ shutdownTimeoutMs: 200 });
    const stalled = await stalledRequest(`${gw.url}/v1/archives/big/disk`);
    await gw.close();
    stalled.res.resume();
    const line = await until('a log line for the cut request', () => logs.find((l) => l.msg === 'request aborted'));
    expect(line).toMatchObject({ route: 'disk', status: 499, sentStatus: 200 });
    expect(await metric(gw, /hexz_http_requests_total\{route="disk",method="GET",status="499"\} (\d+)/)).toBe(1);
    expect(line.bytes as number).toBeLessThan(BIG.length);
  });
});

describe('a request Fastify rejects before routing (malformed percent-escape)', () => {
  it('is logged and counted like any other', async () => {
    const { gw, logs } = await observed();
    try {
      const r = await get(`${gw.url}/v1/archives/demo/files/%zz`, { 'x-request-id': 'bad-url-2' });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body.toString()).error.code).toBe('UNSAFE_PATH');
      const line = await until('a log line', () => logs.find((l) => l.msg === 'request completed' && l.reqId === 'bad-url-2'));
      expect(line).toMatchObject({ status: 400, route: 'unmatched', url: '/v1/archives/demo/files/%zz' });
      expect(logs.some((l) => l.reqId === 'bad-url-2' && l.code === 'UNSAFE_PATH')).toBe(true);
      expect(await metric(gw, /hexz_http_requests_total\{route="unmatched",method="GET",status="400"\} (\d+)/)).toBe(1);
    } finally {
      await gw.close();
    }
  });
});
