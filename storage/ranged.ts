/**
 * The Storage behaviour of objects read with range requests (HTTP, S3), written once: argument checks,
 * version pinning of every reply, exact slices that trust Content-Range, and `readTail` as one suffix
 * request that also tells the size, falling back to stat + range where the server cannot do that. A
 * backend supplies only its two requests (`fetchRange`, `fetchStat`) and their error mapping.
 */
import { HexzError } from '../src/errors.js';
import { sliceRange, sliceTail, type Span } from './content-range.js';
import { VersionPin, type Version } from './pinning.js';
import { checkRange, type ReadOptions, type Storage, type StorageStat } from './types.js';

/** What one range request gave, as the backend understood the reply. */
export type RangeReply =
  /** Bytes and where they lie (a 206, or a 200 with the whole object: start 0). */
  | { kind: 'bytes'; span: Span; version: Version }
  /** The range is not satisfiable (416); `total` when the server said the size. */
  | { kind: 'unsatisfiable'; total?: number; version: Version }
  /** Suffix requests only: refused, or answered in a way not to rely on; stat + an explicit range instead. */
  | { kind: 'unusable' };

export abstract class RangedStorage implements Storage {
  /** The first version seen; every reply is checked against it. */
  protected readonly pin: VersionPin;

  constructor(
    readonly url: string,
    readonly backend: string,
  ) {
    this.pin = new VersionPin(url, backend);
  }

  /**
   * One range request, retried by the backend as it sees fit. `range` is `bytes=A-B`, or a suffix
   * `bytes=-N` when `suffix` is set (then `unusable` is a valid answer). Typed errors for everything else.
   */
  protected abstract fetchRange(range: string, suffix: boolean, signal: AbortSignal | undefined): Promise<RangeReply>;

  /** The object's size and version without reading it (HEAD, HeadObject). */
  protected abstract fetchStat(signal: AbortSignal | undefined): Promise<Version & { size: number }>;

  async stat(opts?: ReadOptions): Promise<StorageStat> {
    const known = this.pin.stat;
    if (known) return known;
    this.pin.observe(await this.fetchStat(opts?.signal));
    return this.pin.stat!;
  }

  async read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) checkRange(offset, length, 0, this.url);
    const known = this.pin.size;
    if (known !== undefined) checkRange(offset, length, known, this.url);
    if (length === 0) {
      // Nothing to fetch, but a zero-length read past the end is still out of range.
      if (known === undefined) checkRange(offset, 0, (await this.stat(opts)).size, this.url);
      return new Uint8Array(0);
    }
    const last = offset + length - 1;
    const ctx = { url: this.url, backend: this.backend, offset, length };
    const reply = await this.fetchRange(`bytes=${offset}-${last}`, false, opts?.signal);
    if (reply.kind === 'unsatisfiable') {
      this.pin.observe({ ...reply.version, size: reply.total });
      checkRange(offset, length, reply.total ?? (await this.stat(opts)).size, this.url);
      throw new HexzError('STORAGE_IO', `${this.url} refused range ${offset}-${last} although it lies inside the object`, { ...ctx, status: 416 });
    }
    if (reply.kind !== 'bytes') throw new HexzError('STORAGE_IO', `${this.url}: no usable answer for range ${offset}-${last}`, ctx);
    const { span } = reply;
    this.pin.observe({ ...reply.version, size: span.total });
    checkRange(offset, length, span.total, this.url); // a range clipped at the end of the object
    const bytes = sliceRange(span, offset, length);
    if (!bytes) {
      throw new HexzError('STORAGE_IO', `${this.url} answered bytes ${span.start}-${span.start + span.bytes.byteLength - 1} (${span.bytes.byteLength} bytes) for range ${offset}-${last}`, ctx);
    }
    return bytes;
  }

  async readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    if (!Number.isInteger(length) || length < 0) checkRange(0, length, 0, this.url);
    if (this.pin.size === undefined && length > 0) {
      // One suffix request gives both the bytes and, via Content-Range, the size.
      const reply = await this.fetchRange(`bytes=-${length}`, true, opts?.signal);
      if (reply.kind === 'bytes') {
        this.pin.observe({ ...reply.version, size: reply.span.total });
        // Slice when the bytes cover the tail (whatever was asked), else ask again explicitly below.
        const tail = sliceTail(reply.span, length);
        if (tail) return { bytes: tail, stat: this.pin.stat! };
      } else if (reply.kind === 'unsatisfiable' && reply.total !== undefined) {
        this.pin.observe({ ...reply.version, size: reply.total }); // an empty object, or suffix ranges refused: the size is known
      }
    }
    const stat = await this.stat(opts);
    const n = Math.min(length, stat.size);
    return { bytes: await this.read(stat.size - n, n, opts), stat };
  }

  async close(): Promise<void> {
    // Connections belong to a pool shared by the whole process; nothing to release per object.
  }
}
