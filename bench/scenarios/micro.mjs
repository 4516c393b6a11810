// Scenario 6 — micro-benchmarks: MiB/s per core of each piece of the pack and read paths (chunker,
// BLAKE3, zstd, lz4, AES-GCM, and the whole per-chunk encode/decode), next to the native zstd / lz4 CLIs
// on the same bytes and the limits PEERS.md measured on this kind of machine.
import os from 'node:os';
import path from 'node:path';
import { MiB } from '../lib/common.mjs';
import { runProcess } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { NODE, REPO } from '../lib/tools.mjs';

export const title = '6. Micro-benchmarks: where the time goes (one core)';

/** PEERS.md, "Limits measured on a machine of this kind (one core)". */
const REFERENCE = {
  'memcpy (Buffer.copy)': 12000,
  'FastCDC chunking (gear hash scan)': 750,
  'BLAKE3 chunk ids': 4000,
  'zstd -3 compress (per chunk)': 250,
  'zstd decompress (per chunk)': 1100,
  'lz4 decompress (per chunk)': 3000,
  'AES-256-GCM seal (node:crypto, incl. nonce derivation)': 2200,
  'AES-256-GCM open': 2200,
};

/** Parse the last result line of `zstd -b` / `lz4 -b`: "… -> N (x1.38), 211.8 MB/s, 1838.5 MB/s". */
function parseCliBench(text) {
  const m = [...text.replace(/\r/g, '\n').matchAll(/([\d.]+) MB\/s\s*,\s*([\d.]+) MB\/s/g)].pop();
  return m ? { c: (Number(m[1]) * 1e6) / MiB, d: (Number(m[2]) * 1e6) / MiB } : null;
}

export async function run(ctx) {
  const out = await ctx.scratch('micro');
  const dataFile = path.join(out, 'micro.bin');
  const bytes = ctx.preset.micro;
  const r = await runProcess(NODE, [path.join(REPO, 'bench', 'lib', 'micro.mjs'), '--bytes', String(bytes), '--passes', String(Math.max(3, ctx.runs)), '--write', dataFile], { stdout: 'capture' });
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  const t = table(`${(bytes / MiB).toFixed(0)} MiB of mixed data (text / binary / incompressible in 1 MiB runs), ${j.chunks} chunks of ${(j.avgChunk / 1024).toFixed(0)} KiB on average, zstd -3 ratio ${j.zstdRatio.toFixed(2)}`, [
    { key: 'mibps', label: 'hexz (Node, one thread)', unit: 'MiB/s', better: 'higher' },
    { key: 'native', label: 'native CLI, same bytes (one thread)', unit: 'MiB/s', better: 'higher', ratio: false },
    { key: 'reference', label: 'PEERS.md limit (one core)', unit: 'MiB/s', better: 'higher', ratio: false },
  ], { rowLabel: 'operation' });
  let zb = null;
  let lb = null;
  if (ctx.tools.zstd.available) {
    const z = await runProcess('zstd', ['-b3', '-B65536', '-i1', '-T1', dataFile], { stdout: 'capture', allowFail: true });
    zb = parseCliBench(`${z.stdout}\n${z.stderr}`);
  }
  if (ctx.tools.lz4.available) {
    const l = await runProcess('lz4', ['-b1', '-B4', '-i1', dataFile], { stdout: 'capture', allowFail: true });
    lb = parseCliBench(`${l.stdout}\n${l.stderr}`);
  }
  const native = {
    'zstd -3 compress (per chunk)': zb?.c,
    'zstd decompress (per chunk)': zb?.d,
    'lz4 compress (per chunk)': lb?.c,
    'lz4 decompress (per chunk)': lb?.d,
  };
  for (const [name, v] of Object.entries(j.results)) {
    addRow(t, name, { mibps: v.mibps, native: native[name] ?? null, reference: REFERENCE[name] ?? null });
  }
  const R = j.results;
  const pack1 = R['pack path per chunk: id + zstd -3 (encodeChunk)'].mibps;
  const cdc = R['FastCDC chunking (gear hash scan)'].mibps;
  const read1 = R['read path per chunk: zstd decompress + verify id (decodeChunk)'].mibps;
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  t.notes.push(
    `Pack, per core: chunking (${cdc.toFixed(0)} MiB/s) runs on the main thread for files of 4 MiB and more (the workers cut smaller files themselves, in batches); hashing + compression (${pack1.toFixed(0)} MiB/s) runs in every worker. With ${cores} cores shared by both, the ceiling is about 1 ÷ (1/${cdc.toFixed(0)} + 1/${pack1.toFixed(0)}) × ${cores} ≈ ${((1 / (1 / cdc + 1 / pack1)) * cores).toFixed(0)} MiB/s of compressible input before any I/O or messaging.`,
    `Read, per core: decompress + verify ${read1.toFixed(0)} MiB/s per chunk entering the cache.`,
  );
  return {
    tables: [t],
    meaning: [
      'Each figure is the median of several passes over the same in-memory buffer after one warm-up pass, in one Node process, one thread (bench/lib/micro.mjs), with hexz\'s own modules from dist/. MiB/s are of plaintext bytes (compressed input for decompression is counted by its plaintext size).',
      '"native CLI" is `zstd -b3 -B65536 -T1` and `lz4 -b1 -B4` on the same bytes (64 KiB blocks): what the C libraries do without Node in between.',
      'The "pack path" and "read path" rows are the whole per-chunk work of a packer worker and of a cache miss.',
    ],
  };
}
