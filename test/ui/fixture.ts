/// <reference lib="dom" />
// (encodeTestVideo runs WebCodecs in the browser: DOM types.)
/**
 * Shared setup of the page's tests: a dataset with one file of every preview kind (text three
 * directories down, CSV, Parquet written by hyparquet-writer, a PNG, a WAV, JSON, random binary, a
 * 1 GiB sparse file, a directory of 250 entries, a text file longer than one 64 KiB step, a WebM video
 * encoded by the browser itself), its earlier version as a base, and Chromium driven by
 * playwright-core (Debian's /usr/bin/chromium, headless, a fresh profile per launch).
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';

/** Debian's Chromium (`apt-get install chromium`; `make system-deps` and .ci/run install it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a quiet, reproducible headless Chromium in a container (no sandbox: we run as root). */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** Browser tests run when Chromium is there; in CI (CI=true) its absence is a failure, not a skip. */
export const haveChromium = existsSync(CHROMIUM) || Boolean(process.env.CI);

/** A headless Chromium with a fresh profile; `close()` ends it and removes the profile. */
export async function launchBrowser(opts: { viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: opts.viewport ?? { width: 1280, height: 860 },
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}

/** CRC-32 (PNG chunks). */
function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A `w`×`h` RGB PNG of a colour gradient with a diagonal band (something recognisable in a screenshot). */
export function pngBytes(w: number, h: number): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      const band = Math.abs(x - y) < w / 10;
      raw[row + 1 + x * 3] = band ? 255 : Math.round((255 * x) / w);
      raw[row + 2 + x * 3] = band ? 255 : Math.round((255 * y) / h);
      raw[row + 3 + x * 3] = band ? 255 : 200;
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A mono 16-bit PCM WAV: a tone of `seconds` at 8 kHz (seekable by byte range). */
export function wavBytes(seconds: number): Buffer {
  const rate = 8000;
  const n = rate * seconds;
  const b = Buffer.alloc(44 + n * 2);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + n * 2, 4);
  b.write('WAVEfmt ', 8, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return b;
}

/** The test video: `VIDEO_SECONDS` of VP8 at `VIDEO_FPS`, a keyframe (and a cluster) every second. */
export const VIDEO_SECONDS = 3;
const VIDEO_FPS = 10;
const VIDEO_W = 160;
const VIDEO_H = 120;

/** One EBML element: its id, its size as an 8-byte vint (a fixed width, so sizes can be computed ahead), its body. */
function ebml(id: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(body.length));
  size[0] = 0x01; // vint marker of an 8-byte size (bodies here are far below 2^56)
  const hex = id.toString(16);
  return Buffer.concat([Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'), size, body]);
}
const ebmlUint = (id: number, n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return ebml(id, b);
};
const ebmlFloat = (id: number, x: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return ebml(id, b);
};
const ebmlString = (id: number, s: string) => ebml(id, Buffer.from(s, 'latin1'));

/** Encoded VP8 frames (microsecond timestamps). */
export interface VideoFrameData {
  ts: number;
  key: boolean;
  data: number[];
}

/**
 * A WebM file of VP8 frames: EBML header, Segment { Info (duration), Tracks, Cues, Clusters }, one
 * cluster per keyframe and the cues before the clusters, so a player knows the duration and where to
 * seek from the first bytes it reads (what a real muxer writes for the web).
 */
export function webmBytes(frames: VideoFrameData[], w = VIDEO_W, h = VIDEO_H, fps = VIDEO_FPS): Buffer {
  const header = ebml(0x1a45dfa3, ebmlUint(0x4286, 1), ebmlUint(0x42f7, 1), ebmlUint(0x42f2, 4), ebmlUint(0x42f3, 8), ebmlString(0x4282, 'webm'), ebmlUint(0x4287, 2), ebmlUint(0x4285, 2));
  const info = ebml(0x1549a966, ebmlUint(0x2ad7b1, 1_000_000), ebmlFloat(0x4489, (frames.length * 1000) / fps), ebmlString(0x4d80, 'hexz-test'), ebmlString(0x5741, 'hexz-test'));
  const video = ebml(0xe0, ebmlUint(0xb0, w), ebmlUint(0xba, h));
  const tracks = ebml(0x1654ae6b, ebml(0xae, ebmlUint(0xd7, 1), ebmlUint(0x73c5, 1), ebmlUint(0x83, 1), ebmlString(0x86, 'V_VP8'), ebmlUint(0x23e383, Math.round(1e9 / fps)), video));
  const clusters: Array<{ ms: number; blocks: Buffer[] }> = [];
  for (const f of frames) {
    const ms = Math.round(f.ts / 1000);
    if (f.key || !clusters.length) clusters.push({ ms, blocks: [] });
    const c = clusters[clusters.length - 1];
    const head = Buffer.alloc(4);
    head[0] = 0x81; // track 1
    head.writeInt16BE(ms - c.ms, 1);
    head[3] = f.key ? 0x80 : 0;
    c.blocks.push(ebml(0xa3, head, Buffer.from(f.data)));
  }
  const clusterBytes = clusters.map((c) => ebml(0x1f43b675, ebmlUint(0xe7, c.ms), ...c.blocks));
  const cues = (first: number) => {
    let at = first;
    return ebml(
      0x1c53bb6b,
      ...clusters.map((c, i) => {
        const point = ebml(0xbb, ebmlUint(0xb3, c.ms), ebml(0xb7, ebmlUint(0xf7, 1), ebmlUint(0xf1, at)));
        at += clusterBytes[i].length;
        return point;
      }),
    );
  };
  // Cluster positions count from the start of the Segment's body; the cues' length does not depend on them.
  const before = info.length + tracks.length;
  const segment = ebml(0x18538067, info, tracks, cues(before + cues(0).length), ...clusterBytes);
  return Buffer.concat([header, segment]);
}

/**
 * Encode the test video with the browser's own VP8 encoder (WebCodecs; ffmpeg is not needed): a
 * colour sweep with the frame number, on a page of a fake localhost origin (WebCodecs needs a secure
 * context).
 */
export async function encodeTestVideo(context: BrowserContext): Promise<Buffer> {
  const page = await context.newPage();
  try {
    await page.route('http://localhost/encode', (r) => r.fulfill({ body: '<!doctype html><title>encode</title>', contentType: 'text/html' }));
    await page.goto('http://localhost/encode');
    const frames = await page.evaluate(
      async ({ w, h, fps, n }) => {
        const out: Array<{ ts: number; key: boolean; data: number[] }> = [];
        let failed: unknown;
        const enc = new VideoEncoder({
          output: (c) => {
            const b = new Uint8Array(c.byteLength);
            c.copyTo(b);
            out.push({ ts: c.timestamp, key: c.type === 'key', data: Array.from(b) });
          },
          error: (e) => (failed = e),
        });
        enc.configure({ codec: 'vp8', width: w, height: h, bitrate: 200_000, framerate: fps });
        const canvas = new OffscreenCanvas(w, h);
        const g = canvas.getContext('2d')!;
        for (let i = 0; i < n; i++) {
          g.fillStyle = `hsl(${(i * 360) / n}, 70%, 50%)`;
          g.fillRect(0, 0, w, h);
          g.fillStyle = '#fff';
          g.font = '48px sans-serif';
          g.fillText(String(i), 16, 72);
          const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / fps), duration: Math.round(1e6 / fps) });
          enc.encode(frame, { keyFrame: i % fps === 0 });
          frame.close();
        }
        await enc.flush();
        if (failed) throw new Error(String(failed));
        return out;
      },
      { w: VIDEO_W, h: VIDEO_H, fps: VIDEO_FPS, n: VIDEO_SECONDS * VIDEO_FPS },
    );
    return webmBytes(frames);
  } finally {
    await page.close();
  }
}

