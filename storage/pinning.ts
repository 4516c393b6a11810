/**
 * Version pinning of a remote object (HTTP, S3): the first version seen is the one an open storage
 * reads, and a reply from any other version is `ARCHIVE_CHANGED`, so a reader never mixes bytes of two
 * versions (docs/operations.md, "What every backend guarantees"). Servers are not trusted to enforce
 * `If-Match` (many CDNs and some S3-compatible stores ignore it), so every reply is compared here.
 */
import { HexzError } from '../src/errors.js';
import type { StorageStat } from './types.js';

/** What a reply says about the object's version; any field may be missing. */
export interface Version {
  etag?: string;
  size?: number;
  lastModified?: Date;
}

/** The pinned version of one object. */
export class VersionPin {
  private pinned?: Version;

  constructor(
    private readonly url: string,
    private readonly backend: string,
  ) {}

  /** The pinned ETag, to send as `If-Match`. */
  get etag(): string | undefined {
    return this.pinned?.etag;
  }

  /** The pinned size, once a reply told it. */
  get size(): number | undefined {
    return this.pinned?.size;
  }

  /** The pinned version as a stat, once the size is known. */
  get stat(): StorageStat | undefined {
    const p = this.pinned;
    return p?.size === undefined ? undefined : { size: p.size, etag: p.etag, lastModified: p.lastModified };
  }

  /**
   * Record the first version seen, and refuse any other one afterwards: a different ETag, a different
   * size, or (only when no ETag was pinned) a different Last-Modified. A first reply without validators
   * (a 416, a bare proxy) pins whatever later replies add.
   */
  observe(v: Version): void {
    const p = this.pinned;
    if (!p) {
      this.pinned = { ...v };
      return;
    }
    const changed =
      (p.etag !== undefined && v.etag !== undefined && v.etag !== p.etag) ||
      (p.size !== undefined && v.size !== undefined && v.size !== p.size) ||
      (p.etag === undefined && p.lastModified !== undefined && v.lastModified !== undefined && v.lastModified.getTime() !== p.lastModified.getTime());
    if (changed) {
      throw new HexzError('ARCHIVE_CHANGED', `${this.url} changed while it was being read (ETag ${p.etag ?? '-'} → ${v.etag ?? '-'}, size ${p.size ?? '?'} → ${v.size ?? '?'})`, {
        url: this.url,
        backend: this.backend,
        expected: p.etag,
        actual: v.etag,
      });
    }
    p.size ??= v.size;
    p.etag ??= v.etag;
    p.lastModified ??= v.lastModified;
  }
}

/** An HTTP date header as a Date; undefined when absent or not a date. */
export function httpDate(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
