import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKING } from '@hexz/src/chunker/fastcdc.js';
import { ByteWriter } from '@hexz/src/format/bytes.js';
import { ChunkIndexPage, refsPerPage, writeChunkRef, ZERO_ID } from '@hexz/src/format/chunk-index.js';
import { CHUNK_REF_SIZE, FRAME_FILE_PAGE, FRAME_ROOT, KDF_NONE, OPEN_TAIL_BYTES, TARGET_PAGES_PER_TABLE } from '@hexz/src/format/constants.js';
import { comparePaths, decodeFilePage, encodeFilePage, normalizePath, sortKey, type FileEntry } from '@hexz/src/format/file-table.js';
import { decodeFrame, encodeFrame } from '@hexz/src/format/frame.js';
import { decodeHeader, decodeTrailer, encodeHeader, encodeTrailer, NO_KDF } from '@hexz/src/format/header.js';
import { decodeRoot, encodeRoot, type Root } from '@hexz/src/format/root.js';
import { deriveArchiveKeys } from '@hexz/src/crypto/keys.js';
import { hash } from '@hexz/src/hash.js';
import { isHexzError } from '@hexz/src/errors.js';

const uuid = Uint8Array.from(randomBytes(16));

function expectCode(fn: () => unknown, code: string, msg?: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isHexzError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  if (msg) expect((err as Error).message).toMatch(msg);
}

describe('header and trailer', () => {
  const trailer = { version: 1, flags: 0, uuid, rootOffset: 1000, rootLength: 200, rootHash: hash(Buffer.from('r')), kdf: NO_KDF, keyCheck: new Uint8Array(16) };
  const size = 1000 + 200 + 128;

  it('round-trip', () => {
    expect(decodeHeader(encodeHeader({ version: 1, flags: 1, uuid }))).toEqual({ version: 1, flags: 1, uuid });
    const t = decodeTrailer(encodeTrailer(trailer), size);
    expect(t).toMatchObject({ rootOffset: 1000, rootLength: 200 });
    expect(Buffer.from(t.uuid).equals(Buffer.from(uuid))).toBe(true);
  });

  it('have fixed sizes', () => {
    expect(encodeHeader({ version: 1, flags: 0, uuid }).length).toBe(64);
    expect(encodeTrailer(trailer).length).toBe(128);
  });

  it('reject a flipped byte anywhere (checksum)', () => {
    const enc = encodeTrailer(trailer);
    for (let i = 12; i < 128; i++) {
      const b = Buffer.from(enc);
      b[i] ^= 1;
      expect(() => decodeTrailer(b, size)).toThrow();
    }
  });

  it('refuse other versions, naming both', () => {
    const b = Buffer.from(encodeTrailer({ ...trailer, version: 7 }));
    expectCode(() => decodeTrailer(b, size), 'UNSUPPORTED_VERSION', /version 7.*reads versions 1 and 2/);
  });

  it('require the root to end where the trailer starts', () => {
    expectCode(() => decodeTrailer(encodeTrailer(trailer), size + 1), 'CORRUPT', /root/);
  });
});

