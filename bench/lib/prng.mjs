// Deterministic pseudo-random sources for the data set generators: the same seed always gives the same
// bytes, on any machine, so every tool sees identical data and runs can be compared.
import { createCipheriv, createHash } from 'node:crypto';

/** sfc32: a small, fast 32-bit generator seeded from a string. */
export function rng(seed) {
  const h = createHash('sha256').update(String(seed)).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12) | 1;
  const u32 = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) u32();
  const float = () => u32() / 4294967296;
  const int = (lo, hi) => lo + Math.floor(float() * (hi - lo + 1));
  return {
    u32,
    float,
    int,
    chance: (p) => float() < p,
    pick: (arr) => arr[Math.floor(float() * arr.length)],
    /** Log-uniform integer in [lo, hi]: many small values, few large ones. */
    logUniform: (lo, hi) => Math.round(Math.exp(Math.log(lo) + float() * (Math.log(hi) - Math.log(lo)))),
    fork: (label) => rng(`${seed}/${label}/${u32()}`),
  };
}

/** Incompressible bytes (stand-in for already-compressed media): an AES-256-CTR keystream. */
export function randomStream(seed) {
  const key = createHash('sha256').update(`key:${seed}`).digest();
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  let zeros = Buffer.alloc(0);
  return (n) => {
    if (zeros.length < n) zeros = Buffer.alloc(n);
    return cipher.update(zeros.subarray(0, n));
  };
}

export function randomBytes(seed, n) {
  return randomStream(seed)(n);
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'te', 'vo', 'xi', 'ba', 'de', 'fo', 'gu', 'hi', 'jo', 'pe', 'qu', 'ri', 'st', 'th', 'an', 'er', 'in', 'on'];
let vocab = null;

/** ~4,000 words with a Zipf-like frequency table (a few common words, a long tail). */
function vocabulary() {
  if (vocab) return vocab;
  const r = rng('vocabulary');
  const words = [];
  for (let i = 0; i < 4000; i++) {
    const n = r.int(1, 4);
    let w = '';
    for (let j = 0; j < n; j++) w += r.pick(SYLLABLES);
    words.push(w);
  }
  const table = [];
  for (let i = 0; i < words.length; i++) {
    const weight = Math.max(1, Math.round(400 / (i + 1)));
    for (let k = 0; k < weight; k++) table.push(words[i]);
  }
  vocab = { words, table };
  return vocab;
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const SERVICES = ['api', 'auth', 'billing', 'search', 'ingest', 'cache', 'scheduler', 'gateway'];
const PATHS = ['/v1/items', '/v1/users', '/v1/orders', '/healthz', '/v2/search', '/v1/archives', '/metrics'];

/**
 * Compressible text of `n` bytes in one of three flavours (log lines, CSV rows, JSON lines), with
 * random fields, so zstd -3 gets roughly 3–6× like on real logs and exports.
 */
export function textBytes(r, n, flavour = 'log') {
  const { table } = vocabulary();
  const parts = [];
  let len = 0;
  let ts = 1_700_000_000_000 + r.int(0, 1e9);
  const word = () => table[r.u32() % table.length];
  // Formatting dates and decimals is the slow part: the date prefix is rebuilt once per second only,
  // decimals are built from integers.
  let sec = -1;
  let prefix = '';
  const dec = (scale) => {
    const v = r.u32() % (scale * 1000);
    const f = v % 1000;
    return `${(v / 1000) | 0}.${f < 10 ? '00' : f < 100 ? '0' : ''}${f}`;
  };
  while (len < n) {
    let line;
    ts += r.u32() % 2001;
    if (flavour === 'csv') {
      line = `${ts},${word()},${word()},${r.u32() % 100000},${dec(1000)},${word()} ${word()},${r.u32() & 1 ? 'true' : 'false'}\n`;
    } else if (flavour === 'json') {
      line = `{"ts":${ts},"user":"${word()}${r.u32() % 999}","event":"${word()}","tags":["${word()}","${word()}"],"value":${dec(100)},"ok":${(r.u32() & 15) !== 0}}\n`;
    } else {
      const s = Math.floor(ts / 1000);
      if (s !== sec) {
        sec = s;
        prefix = new Date(s * 1000).toISOString().slice(0, 19);
      }
      const ms = ts % 1000;
      line = `${prefix}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z ${LEVELS[r.u32() & 7]} [${SERVICES[r.u32() & 7]}] ${word()} ${word()} ${word()} path=${PATHS[r.u32() % PATHS.length]} status=${(r.u32() & 31) !== 0 ? 200 : 500} took=${1 + (r.u32() % 900)}ms id=${r.u32().toString(16)}\n`;
    }
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join(''), 'latin1').subarray(0, n);
}

/** Structured binary records (counters, timestamps, slowly varying floats): compresses ~2×. */
export function binaryBytes(r, n) {
  const buf = Buffer.allocUnsafe(Math.ceil(n / 32) * 32);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let seqNo = r.u32();
  let ts = 1_700_000_000 + r.int(0, 1e6);
  let x = r.float() * 100;
  let y = r.float() * 100;
  for (let o = 0; o < buf.length; o += 32) {
    seqNo = (seqNo + 1) >>> 0;
    ts = (ts + (r.u32() & 3)) >>> 0;
    x += r.float() - 0.5;
    y += (r.float() - 0.5) * 0.1;
    dv.setUint32(o, seqNo, true);
    dv.setUint32(o + 4, ts, true);
    dv.setFloat32(o + 8, x, true);
    dv.setFloat32(o + 12, y, true);
    dv.setFloat64(o + 16, x * y, true);
    dv.setUint16(o + 24, r.u32() & 0x0f, true);
    dv.setUint16(o + 26, 0, true);
    dv.setUint32(o + 28, r.u32() & 0xffff, true);
  }
  return buf.subarray(0, n);
}