/** Lines of the long text file: 200 KiB and more, so its preview needs several 64 KiB steps. */
export const LONG_TEXT_LINES = 4000;
export function longText(): string {
  return Array.from({ length: LONG_TEXT_LINES }, (_, i) => `line ${String(i + 1).padStart(5, '0')} of the long text, read 64 KiB at a time\n`).join('');
}

/** Archive files that would run script if a browser rendered them as active content of the gateway's origin. */
export const ACTIVE_HTML = '<!doctype html><title>inert</title><h1>an archive page</h1><script>document.title = "ran"; window.hexzActive = true; alert("archive script ran")</script>\n';
export const ACTIVE_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="teal"/><script>window.hexzActive = true; alert("svg script ran")</script></svg>\n';

/** Rows of the CSV and Parquet fixtures. */
export const TABLE_ROWS = 500;

export function csvText(): string {
  const lines = ['station,day,temperature,note'];
  for (let i = 0; i < TABLE_ROWS; i++) lines.push(`st${i % 7},${i},${((i * 37) % 40) - 5}.5,"row ${i}, quoted"`);
  return `${lines.join('\n')}\n`;
}

export function parquetBytes(): Buffer {
  const ab = parquetWriteBuffer({
    columnData: [
      { name: 'station', data: Array.from({ length: TABLE_ROWS }, (_, i) => `st${i % 7}`), type: 'STRING' },
      { name: 'day', data: Array.from({ length: TABLE_ROWS }, (_, i) => i), type: 'INT32' },
      { name: 'temperature', data: Array.from({ length: TABLE_ROWS }, (_, i) => ((i * 37) % 40) - 5 + 0.5), type: 'DOUBLE' },
    ],
  });
  return Buffer.from(ab);
}

