#!/usr/bin/env node
// Child process: random reads through the hexz library API (openArchive + read), queue depth 1, for a
// fixed time; prints one JSON line: { ops, seconds, iops, mibps, p50us, p99us, p999us, openMs }.
//   node bench/lib/hexz-random.mjs ARCHIVE PATH --seconds S --bs BYTES [--seed N] [--key-file F] [--cache-size BYTES]
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { REPO } from './tools.mjs';
import { rng } from './prng.mjs';

const args = process.argv.slice(2);
const [archivePath, filePath] = args;
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const seconds = Number(opt('--seconds', '5'));
const bs = Number(opt('--bs', '4096'));
const seed = opt('--seed', '1');
const keyFile = opt('--key-file', null);
const cacheSize = opt('--cache-size', null);

const dist = (p) => pathToFileURL(path.join(REPO, 'dist', p)).href;
const { openArchive } = await import(dist('src/reader/archive.js'));
const cacheMod = await import(dist('cache/block-cache.js'));
let key;
if (keyFile) {
  const { readKeyFile } = await import(dist('src/crypto/key-files.js'));
  key = { kind: 'key', key: await readKeyFile(keyFile) };
}
const t0 = process.hrtime.bigint();
const cache = cacheSize ? new cacheMod.BlockCache({ maxBytes: Number(cacheSize) }) : undefined;
const archive = await openArchive(path.resolve(archivePath), { key, ...(cache ? { cache } : {}) });
const entry = await archive.entry(filePath);
const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
const r = rng(`random/${seed}`);
const lat = [];
const span = Math.max(1, Math.floor((entry.size - bs) / bs));
const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
const start = process.hrtime.bigint();
let now = start;
let checksum = 0;
while (now < end) {
  // Block-aligned offsets, like fio's randread (blockalign = bs).
  const off = Math.min(entry.size - bs, (r.u32() % span) * bs);
  const b = await archive.read(entry, off, bs);
  checksum ^= b[0];
  const t = process.hrtime.bigint();
  lat.push(Number(t - now) / 1000);
  now = t;
}
const secs = Number(now - start) / 1e9;
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))];
await archive.close();
process.stdout.write(`${JSON.stringify({ ops: lat.length, seconds: secs, iops: lat.length / secs, mibps: (lat.length * bs) / 1048576 / secs, p50us: pct(50), p99us: pct(99), p999us: pct(99.9), openMs, checksum })}\n`);
