/**
 * ByteWriter must grow: every structure starts with a guessed capacity (1 KiB, 4 KiB, 64 KiB) and real
 * archives outgrow it (chunk-index pages of more than 1,024 references, roots with large metadata or
 * many long first paths, file-table pages beyond 64 KiB).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKING } from '@hexz/src/chunker/fastcdc.js';
import { ByteReader, ByteWriter } from '@hexz/src/format/bytes.js';
import { ChunkIndexPage, writeChunkRef } from '@hexz/src/format/chunk-index.js';
import { decodeFilePage, encodeFilePage, type FileEntry } from '@hexz/src/format/file-table.js';
import { decodeRoot, encodeRoot } from '@hexz/src/format/root.js';
import { hash } from '@hexz/src/hash.js';

describe('ByteWriter', () => {
  it('grows across its initial capacity with every write method, keeping what was written', () => {
    // Each method in turn is the one that crosses the boundary of a tiny buffer.
    const methods: Array<[string, (w: ByteWriter, i: number) => void, (r: ByteReader, i: number) => void]> = [
      ['u8', (w, i) => w.u8(i & 0xff), (r, i) => expect(r.u8()).toBe(i & 0xff)],
      ['i8', (w, i) => w.i8((i % 200) - 100), (r, i) => expect(r.i8()).toBe((i % 200) - 100)],
      ['u16', (w, i) => w.u16(i * 7 + 1), (r, i) => expect(r.u16()).toBe(i * 7 + 1)],
      ['u32', (w, i) => w.u32(i * 100_003), (r, i) => expect(r.u32()).toBe(i * 100_003)],
      ['u64', (w, i) => w.u64(i * 2 ** 40 + 5), (r, i) => expect(r.u64()).toBe(i * 2 ** 40 + 5)],
      ['i64', (w, i) => w.i64(BigInt(i) * -1_000_000_007n), (r, i) => expect(r.i64()).toBe(BigInt(i) * -1_000_000_007n)],
      ['bytes', (w, i) => w.bytes(Uint8Array.of(i & 0xff, 1, 2, 3, 4, 5, 6)), (r, i) => expect([...r.bytesView(7)]).toEqual([i & 0xff, 1, 2, 3, 4, 5, 6])],
      ['zeros', (w) => w.zeros(13), (r) => r.reserved(13)],
    ];
    for (const [name, write, read] of methods) {
      for (const initial of [1, 3, 8, 16]) {
        const w = new ByteWriter(initial);
        for (let i = 0; i < 500; i++) write(w, i);
        const r = new ByteReader(w.finish(), name);
        for (let i = 0; i < 500; i++) read(r, i);
        r.end();
      }
    }
    // Mixed writes whose sizes straddle every doubling.
    const w = new ByteWriter(2);
    const big = randomBytes(5000);
    w.u8(1).bytes(big).u64(2 ** 50).zeros(70_000).u16(0xbeef);
    const r = new ByteReader(w.finish(), 'mixed');
    expect(r.u8()).toBe(1);
    expect(Buffer.from(r.bytesView(5000)).equals(big)).toBe(true);
    expect(r.u64()).toBe(2 ** 50);
    r.reserved(70_000);
    expect(r.u16()).toBe(0xbeef);
    r.end();
  });

  it('encodes chunk-index pages of more than 1,024 references', () => {
    const w = new ByteWriter(64 * 1024);
    for (let i = 0; i < 3000; i++) writeChunkRef(w, { id: hash(Buffer.from(String(i))), logical: i * 10, offset: 64 + i * 5, stored: 5, raw: 10, owner: 0, codec: 0, hole: false });
    const page = new ChunkIndexPage(w.finish(), 0, 3000, 0);
    expect(page.endLogical).toBe(30_000);
    expect(page.ref(2999).offset).toBe(64 + 2999 * 5);
  });

  it('encodes file-table pages beyond 64 KiB and roots with large metadata and long first paths', () => {
    const entries: FileEntry[] = Array.from({ length: 400 }, (_, i) => ({
      path: `${'d'.repeat(200)}/${String(i).padStart(4, '0')}-${'x'.repeat(600)}`,
      type: 'file',
      mode: 0o644,
      mtimeNs: 1n,
      size: 0,
      logical: 0,
      firstRef: 0,
      refCount: 0,
    }));
    // Front coding shares the directory prefix; the rest still makes ~250 KiB.
    const body = encodeFilePage(entries);
    expect(body.byteLength).toBeGreaterThan(200 * 1024);
    expect(decodeFilePage(body, 400).map((e) => e.path)).toEqual(entries.map((e) => e.path));

    const root = {
      logicalSize: 0,
      fileCount: 400,
      refCount: 0,
      storedChunkCount: 0,
      storedChunkBytes: 0,
      selfLogicalBytes: 0,
      holeBytes: 0,
      chunking: { ...DEFAULT_CHUNKING },
      defaultCodec: 1,
      defaultLevel: 3,
      bases: [],
      metadata: { creator: 'test', user: { big: 'v'.repeat(100_000) } },
      chunkPages: [],
      filePages: entries.map((e, i) => ({ firstPath: e.path, offset: 64 + i * 100, length: 100, count: 1, hash: hash(Buffer.from(e.path)) })),
    };
    const decoded = decodeRoot(encodeRoot(root), 1e9);
    expect(decoded.metadata.user?.big.length).toBe(100_000);
    expect(decoded.filePages.map((p) => p.firstPath)).toEqual(entries.map((e) => e.path));
  });

  it('refuses to encode metadata readers would reject (over 1 MiB)', () => {
    const root = {
      logicalSize: 0, fileCount: 0, refCount: 0, storedChunkCount: 0, storedChunkBytes: 0, selfLogicalBytes: 0, holeBytes: 0,
      chunking: { ...DEFAULT_CHUNKING }, defaultCodec: 1, defaultLevel: 3, bases: [], chunkPages: [], filePages: [],
      metadata: { user: { big: 'v'.repeat(1 << 20) } },
    };
    expect(() => encodeRoot(root)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
