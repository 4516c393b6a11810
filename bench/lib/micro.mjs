#!/usr/bin/env node
// Child process: single-thread micro-benchmarks of the pieces of hexz's pack and read paths, on the
// same kind of mixed data as the data sets (text, structured binary, incompressible in 1 MiB runs).
// Prints one JSON line: { bytes, chunks, results: { name: { mibps, passes } } }.
//   node bench/lib/micro.mjs --bytes N [--passes P] [--write FILE (the data, for the zstd/lz4 CLI benchmarks)]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './tools.mjs';
import { binaryBytes, randomStream, rng, textBytes } from './prng.mjs';

const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const bytes = Number(opt('--bytes', String(64 << 20)));
const passes = Number(opt('--passes', '3'));
const dist = (p) => import(pathToFileURL(path.join(REPO, 'dist', p)).href);

const { createChunker, DEFAULT_CHUNKING } = await dist('src/chunker/fastcdc.js');
const { codecByName } = await dist('src/codecs/index.js');
const { hash, createKeyedHasher } = await dist('src/hash.js');
const { deriveArchiveKeys, sealChunk, openChunk } = await dist('src/crypto/keys.js');
const { encodeChunk, decodeChunk, chunkIdFunction } = await dist('src/format/chunk.js');

// Data: 1 MiB runs in a fixed cycle — text 50 %, binary 30 %, incompressible 20 %.
const data = Buffer.allocUnsafe(bytes);
{
  const r = rng('micro');
  const rand = randomStream('micro');
  for (let at = 0, i = 0; at < bytes; at += 1 << 20, i++) {
    const n = Math.min(1 << 20, bytes - at);
    const x = (i % 10) / 10;
    const piece = x < 0.5 ? textBytes(r, n, ['log', 'csv', 'json'][i % 3]) : x < 0.8 ? binaryBytes(r, n) : rand(n);
    piece.copy(data, at);
  }
}
const chunker = createChunker(DEFAULT_CHUNKING);
const chunks = [];
for (let at = 0; at < data.length; ) {
  const n = chunker.cut(data, at, data.length, true);
  chunks.push(data.subarray(at, at + n));
  at += n;
}
const keys = deriveArchiveKeys(Buffer.alloc(32, 7));
const zstd = codecByName('zstd');
const lz4 = codecByName('lz4');
const keyed = createKeyedHasher(keys.idKey);
const ids = chunks.map((c) => hash(c));
const zs = chunks.map((c) => zstd.compress(c, 3));
const l4 = chunks.map((c) => lz4.compress(c));
const sealed = chunks.map((c, i) => sealChunk(keys, ids[i], 0, c));
const encPlain = chunks.map((c, i) => encodeChunk(c, ids[i], 1, 3));
const keyedIds = chunks.map((c) => keyed(c));
const encKeyed = chunks.map((c, i) => encodeChunk(c, keyedIds[i], 1, 3, keys));
const idPlain = chunkIdFunction();
const idKeyed = chunkIdFunction(keys);
let sink = 0;
const copyDst = Buffer.alloc(data.length);
const writeTo = opt('--write', null);
if (writeTo) (await import('node:fs')).writeFileSync(writeTo, data);

const benches = {
  'memcpy (Buffer.copy)': () => {
    data.copy(copyDst);
    sink ^= copyDst[copyDst.length - 1];
  },
  'FastCDC chunking (gear hash scan)': () => {
    for (let at = 0; at < data.length; ) at += chunker.cut(data, at, data.length, true);
  },
  'BLAKE3 chunk ids': () => {
    for (const c of chunks) sink ^= hash(c)[0];
  },
  'BLAKE3 keyed chunk ids (encrypted archives)': () => {
    for (const c of chunks) sink ^= keyed(c)[0];
  },
  'zstd -3 compress (per chunk)': () => {
    for (const c of chunks) sink ^= zstd.compress(c, 3).length;
  },
  'zstd decompress (per chunk)': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= zstd.decompress(zs[i], chunks[i].length).length;
  },
  'lz4 compress (per chunk)': () => {
    for (const c of chunks) sink ^= lz4.compress(c).length;
  },
  'lz4 decompress (per chunk)': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= lz4.decompress(l4[i], chunks[i].length).length;
  },
  'AES-256-GCM seal (node:crypto, incl. nonce derivation)': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= sealChunk(keys, ids[i], 0, chunks[i]).length;
  },
  'AES-256-GCM open': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= openChunk(keys, ids[i], sealed[i]).length;
  },
  'pack path per chunk: id + zstd -3 (encodeChunk)': () => {
    for (const c of chunks) {
      const id = idPlain(c);
      sink ^= encodeChunk(c, id, 1, 3).bytes.length;
    }
  },
  'pack path per chunk, encrypted: keyed id + zstd -3 + seal': () => {
    for (const c of chunks) {
      const id = idKeyed(c);
      sink ^= encodeChunk(c, id, 1, 3, keys).bytes.length;
    }
  },
  'read path per chunk: zstd decompress + verify id (decodeChunk)': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= decodeChunk(encPlain[i].bytes, { id: ids[i], codec: encPlain[i].codec, raw: chunks[i].length }, idPlain).length;
  },
  'read path per chunk, encrypted: open + decompress + verify': () => {
    for (let i = 0; i < chunks.length; i++) sink ^= decodeChunk(encKeyed[i].bytes, { id: keyedIds[i], codec: encKeyed[i].codec, raw: chunks[i].length }, idKeyed, keys).length;
  },
};

const results = {};
for (const [name, fn] of Object.entries(benches)) {
  fn(); // warm-up (JIT, allocations)
  const rates = [];
  for (let p = 0; p < passes; p++) {
    const t0 = process.hrtime.bigint();
    fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(bytes / 1048576 / s);
  }
  rates.sort((a, b) => a - b);
  results[name] = { mibps: rates[rates.length >> 1], passes };
}
const zBytes = zs.reduce((a, b) => a + b.length, 0);
process.stdout.write(`${JSON.stringify({ bytes, chunks: chunks.length, avgChunk: bytes / chunks.length, zstdRatio: bytes / zBytes, results, sink })}\n`);