describe('file table', () => {
  const entry = (path: string, extra: Partial<FileEntry> = {}): FileEntry => ({ path, type: 'file', mode: 0o644, mtimeNs: 1_700_000_000_123_456_789n, size: 0, logical: 0, firstRef: 0, refCount: 0, ...extra });

  it('sorts children of a directory together, by parent then name', () => {
    const paths = ['a/b/c', 'a.txt', 'a/z', 'b', 'a', 'a/b', 'a0', 'é'];
    expect([...paths].sort(comparePaths)).toEqual(['a', 'a.txt', 'a0', 'b', 'é', 'a/b', 'a/z', 'a/b/c']);
  });

  it('round-trips a page with front coding, unicode, symlinks and big values', () => {
    const entries = [
      entry('dir', { type: 'directory', mode: 0o755 }),
      entry('file', { size: 2 ** 40, logical: 2 ** 41, firstRef: 2 ** 33, refCount: 4_000_000 }),
      entry('link', { type: 'symlink', mode: 0o777, target: '../ü/目标', size: Buffer.byteLength('../ü/目标') }),
      entry('dir/ünïcödé-文件'),
      entry('dir/ünïcödé-文件2'),
    ].sort((a, b) => comparePaths(a.path, b.path));
    expect(decodeFilePage(encodeFilePage(entries), entries.length)).toEqual(entries);
  });

  it('rejects entries out of order, unsafe paths and inconsistent fields', () => {
    expectCode(() => decodeFilePage(encodeFilePage([entry('b'), entry('a')]), 2), 'CORRUPT', /order/);
    expectCode(() => decodeFilePage(encodeFilePage([entry('../etc/passwd')]), 1), 'CORRUPT', /unsafe/);
    expectCode(() => decodeFilePage(encodeFilePage([entry('x', { size: 10 })]), 1), 'CORRUPT', /size and chunk count/);
    expectCode(() => decodeFilePage(encodeFilePage([entry('x')]), 2), 'CORRUPT');
  });

  it.each(['../a', 'a/../b', 'a//b', './a', 'a/\0b'])('normalizePath refuses %j', (p) => {
    expectCode(() => normalizePath(p), 'UNSAFE_PATH');
  });

  it('normalizePath accepts slashes around and the root', () => {
    expect(normalizePath('/a/b/')).toBe('a/b');
    expect(normalizePath('/')).toBe('');
    expect(sortKey('a/b').toString('latin1')).toBe('a\0b');
  });
});

describe('chunk-index pages', () => {
  const page = (refs: Array<{ raw: number; hole?: boolean; owner?: number }>) => {
    const w = new ByteWriter();
    let logical = 100;
    for (const r of refs) {
      writeChunkRef(w, { id: r.hole ? ZERO_ID : hash(Buffer.from(String(logical))), logical, offset: r.hole ? 0 : 64, stored: r.hole ? 0 : 10, raw: r.raw, owner: r.owner ?? 0, codec: 0, hole: !!r.hole });
      logical += r.raw;
    }
    return w.finish();
  };

  it('finds the reference containing an offset', () => {
    const p = new ChunkIndexPage(page([{ raw: 10 }, { raw: 20, hole: true }, { raw: 30 }]), 100, 3, 0);
    expect([100, 109, 110, 129, 130, 159].map((x) => p.find(x))).toEqual([0, 0, 1, 1, 2, 2]);
    expect(p.endLogical).toBe(160);
    expect(p.ref(1)).toMatchObject({ hole: true, raw: 20, logical: 110 });
  });

  it('rejects gaps, bad owners and wrong counts', () => {
    expectCode(() => new ChunkIndexPage(page([{ raw: 10 }]), 99, 1, 0), 'CORRUPT', /logical offset/);
    expectCode(() => new ChunkIndexPage(page([{ raw: 10, owner: 2 }]), 100, 1, 1), 'CORRUPT', /owner/);
    expectCode(() => new ChunkIndexPage(page([{ raw: 10 }]), 100, 2, 0), 'CORRUPT');
  });

  it('sizes pages for about 4,096 per table', () => {
    expect(refsPerPage(10)).toBe(1024);
    expect(refsPerPage(16_000_000)).toBe(Math.ceil(16_000_000 / TARGET_PAGES_PER_TABLE));
    expect(refsPerPage(1e12)).toBe(65536);
  });
});