/** Rows and row group size of the large Parquet file: its preview must read the footer and one row group, not the file. */
export const BIG_PARQUET_ROWS = 200_000;
export const BIG_PARQUET_GROUP = 10_000;

/** A Parquet file of a few MiB in 20 row groups, of values that do not compress (a seeded sequence). */
export function bigParquetBytes(): Buffer {
  let x = 12345;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const ab = parquetWriteBuffer({
    columnData: [
      { name: 'id', data: Array.from({ length: BIG_PARQUET_ROWS }, (_, i) => i), type: 'INT32' },
      { name: 'value', data: Array.from({ length: BIG_PARQUET_ROWS }, () => next() / 2 ** 32), type: 'DOUBLE' },
      { name: 'code', data: Array.from({ length: BIG_PARQUET_ROWS }, () => next().toString(36)), type: 'STRING' },
    ],
    rowGroupSize: BIG_PARQUET_GROUP,
  });
  return Buffer.from(ab);
}

/** Size of the sparse file whose preview must read at most 1 MiB. */
export const GIB = 1024 * 1024 * 1024;

/**
 * Write the dataset: version 1 under `v1`, version 2 under `v2` (one file changed, five added, one
 * deleted, one renamed; new bytes stored twice, so some deduplicate inside; a small sparse file, so
 * some are holes), and under `huge` a 1 GiB sparse file (made with truncate: holes, packed in seconds).
 */
export async function writeUiDataset(v1: string, v2: string, huge: string, more?: { dir: string; video: Buffer }): Promise<void> {
  const common: Record<string, string | Uint8Array | null> = {
    'README.md': '# UI test dataset\n\nFiles of every preview kind.\n',
    'data/2026/jan/notes.txt': `${'Three levels down: hello from the page tests.\n'.repeat(20)}`,
    'data/table.csv': csvText(),
    'data/table.parquet': parquetBytes(),
    'data/manifest.json': JSON.stringify({ name: 'ui', version: 2, tags: ['hexz', 'test'], nested: { a: [1, 2, 3] } }),
    'images/gradient.png': pngBytes(320, 200),
    'media/tone.wav': wavBytes(4),
    'bin/random.bin': randomBytesSeeded(200_000, 5),
    'docs/old-name.txt': 'this file is renamed in v2\n'.repeat(50),
    'docs/removed.txt': 'gone in v2\n',
  };
  const many: Record<string, string> = {};
  for (let i = 0; i < 250; i++) many[`many/file-${String(i).padStart(3, '0')}.txt`] = `entry ${i}\n`;
  await writeTree(v1, { ...common, ...many, 'data/2026/jan/notes.txt': 'version one\n' });
  const fresh = randomBytesSeeded(300_000, 9);
  const v2files: Record<string, string | Uint8Array | null> = { ...common, ...many, 'bin/new.bin': fresh, 'bin/new-copy.bin': fresh };
  delete v2files['docs/removed.txt'];
  delete v2files['docs/old-name.txt'];
  v2files['docs/new-name.txt'] = common['docs/old-name.txt'];
  v2files['docs/added.txt'] = 'new in v2\n';
  await writeTree(v2, v2files);
  const sparse = Buffer.alloc(512 * 1024);
  sparse.write('hexz', 256 * 1024);
  await fs.writeFile(path.join(v2, 'data', 'sparse.img'), sparse);
  // A hostile name: it must show as text, never as markup.
  await fs.writeFile(path.join(v2, 'docs', '<img src=x onerror=alert(1)>.txt'), 'not markup\n');
  await fs.mkdir(huge, { recursive: true });
  await fs.writeFile(path.join(huge, 'sparse.img'), '');
  await fs.truncate(path.join(huge, 'sparse.img'), GIB);
  // Apart from v1 and v2, so the figures of their pictures and diff stay as they are.
  if (more) await writeTree(more.dir, { 'media/clip.webm': more.video, 'text/long.txt': longText(), 'web/active.html': ACTIVE_HTML, 'web/active.svg': ACTIVE_SVG, 'tables/big.parquet': bigParquetBytes() });
}
