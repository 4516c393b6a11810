// Scenario 5 — HTTP gateway: `hexz serve` serving decompressed ranges of a file inside an archive vs
// nginx serving the raw file, with wrk on loopback: sequential 1 MiB ranges and random 64 KiB ranges,
// cold and warm; req/s, MiB/s, p99, server CPU and RSS. Then the memory bar: RSS under sustained load
// over more data than the cache holds.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { artifact } from '../lib/artifacts.mjs';
import { MiB } from '../lib/common.mjs';
import { fmtSize } from '../lib/datasets.mjs';
import { onePass, startHexz, startNginx, runWrk, wrkScript } from '../lib/http.mjs';
import { median, medianOf } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { randomBytes } from '../lib/prng.mjs';
import { hexz, REPO } from '../lib/tools.mjs';

export const title = '5. HTTP gateway vs nginx';

const COLS = [
  { key: 'reqps', label: 'req/s', unit: '', better: 'higher', digits: 0 },
  { key: 'mibps', label: 'throughput', unit: 'MiB/s', better: 'higher', headline: true },
  { key: 'p50us', label: 'p50', unit: 'us', better: 'lower' },
  { key: 'p99us', label: 'p99', unit: 'us', better: 'lower', headline: true },
  { key: 'serverCpu', label: 'server CPU (cores)', unit: '', better: 'lower', digits: 2 },
  { key: 'serverPeakRss', label: 'server peak RSS', unit: 'bytes', better: 'lower' },
  { key: 'errors', label: 'errors', unit: 'count', better: 'lower', ratio: false },
];

const encodePath = (p) => p.split('/').map(encodeURIComponent).join('/');

