/**
 * Shared setup of the page's tests: a dataset with one file of every preview kind (text three
 * directories down, CSV, Parquet written by hyparquet-writer, a PNG, a WAV, JSON, random binary, a
 * 1 GiB sparse file, a directory of 250 entries), its earlier version as a base, and Chromium driven
 * by playwright-core (Debian's /usr/bin/chromium, headless, a fresh profile per launch).
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

/** Size of the sparse file whose preview must read at most 1 MiB. */
export const GIB = 1024 * 1024 * 1024;

/**
 * Write the dataset: version 1 under `v1`, version 2 under `v2` (one file changed, five added, one
 * deleted, one renamed; new bytes stored twice, so some deduplicate inside; a small sparse file, so
 * some are holes), and under `huge` a 1 GiB sparse file (made with truncate: holes, packed in seconds).
 */
export async function writeUiDataset(v1: string, v2: string, huge: string): Promise<void> {
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
}
