/**
 * A generator of hostile archives: every structure hash is valid (so integrity checks pass), and the
 * meaning lies. Each case names the class of lie (docs/format.md, section 10 "Limits and checks") and
 * the error every front end must answer with. Built from one small real archive (test/helpers/craft.ts
 * re-encodes its index) plus frames written by hand where the lie is in a frame's own header
 * (declared raw lengths: allocation bombs).
 *
 * The cases are data, so the same list drives the CLI, the gateway and a FUSE mount
 * (test/reader/hostile-archives.test.ts), and `generateHostileArchives(dir)` writes them out for a
 * hand run: `node -e` over the built test helpers, or the fuzz test's `HEXZ_HOSTILE_KEEP` directory.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ByteWriter } from '@hexz/src/format/bytes.js';
import { FRAME_CHUNK_PAGE, FRAME_FILE_PAGE, FRAME_ROOT } from '@hexz/src/format/constants.js';
import { decodeFrame } from '@hexz/src/format/frame.js';
import { decodeTrailer, encodeTrailer, trailerSize } from '@hexz/src/format/header.js';
import { decodeRoot, encodeRoot, type BaseEntry } from '@hexz/src/format/root.js';
import type { ErrorCode } from '@hexz/src/errors.js';
import { hash } from '@hexz/src/hash.js';
import { pack } from '@hexz/src/packer/pack.js';
import { craftArchive, decodeArchive, entry } from './craft.js';
import { randomBytesSeeded, textBytes, writeTree } from './data.js';

/** What a front end must do with a case. */
export interface HostileCase {
  name: string;
  /** The class of lie: bomb, coverage, overlap, order, symlink, hint, bases. */
  klass: string;
  bytes: Buffer;
  /** The typed refusal (every listed front end must answer with it). */
  code: ErrorCode;
  /**
   * Which reads must refuse: `open` (the archive does not open: info, ls, everything), `list` (listing
   * refuses, hence everything that walks the tree), `content` (reading the named file, extract and
   * verify refuse; ls may list it), `bases` (only what needs the bases refuses — verify —: listing and
   * reading chunks the archive stores itself never contact a base).
   */
  scope: 'open' | 'list' | 'content' | 'bases' | 'extract';
  /** The file whose content the case corrupts (cat / GET / a read on the mount). */
  file?: string;
}

/** The files of the source archive. `big.bin` spans several chunks (chunking 4–16–64 KiB). */
const TREE: Record<string, string | Uint8Array | null> = {
  'a.txt': textBytes(3000, 1),
  'big.bin': randomBytesSeeded(200_000, 2),
  'docs/readme.md': textBytes(5000, 3),
  'docs/z.txt': textBytes(700, 4),
  'zeros.bin': new Uint8Array(100_000),
};

/** The real archive every case is made from (packed once per directory). */
export async function sourceArchive(dir: string): Promise<Buffer> {
  const input = path.join(dir, 'hostile-source');
  const out = path.join(dir, 'hostile-source.hxz');
  try {
    return await fs.readFile(out);
  } catch {
    await writeTree(input, TREE);
    await pack(input, out, { threads: 1, chunking: { algorithm: 1, normalization: 2, min: 4096, avg: 16384, max: 65536, seed: '0000000000000000' } });
    return fs.readFile(out);
  }
}

/**
 * A zstd frame of `total` copies of one byte, made of RLE blocks: 4 bytes per 128 KiB, so 1 GiB
 * declares itself in 32 KiB. Real decoders expand it faithfully, which is the point.
 */
