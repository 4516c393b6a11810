#!/usr/bin/env node
/**
 * node:http versus undici's `request` as the transport of the HTTP storage backend (storage/http-transport.ts),
 * measured on this machine in one run: a range server on loopback (a child process, so client and server do
 * not share an event loop) serves a 64 MiB object; each client fetches 64 KiB and 4 MiB ranges through a
 * keep-alive pool, one at a time and 8 in flight, reading every body into one contiguous buffer as the
 * backend does. The clients take turns, repetition after repetition, and the medians are reported with
 * their ratio (undici / node:http). The decision and the numbers are in docs/operations.md ("HTTP archives").
 *
 *   node bench/http-transport.mjs [--reps 5]
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const OBJECT_SIZE = 64 * 1024 * 1024;

if (process.argv[2] === '--serve') {
  const data = randomBytes(OBJECT_SIZE);
  const server = http.createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return res.writeHead(200, { 'content-length': data.byteLength }).end(data);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.byteLength - 1);
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${data.byteLength}`, etag: '"v1"' });
    res.end(data.subarray(start, end + 1));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  await main();
}

async function main() {
  const reps = Number(process.argv[process.argv.indexOf('--reps') + 1] || 5) || 5;
  const undici = await import('undici');
  const undiciVersion = createRequire(import.meta.url)('undici/package.json').version;
  const child = fork(fileURLToPath(import.meta.url), ['--serve']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  const url = `http://127.0.0.1:${port}/object.bin`;

  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, scheduling: 'lifo' });
  const nodeGet = (range) =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { headers: { range, 'accept-encoding': 'identity' }, agent }, (res) => {
        const chunks = [];
        let n = 0;
        res.on('data', (c) => {
          chunks.push(c);
          n += c.byteLength;
        });
        res.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });

  const dispatcher = new undici.Agent({ connections: 32, pipelining: 1 });
  const undiciGet = async (range) => {
    const { body } = await undici.request(url, { headers: { range, 'accept-encoding': 'identity' }, dispatcher });
    const chunks = [];
    let n = 0;
    for await (const c of body) {
      chunks.push(c);
      n += c.byteLength;
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n);
  };

  const clients = { 'node:http': nodeGet, undici: undiciGet };
  const cases = [
    { name: '64 KiB, 1 in flight', size: 64 * 1024, concurrency: 1, requests: 2000 },
    { name: '64 KiB, 8 in flight', size: 64 * 1024, concurrency: 8, requests: 4000 },
    { name: '4 MiB, 1 in flight', size: 4 * 1024 * 1024, concurrency: 1, requests: 120 },
    { name: '4 MiB, 8 in flight', size: 4 * 1024 * 1024, concurrency: 8, requests: 200 },
  ];

  /** Requests per second of `requests` ranges of `size`, `concurrency` at a time, at pseudo-random offsets. */
  async function run(get, { size, concurrency, requests }) {
    let next = 0;
    let seed = 1;
    const start = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < requests) {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          const offset = seed % (OBJECT_SIZE - size);
          const body = await get(`bytes=${offset}-${offset + size - 1}`);
          if (body.byteLength !== size) throw new Error(`got ${body.byteLength} bytes, wanted ${size}`);
        }
      }),
    );
    return requests / (Number(process.hrtime.bigint() - start) / 1e9);
  }

  const results = {};
  for (const c of cases) {
    for (const get of Object.values(clients)) await run(get, { ...c, requests: Math.ceil(c.requests / 10) }); // warm-up
    results[c.name] = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
    for (let r = 0; r < reps; r++) {
      // Alternate who goes first, so neither always runs on a warmer machine.
      const order = r % 2 ? Object.keys(clients).reverse() : Object.keys(clients);
      for (const k of order) results[c.name][k].push(await run(clients[k], c));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`node ${process.version}, undici ${undiciVersion}, ${reps} repetitions, medians`);
  console.log('| case | node:http req/s | node:http MiB/s | undici req/s | undici MiB/s | undici / node:http |');
  console.log('|---|---|---|---|---|---|');
  for (const c of cases) {
    const a = median(results[c.name]['node:http']);
    const b = median(results[c.name].undici);
    const mib = (rps) => ((rps * c.size) / 2 ** 20).toFixed(0);
    console.log(`| ${c.name} | ${a.toFixed(0)} | ${mib(a)} | ${b.toFixed(0)} | ${mib(b)} | ${(b / a).toFixed(2)} |`);
  }
  agent.destroy();
  await dispatcher.close();
  child.kill();
}