export async function run(ctx) {
  const T = ctx.tools;
  const ready = existsSync(path.join(REPO, 'dist', 'src', 'gateway', 'server.js'));
  if (!ready) return { skipped: 'the gateway is not built (dist/src/gateway/server.js missing)', tables: [] };
  if (!T.wrk.available) return { skipped: 'wrk is not installed', tables: [] };
  const mixed = await ctx.data.mixed();
  const out = await ctx.scratch('gateway');
  const hx = await artifact(ctx, 'mixed', 'hexz', mixed.dir);
  const storage = path.join(out, 'archives');
  await fs.mkdir(storage, { recursive: true });
  await fs.link(hx.archive, path.join(storage, 'mixed.hxz')).catch(() => fs.copyFile(hx.archive, path.join(storage, 'mixed.hxz')));
  const large = mixed.largeFile;
  const size = mixed.largeSize;
  const secs = ctx.duration;
  // The cache holds the whole file for the warm runs (the gateway's default budget, or twice the file).
  const cacheBytes = Math.max(ctx.preset.gatewayCache, 2 * size);
  const threads = 2;
  const conns = 16;

  const servers = [{ name: 'hexz serve', start: () => startHexz(storage, cacheBytes), target: `/v1/archives/mixed/files/${encodePath(large)}` }];
  if (T.nginx.available) servers.push({ name: 'nginx (raw file)', start: () => startNginx(mixed.dir, out), target: `/${encodePath(large)}` });
  const scripts = {};
  const script = async (server, mode, len) => {
    const f = path.join(out, `${server.name.split(' ')[0]}-${mode}-${len}.lua`);
    if (!scripts[f]) {
      await fs.writeFile(f, wrkScript([{ path: server.target, size }], mode, len, threads));
      scripts[f] = true;
    }
    return f;
  };

  const results = { coldSeq: new Map(), warmSeq: new Map(), warmRand: new Map(), coldRand: new Map() };
  const keep = (m, name, rec) => {
    if (!m.has(name)) m.set(name, []);
    m.get(name).push(rec);
  };
  const failed = new Map();
  for (let r = 0; r < ctx.runs; r++) {
    for (const s of servers) {
      if (failed.has(s.name)) continue;
      let srv = null;
      try {
        // Cold sequential pass, then warm sequential and warm random on the same (now warm) server.
        ctx.dropCaches();
        srv = await s.start();
        const base = srv.base;
        const once = await onePass(base, s.target, size, MiB, { connections: 4, server: srv });
        keep(results.coldSeq, s.name, once);
        const seq = await runWrk(base, await script(s, 'seq', MiB), { threads, connections: 4, seconds: secs, server: srv });
        keep(results.warmSeq, s.name, seq);
        const rnd = await runWrk(base, await script(s, 'random', 64 * 1024), { threads, connections: conns, seconds: secs, server: srv });
        keep(results.warmRand, s.name, rnd);
        await srv.stop();
        srv = null;
        // Cold random: a fresh server, page cache dropped.
        ctx.dropCaches();
        srv = await s.start();
        const crnd = await runWrk(srv.base, await script(s, 'random', 64 * 1024), { threads, connections: conns, seconds: secs, server: srv });
        keep(results.coldRand, s.name, crnd);
        ctx.log(`  ${s.name} run ${r + 1}: cold seq ${once.mibps.toFixed(0)} MiB/s; warm seq ${seq.mibps.toFixed(0)} MiB/s p99 ${(seq.p99us / 1000).toFixed(1)} ms; warm random ${rnd.reqps.toFixed(0)} req/s p99 ${(rnd.p99us / 1000).toFixed(1)} ms; cold random ${crnd.reqps.toFixed(0)} req/s`);
      } catch (err) {
        failed.set(s.name, String(err.message || err).slice(0, 400));
        ctx.log(`  ${s.name} FAILED: ${err.message}`);
      } finally {
        if (srv) await srv.stop();
      }
    }
  }

  const mk = (title, m) => {
    const t = table(title, COLS, { reference: 'hexz serve' });
    for (const [name, recs] of m) addRow(t, name, medianOf(recs));
    for (const [name, err] of failed) if (!m.has(name)) addRow(t, name, {}, `failed: ${err}`);
    return t;
  };
  const tables = [
    mk(`warm: sequential 1 MiB ranges of ${large} (${fmtSize(size)}), wrk -t${threads} -c4, ${secs} s`, results.warmSeq),
    mk(`warm: random 64 KiB ranges (unaligned), wrk -t${threads} -c${conns}, ${secs} s`, results.warmRand),
    mk(`cold: one sequential pass in 1 MiB ranges, fresh server, page cache dropped, 4 connections (Node client)`, results.coldSeq),
    mk(`cold: random 64 KiB ranges, fresh server, page cache dropped, wrk -t${threads} -c${conns}, ${secs} s`, results.coldRand),
  ];

  const hs = results.warmSeq.get('hexz serve');
  const ns = results.warmSeq.get('nginx (raw file)');
  if (hs && ns) {
    const h = median(hs.map((x) => x.mibps));
    const n = median(ns.map((x) => x.mibps));
    ctx.targets.push({ id: 'gateway-vs-nginx', text: 'gateway warm sequential read throughput ≥ 50 % of nginx serving the same file uncompressed', measured: `${h.toFixed(0)} vs ${n.toFixed(0)} MiB/s (${((100 * h) / n).toFixed(0)} %)`, bar: '≥ 50 %', met: h >= 0.5 * n });
  } else {
    ctx.targets.push({ id: 'gateway-vs-nginx', text: 'gateway warm sequential read throughput ≥ 50 % of nginx serving the same file uncompressed', measured: null, met: null, note: [...failed].map(([n, e]) => `${n}: ${e}`).join('; ') || 'nginx missing' });
  }

  // Memory under sustained load: random 64 KiB ranges over every file of the data set (more than the
  // cache holds), default cache budget, 32 connections, twice the usual duration.
  const memBudget = ctx.preset.gatewayCache;
  const targets = mixed.list.filter(([, bytes]) => bytes >= 64 * 1024).map(([rel, bytes]) => ({ path: `/v1/archives/mixed/files/${encodePath(rel)}`, size: bytes }));
  let mem = null;
  let srv = null;
  try {
    srv = await startHexz(storage, memBudget);
    const f = path.join(out, 'memory.lua');
    await fs.writeFile(f, wrkScript(targets, 'random', 64 * 1024, threads));
    mem = await runWrk(srv.base, f, { threads, connections: 32, seconds: secs * 2, server: srv });
    const u = await srv.usage();
    mem.hwm = u.hwmBytes;
    mem.metrics = await scrapeMemory(srv.base);
    ctx.log(`  memory: ${mem.reqps.toFixed(0)} req/s over ${fmtSize(targets.reduce((a, t) => a + t.size, 0))}; peak RSS ${fmtSize(mem.serverPeakRss)} (VmHWM ${fmtSize(mem.hwm)}), budget ${fmtSize(memBudget)}`);
  } catch (err) {
    ctx.log(`  memory run FAILED: ${err.message}`);
    failed.set('memory', String(err.message));
  } finally {
    if (srv) await srv.stop();
  }
  const memTable = table(`sustained load: random 64 KiB ranges over all ${targets.length} files ≥ 64 KiB (${fmtSize(targets.reduce((a, t) => a + t.size, 0))}), cache budget ${fmtSize(memBudget)}, wrk -t${threads} -c32, ${secs * 2} s`, COLS.concat([{ key: 'hwm', label: 'VmHWM', unit: 'bytes', better: 'lower' }]), { reference: 'hexz serve' });
  if (mem) addRow(memTable, 'hexz serve', mem);
  else addRow(memTable, 'hexz serve', {}, `failed: ${failed.get('memory')}`);
  if (mem?.metrics) {
    const m = mem.metrics;
    const f = (k) => (typeof m[k] === 'number' ? fmtSize(m[k]) : 'n/a');
    memTable.notes.push(`Where the memory is, from the gateway's /metrics right after the load: block cache ${f('hexz_cache_bytes')} of ${f('hexz_cache_max_bytes')} budget (${m.hexz_cache_entries ?? 'n/a'} entries); V8 heap used ${f('nodejs_heap_size_used_bytes')} of ${f('nodejs_heap_size_total_bytes')}; external (Buffers) ${f('nodejs_external_memory_bytes')}; process RSS ${f('process_resident_memory_bytes')}.`);
  }
  tables.push(memTable);
  const limit = memBudget + 150 * MiB;
  ctx.targets.push({
    id: 'gateway-memory',
    text: 'gateway RSS within its cache budget + 150 MiB under sustained load',
    measured: mem ? `peak RSS ${fmtSize(mem.serverPeakRss)} (VmHWM ${fmtSize(mem.hwm)}) with a ${fmtSize(memBudget)} budget, ${mem.reqps.toFixed(0)} req/s, ${mem.errors} errors` : null,
    bar: `≤ ${fmtSize(limit)}`,
    met: mem ? Math.max(mem.serverPeakRss, mem.hwm) <= limit : null,
  });
  await firstRequestReads(ctx, out, storage, failed);
  await fs.rm(out, { recursive: true, force: true });
  return {
    tables,
    notes: failed.size ? [...failed].map(([n, e]) => `${n} failed: ${e}`) : [],
    meaning: [
      `hexz serve: \`hexz serve --storage DIR --cache-size ${fmtSize(cacheBytes)}\` (HEXZ_LOG_LEVEL=warn: no per-request log lines), URL /v1/archives/mixed/files/${large}; it decompresses and verifies chunks (zstd 3) on the way in. nginx ${T.nginx.version ?? ''}: the raw, uncompressed file from the data set directory, worker_processes auto, sendfile on, tcp_nopush off (nginx's default: with it on, unaligned 64 KiB ranges stall ~40 ms, PEERS.md), tcp_nodelay on, access_log off.`,
      `wrk ${T.wrk.version ?? ''} on the same 2 cores as the server (loopback), with Lua scripts that send Range headers (bench/lib/http.mjs). Sequential = consecutive 1 MiB ranges shared by 4 connections; random = 64 KiB at any byte offset (unaligned) with ${conns} connections.`,
      'cold = a freshly started server (empty block cache) after dropping the page cache; the cold sequential figure is one complete pass over the file with a small Node client (bench/lib/http.mjs onePass, 4 keep-alive connections each taking the next 1 MiB range), because wrk cannot stop after one pass. warm = right after that pass (everything cached).',
      'server CPU = CPU seconds of the server process tree ÷ wall time (2.0 = both cores busy); server peak RSS = the largest RSS of the server process tree sampled every 200 ms (nginx: master + workers).',
    ],
  };
}