describe('frames', () => {
  const body = Buffer.from('frame body '.repeat(100));

  it('round-trip plain and encrypted, and detect tampering', () => {
    const keys = deriveArchiveKeys(randomBytes(32));
    for (const crypto of [{ uuid }, { uuid, keys }]) {
      const stored = encodeFrame(FRAME_ROOT, body, crypto);
      expect(Buffer.from(decodeFrame(stored, FRAME_ROOT, hash(stored), crypto)).equals(body)).toBe(true);
      expectCode(() => decodeFrame(stored, FRAME_FILE_PAGE, hash(stored), crypto), crypto.keys ? 'AUTH_FAILED' : 'CORRUPT');
      const bad = Buffer.from(stored);
      bad[bad.length - 20] ^= 1;
      expectCode(() => decodeFrame(bad, FRAME_ROOT, hash(stored), crypto), 'CORRUPT', /hash mismatch/);
      expectCode(() => decodeFrame(bad, FRAME_ROOT, hash(bad), crypto), crypto.keys ? 'AUTH_FAILED' : 'CORRUPT');
    }
  });

  it('do not reveal plaintext when encrypted', () => {
    const keys = deriveArchiveKeys(randomBytes(32));
    const stored = Buffer.from(encodeFrame(FRAME_ROOT, Buffer.from('secret-file-name.txt'.repeat(3)), { uuid, keys }, 0));
    expect(stored.includes(Buffer.from('secret'))).toBe(false);
  });
});

function syntheticRoot(chunks: number, files: number): Root {
  const chunkPageCount = Math.ceil(chunks / refsPerPage(chunks));
  const perFilePage = Math.ceil(files / TARGET_PAGES_PER_TABLE);
  const filePageCount = Math.ceil(files / perFilePage);
  return {
    logicalSize: chunks * 65536,
    fileCount: files,
    refCount: chunks,
    storedChunkCount: chunks,
    storedChunkBytes: chunks * 40000,
    selfLogicalBytes: chunks * 65536,
    holeBytes: 0,
    chunking: { ...DEFAULT_CHUNKING },
    defaultCodec: 1,
    defaultLevel: 3,
    bases: [],
    metadata: { creator: 'test', created: new Date(0).toISOString(), source: { name: 'big', type: 'directory' } },
    chunkPages: Array.from({ length: chunkPageCount }, (_, i) => ({
      firstLogical: i * refsPerPage(chunks) * 65536,
      offset: 1e12 + i * 300_000,
      length: refsPerPage(chunks) * CHUNK_REF_SIZE,
      count: i === chunkPageCount - 1 ? chunks - i * refsPerPage(chunks) : refsPerPage(chunks),
      hash: randomBytes(32),
    })),
    filePages: Array.from({ length: filePageCount }, (_, i) => ({
      // Realistic paths: dataset/shard-NNNN/part-NNNNNN.parquet, in table order.
      firstPath: `dataset/shard-${String(Math.floor(i / 64)).padStart(4, '0')}/part-${String(i * perFilePage).padStart(8, '0')}.parquet`,
      offset: 1.1e12 + i * 200_000,
      length: 200_000,
      count: i === filePageCount - 1 ? files - i * perFilePage : perFilePage,
      hash: randomBytes(32),
    })),
  };
}

describe('root', () => {
  it('round-trips', () => {
    const root = syntheticRoot(5000, 3000);
    root.bases = [{ uuid, rootHash: randomBytes(32), logicalBytes: 123, direct: true, hint: '../v1.hxz' }];
    const decoded = decodeRoot(encodeRoot(root), 2e12);
    expect(decoded.bases[0].hint).toBe('../v1.hxz');
    expect(decoded.chunkPages.length).toBe(root.chunkPages.length);
    expect(decoded.filePages[3].firstPath).toBe(root.filePages[3].firstPath);
    expect(decoded.metadata).toEqual(root.metadata);
  });

  it('of a 1 TB archive (16 M chunks, 10 M files) stays well under 1 MiB', () => {
    const root = syntheticRoot(16_000_000, 10_000_000);
    const body = encodeRoot(root);
    const stored = encodeFrame(FRAME_ROOT, body, { uuid });
    // The reader fetches the 64 KiB tail, then the root: both reads together stay under 1 MiB.
    expect(stored.byteLength + OPEN_TAIL_BYTES).toBeLessThan(1024 * 1024);
    expect(root.chunkPages.length).toBeLessThanOrEqual(TARGET_PAGES_PER_TABLE);
    // And one chunk-index page (the only page a random read needs) stays small too.
    expect(root.chunkPages[0].length).toBeLessThanOrEqual(256 * 1024);
    expect(decodeRoot(body, 2e12).refCount).toBe(16_000_000);
    expect(KDF_NONE).toBe(0);
  });
});
