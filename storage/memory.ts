/**
 * In-memory objects (`memory://name`), for tests and for embedding archives built on the fly. Objects
 * live in a process-wide map; replacing one gives it a new etag, like a real store would.
 */
import { HexzError, throwIfAborted } from '../src/errors.js';
import { checkRange, type ReadOptions, type Storage, type StorageObject, type StorageRoot, type StorageStat, type StorageWriter } from './types.js';

interface MemoryObject {
  bytes: Uint8Array;
  etag: string;
  lastModified: Date;
}

const objects = new Map<string, MemoryObject>();
let version = 0;

function keyOf(url: string): string {
  return url.replace(/^memory:\/\//, '');
}

/** Store bytes under `memory://key` (replacing any previous version). */
export function putMemoryObject(url: string, bytes: Uint8Array): void {
  objects.set(keyOf(url), { bytes, etag: `"m${++version}"`, lastModified: new Date() });
}

/** Remove `memory://key`. */
export function deleteMemoryObject(url: string): void {
  objects.delete(keyOf(url));
}

/** The current bytes of `memory://key`, if any. */
export function getMemoryObject(url: string): Uint8Array | undefined {
  return objects.get(keyOf(url))?.bytes;
}

class MemoryStorage implements Storage {
  readonly backend = 'memory';
  private readonly pinned: MemoryObject;

  constructor(readonly url: string) {
    const obj = objects.get(keyOf(url));
    if (!obj) throw new HexzError('ARCHIVE_NOT_FOUND', `no object ${url}`, { url, backend: 'memory' });
    this.pinned = obj;
  }

  private current(): MemoryObject {
    if (objects.get(keyOf(this.url)) !== this.pinned) {
      throw new HexzError('ARCHIVE_CHANGED', `${this.url} was replaced while open`, { url: this.url, backend: 'memory' });
    }
    return this.pinned;
  }

  async stat(): Promise<StorageStat> {
    const o = this.pinned;
    return { size: o.bytes.byteLength, etag: o.etag, lastModified: o.lastModified };
  }

  async read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    throwIfAborted(opts?.signal, { url: this.url });
    const o = this.current();
    checkRange(offset, length, o.bytes.byteLength, this.url);
    return o.bytes.subarray(offset, offset + length);
  }

  async readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    const stat = await this.stat();
    const n = Math.min(length, stat.size);
    return { bytes: await this.read(stat.size - n, n, opts), stat };
  }

  async close(): Promise<void> {}
}

export async function openMemoryStorage(url: string): Promise<Storage> {
  return new MemoryStorage(url);
}

class MemoryWriter implements StorageWriter {
  readonly backend = 'memory';
  bytesWritten = 0;
  private parts: Uint8Array[] = [];

  constructor(readonly url: string) {}

  async write(bytes: Uint8Array): Promise<void> {
    this.parts.push(Uint8Array.from(bytes)); // copy: the caller may reuse its buffer
    this.bytesWritten += bytes.byteLength;
  }

  async commit(): Promise<StorageStat> {
    putMemoryObject(this.url, Buffer.concat(this.parts));
    this.parts = [];
    const o = objects.get(keyOf(this.url))!;
    return { size: o.bytes.byteLength, etag: o.etag, lastModified: o.lastModified };
  }

  async abort(): Promise<void> {
    this.parts = [];
  }
}

export async function createMemoryWriter(url: string): Promise<StorageWriter> {
  return new MemoryWriter(url);
}

class MemoryRoot implements StorageRoot {
  readonly backend = 'memory';
  constructor(readonly url: string) {}

  private get prefix(): string {
    return keyOf(this.url).replace(/\/?$/, '/').replace(/^\/$/, '');
  }

  urlOf(key: string): string {
    return `memory://${this.prefix}${key}`;
  }

  async check(): Promise<void> {}

  async list(opts: { prefix?: string; cursor?: string; limit?: number } = {}): Promise<{ objects: StorageObject[]; cursor?: string }> {
    const base = this.prefix;
    const all = [...objects.entries()]
      .filter(([k]) => k.startsWith(base + (opts.prefix ?? '')))
      .map(([k, o]) => ({ key: k.slice(base.length), size: o.bytes.byteLength, etag: o.etag, lastModified: o.lastModified }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const after = opts.cursor ? all.filter((o) => o.key > opts.cursor!) : all;
    const limit = opts.limit ?? 1000;
    const page = after.slice(0, limit);
    return { objects: page, cursor: after.length > limit ? page[page.length - 1].key : undefined };
  }
}

export async function openMemoryRoot(url: string): Promise<StorageRoot> {
  return new MemoryRoot(url);
}