export function zstdRleBomb(total: number, byte = 0): Buffer {
  const BLOCK = 128 * 1024;
  const blocks = Math.ceil(total / BLOCK);
  const out = Buffer.alloc(4 + 2 + 8 + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0xc0; // frame header descriptor: 8-byte content size, no single segment, no checksum
  out[5] = 7 << 3; // window descriptor: 2^(10+7) = 128 KiB
  out.writeBigUInt64LE(BigInt(total), 6);
  let at = 14;
  for (let i = 0; i < blocks; i++) {
    const size = Math.min(BLOCK, total - i * BLOCK);
    const header = (size << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0); // RLE block, last bit
    out.writeUIntLE(header, at, 3);
    out[at + 3] = byte;
    at += 4;
  }
  return out;
}

/** A frame (docs/format.md, section 4) whose header declares `rawLength` and whose body is `body` (zstd). */
function frameOf(kind: number, rawLength: number, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt8(kind, 0);
  head.writeUInt8(1, 1);
  head.writeUInt32LE(rawLength >>> 0, 4);
  return Buffer.concat([head, body]);
}

/**
 * Replace one index structure of `bytes` by `frame` (appended; parents re-hashed): the root itself, the
 * first chunk-index page or the first file-table page.
 */
function withFrame(bytes: Buffer, which: 'root' | 'chunk-page' | 'file-page', frame: Buffer): Buffer {
  const trailer = decodeTrailer(bytes, bytes.byteLength);
  const crypto = { uuid: trailer.uuid };
  const root = decodeRoot(decodeFrame(bytes.subarray(trailer.rootOffset, trailer.rootOffset + trailer.rootLength), FRAME_ROOT, trailer.rootHash, crypto), trailer.rootOffset, trailer.version);
  const keep = bytes.subarray(0, bytes.byteLength - trailerSize(trailer.version));
  const frameOffset = keep.byteLength;
  let rootFrame: Buffer;
  if (which === 'root') {
    rootFrame = frame;
  } else {
    const pages = which === 'chunk-page' ? root.chunkPages : root.filePages;
    pages[0] = { ...pages[0], offset: frameOffset, length: frame.byteLength, hash: hash(frame) };
    rootFrame = Buffer.from(encodeRootFrame(root, trailer.version));
  }
  const rootOffset = which === 'root' ? frameOffset : frameOffset + frame.byteLength;
  const parts = which === 'root' ? [keep, rootFrame] : [keep, frame, rootFrame];
  const t = encodeTrailer({ ...trailer, rootOffset, rootLength: rootFrame.byteLength, rootHash: hash(rootFrame) });
  return Buffer.concat([...parts, t]);
}

function encodeRootFrame(root: ReturnType<typeof decodeRoot>, version: number): Uint8Array {
  const body = encodeRoot(root, version);
  // Stored uncompressed (codec 0): the test controls every byte and nothing depends on the codec.
  const w = new ByteWriter();
  w.u8(FRAME_ROOT);
  w.u8(0);
  w.u16(0);
  w.u32(body.byteLength);
  w.bytes(body);
  return w.finish();
}

/** A base entry whose hint is `hint` (the base itself never exists: readers must not need it). */
function fakeBase(hint: string, i = 0): BaseEntry {
  const uuid = new Uint8Array(16);
  uuid[0] = 0xb0;
  uuid[14] = i >> 8;
  uuid[15] = i & 0xff;
  return { uuid, rootHash: new Uint8Array(32).fill(7), logicalBytes: 0, direct: true, hint };
}

const GiB = 1024 ** 3;

/** Every hostile case, made from the source archive in `dir`. `hintUrl` is a URL the test watches for requests. */
export async function hostileCases(dir: string, hintUrl = 'http://127.0.0.1:9/base.hxz'): Promise<HostileCase[]> {
  const src = await sourceArchive(dir);
  const d0 = decodeArchive(src);
  const fileOf = (p: string) => d0.entries.find((e) => e.path === p)!;
  const big = fileOf('big.bin');
  const cases: HostileCase[] = [];
  const add = (c: Omit<HostileCase, 'bytes'>, bytes: Buffer) => cases.push({ ...c, bytes });

  // 1. Allocation bombs: a few KB stored, 1 GiB declared.
  const bomb = zstdRleBomb(GiB);
  add({ name: 'root-declares-1GiB', klass: 'bomb', code: 'CORRUPT', scope: 'open' }, withFrame(src, 'root', frameOf(FRAME_ROOT, GiB, bomb)));
  add({ name: 'chunk-page-declares-1GiB', klass: 'bomb', code: 'CORRUPT', scope: 'content', file: 'a.txt' }, withFrame(src, 'chunk-page', frameOf(FRAME_CHUNK_PAGE, GiB, bomb)));
  add({ name: 'file-page-declares-1GiB', klass: 'bomb', code: 'CORRUPT', scope: 'list' }, withFrame(src, 'file-page', frameOf(FRAME_FILE_PAGE, GiB, bomb)));
  add(
    { name: 'root-frame-expands-past-declared', klass: 'bomb', code: 'CORRUPT', scope: 'open' },
    withFrame(src, 'root', frameOf(FRAME_ROOT, 4096, zstdRleBomb(64 * 1024 * 1024))),
  );
  // Chunks of big.bin claiming 16 MiB each (the format's ceiling, far above the archive's 64 KiB max):
  // a reader that trusts them allocates 16 MiB per chunk in flight.
  add(
    { name: 'chunk-raw-above-archive-max', klass: 'bomb', code: 'CORRUPT', scope: 'content', file: 'big.bin' },
    craftArchive(
      src,
      (d) => {
        const e = d.entries.find((x) => x.path === 'big.bin')!;
        for (let i = e.firstRef; i < e.firstRef + e.refCount; i++) d.refs[i].raw = 16 * 1024 * 1024;
        resizeFrom(d, e.path);
      },
      { rewriteRefs: true },
    ),
  );

  // 5. A chunk stored past the end of the archive body: corruption (a 5xx), never a client's bad range.
  add(
    { name: 'chunk-stored-past-end', klass: 'coverage', code: 'CORRUPT', scope: 'content', file: 'a.txt' },
    craftArchive(
      src,
      (d) => {
        const e = d.entries.find((x) => x.path === 'a.txt')!;
        d.refs[e.firstRef].offset = src.byteLength + 4096;
      },
      { rewriteRefs: true },
    ),
  );

  // 2. Read paths must check what verify checks. The file-table page is checked as a whole on every
  // use (its files back to back, inside the chunk index), so listing refuses these too.
  add(
    { name: 'entry-past-chunk-index', klass: 'coverage', code: 'CORRUPT', scope: 'list', file: 'big.bin' },
    craftArchive(src, (d) => void (d.entries.find((x) => x.path === 'big.bin')!.logical = 2 ** 40), { version: 1 }),
  );
  add(
    { name: 'entry-absurd-ref-count', klass: 'coverage', code: 'CORRUPT', scope: 'list', file: 'big.bin' },
    craftArchive(src, (d) => void (d.entries.find((x) => x.path === 'big.bin')!.refCount = 2 ** 32 - 1), { version: 1 }),
  );
  add(
    { name: 'entry-first-ref-past-index', klass: 'coverage', code: 'CORRUPT', scope: 'list', file: 'big.bin' },
    craftArchive(src, (d) => void (d.entries.find((x) => x.path === 'big.bin')!.firstRef = 2 ** 40), { version: 1 }),
  );
  add(
    { name: 'entry-size-beyond-refs', klass: 'coverage', code: 'CORRUPT', scope: 'list', file: 'a.txt' },
    craftArchive(src, (d) => void (d.entries.find((x) => x.path === 'a.txt')!.size += 10), { version: 1 }),
  );
  add(
    { name: 'entry-logical-disagrees-with-refs', klass: 'coverage', code: 'CORRUPT', scope: 'list', file: 'a.txt' },
    craftArchive(src, (d) => void (d.entries.find((x) => x.path === 'a.txt')!.logical += 1), { version: 1 }),
  );
  // docs/z.txt claims big.bin's bytes: the same range read under two names.
  add(
    { name: 'entries-overlap', klass: 'overlap', code: 'CORRUPT', scope: 'list', file: 'docs/z.txt' },
    craftArchive(
      src,
      (d) => {
        const z = d.entries.find((x) => x.path === 'docs/z.txt')!;
        Object.assign(z, { logical: big.logical, firstRef: big.firstRef, refCount: 1, size: d.refs[big.firstRef].raw, digest: undefined });
      },
      { version: 1 },
    ),
  );
  add(
    { name: 'path-repeated-across-pages', klass: 'order', code: 'CORRUPT', scope: 'list' },
    craftArchive(
      src,
      (d) => {
        // Two pages: [a.txt, big.bin, docs] and [docs, docs/readme.md, …]: "docs" ends one page and starts the next.
        const i = d.entries.findIndex((x) => x.path === 'docs');
        d.entries.splice(i + 1, 0, { ...d.entries[i] });
      },
      { entriesPerPage: 3, sort: false },
    ),
  );

  // 3. Symlink targets the OS cannot hold: typed, not an internal error.
  add(
    { name: 'symlink-target-nul', klass: 'symlink', code: 'CORRUPT', scope: 'list' },
    craftArchive(src, (d) => void d.entries.push(entry('link', { type: 'symlink', mode: 0o777, target: 'a\0b', size: 3 }))),
  );
  add(
    { name: 'symlink-target-too-long', klass: 'symlink', code: 'CORRUPT', scope: 'list' },
    craftArchive(src, (d) => void d.entries.push(entry('link', { type: 'symlink', mode: 0o777, target: 'x'.repeat(5000), size: 5000 }))),
  );
  add(
    { name: 'symlink-target-empty', klass: 'symlink', code: 'CORRUPT', scope: 'list' },
    craftArchive(src, (d) => void d.entries.push(entry('link', { type: 'symlink', mode: 0o777, target: '', size: 0 }))),
  );

  // A name the format allows (paths up to 4,096 bytes) but no Linux file system holds (NAME_MAX 255):
  // readers list and read it; only extract refuses, typed, before writing it.
  add(
    { name: 'path-component-too-long', klass: 'symlink', code: 'UNSAFE_PATH', scope: 'extract' },
    craftArchive(src, (d) => void d.entries.push(entry(`docs/${'n'.repeat(300)}`, { type: 'symlink', mode: 0o777, target: 'z.txt', size: 5 }))),
  );

  // 4. Bases: a hint the reader must not need to follow to list, and must never follow off its own host.
  const withBases = (bases: BaseEntry[]) => craftArchive(src, (d) => void (d.root.bases = bases));
  add({ name: 'hint-encoded-slash', klass: 'hint', code: 'BASE_MISSING', scope: 'bases' }, withBases([fakeBase('..%2F..%2Fetc%2Fbase.hxz')]));
  add({ name: 'hint-other-host', klass: 'hint', code: 'BASE_MISSING', scope: 'bases' }, withBases([fakeBase(hintUrl)]));
  add({ name: 'hint-absolute-path-elsewhere', klass: 'hint', code: 'BASE_MISSING', scope: 'bases' }, withBases([fakeBase('/nonexistent/hexz/base.hxz')]));
  add(
    { name: 'five-thousand-bases', klass: 'bases', code: 'BASE_MISSING', scope: 'bases' },
    withBases(Array.from({ length: 5000 }, (_, i) => fakeBase(`base-${i}.hxz`, i))),
  );
  return cases;
}

/** After chunk raw lengths of `p` changed, make its entry (and everything after it) agree, so only the raw lengths lie. */
function resizeFrom(d: ReturnType<typeof decodeArchive>, p: string): void {
  let logical = 0;
  const at = new Map<number, number>();
  d.refs.forEach((r, i) => {
    at.set(i, logical);
    logical += r.raw;
  });
  for (const e of d.entries) {
    if (e.type !== 'file' || e.size === 0) continue;
    e.logical = at.get(e.firstRef)!;
    let size = 0;
    for (let i = e.firstRef; i < e.firstRef + e.refCount; i++) size += d.refs[i].raw;
    if (e.path === p) e.digest = undefined;
    e.size = size;
  }
  d.root.logicalSize = logical;
}

/** Write every case to `dir/<name>.hxz` (for a hand run of the front ends). */
export async function generateHostileArchives(dir: string, hintUrl?: string): Promise<HostileCase[]> {
  const cases = await hostileCases(dir, hintUrl);
  await fs.mkdir(dir, { recursive: true });
  for (const c of cases) await fs.writeFile(path.join(dir, `${c.name}.hxz`), c.bytes);
  return cases;
}