/**
 * O(1) first byte (issue 15): storage requests of the first range request for a byte in the middle
 * of a file of more than 50,000 chunks, counted on the gateway's /metrics between the archive's open
 * (GET /v1/archives/NAME) and the answer; the bar is at most 3 (file-table page, chunk-index page,
 * the chunk). The file is 20 MiB of random bytes packed with 256-byte chunks (~80,000 references,
 * two chunk-index pages): quick to build, and as many references as a 5 GiB file at the default size.
 */
async function firstRequestReads(ctx, out, storage, failed) {
  const src = path.join(out, 'many-chunks');
  await fs.mkdir(src, { recursive: true });
  const size = 20 * MiB;
  await fs.writeFile(path.join(src, 'big.bin'), randomBytes(5150, size));
  const packed = await hexz(['--json', 'pack', '--force', '--chunk-size', '256', src, path.join(storage, 'many-chunks.hxz')], { stdout: 'capture' });
  let measured = null;
  let refs = null;
  let srv = null;
  try {
    if (packed.code !== 0) throw new Error(`pack failed: ${String(packed.stderr).trim().split('\n').pop()}`);
    srv = await startHexz(storage, ctx.preset.gatewayCache);
    const info = await (await fetch(`${srv.base}/v1/archives/many-chunks`)).json();
    refs = info.chunkRefs ?? info.info?.chunkRefs ?? null;
    const before = await storageRequests(srv.base);
    const at = Math.floor(size * 0.61) + 12345;
    const r = await fetch(`${srv.base}/v1/archives/many-chunks/files/big.bin`, { headers: { Range: `bytes=${at}-${at + 999}` } });
    await r.arrayBuffer();
    if (r.status !== 206 || !r.headers.get('etag')) throw new Error(`status ${r.status}, ETag ${r.headers.get('etag')}`);
    measured = (await storageRequests(srv.base)) - before;
  } catch (err) {
    ctx.log(`  first-request reads FAILED: ${err.message}`);
    failed.set('first request', String(err.message));
  } finally {
    if (srv) await srv.stop();
  }
  if (measured !== null) ctx.log(`  first request of a file of ${refs} chunks: ${measured} storage reads beyond the open`);
  ctx.targets.push({
    id: 'gateway-first-byte',
    text: 'first range request of a file of ≥ 50k chunks: at most 3 storage reads beyond the archive\'s open (with a strong ETag)',
    measured: measured === null ? null : `${measured} storage reads for a file of ${refs ?? '?'} chunk references`,
    bar: '≤ 3',
    met: measured === null ? null : measured <= 3 && (refs ?? 0) >= 50_000,
  });
}

/** hexz_storage_requests_total of the whole server (every worker), from /metrics. */
async function storageRequests(base) {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = line.match(/^hexz_storage_requests_total(?:\{[^}]*\})?\s+([-\d.e+]+)/);
    if (m) n += Number(m[1]);
  }
  return n;
}

/** Memory gauges from the gateway's Prometheus endpoint (cache, V8 heap, external buffers, RSS). */
async function scrapeMemory(base) {
  try {
    const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    const want = ['hexz_cache_bytes', 'hexz_cache_max_bytes', 'hexz_cache_entries', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'process_resident_memory_bytes'];
    const out = {};
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = line.match(/^([a-z_]+)(?:\{[^}]*\})?\s+([-\d.e+]+)/);
      if (m && want.includes(m[1])) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}
