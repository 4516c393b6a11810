/**
 * Noticing that an archive changed under its reader: a storage wrapper that reports every
 * `ARCHIVE_CHANGED` (the backends pin the version they first saw: file descriptors keep the old
 * inode, HTTP and S3 reads send If-Match and compare ETags) to a listener, then rethrows it. The
 * reader turns this into `Archive.onChange`, which a long-lived front end (the FUSE mount) uses to
 * reopen; per-request front ends (CLI, gateway) reopen once with `withFreshArchive`.
 */
import { readInto as readIntoAny, type ReadOptions, type Storage, type StorageStat } from '../../storage/types.js';
import { isHexzError, type HexzError } from '../errors.js';

class ChangeWatchingStorage implements Storage {
  constructor(
    private readonly inner: Storage,
    private readonly onChanged: (err: HexzError) => void,
  ) {}

  get url(): string {
    return this.inner.url;
  }
  get backend(): string {
    return this.inner.backend;
  }

  private watch<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => {
      if (isHexzError(err, 'ARCHIVE_CHANGED')) this.onChanged(err);
      throw err;
    });
  }

  stat(opts?: ReadOptions): Promise<StorageStat> {
    return this.watch(this.inner.stat(opts));
  }
  read(offset: number, length: number, opts?: ReadOptions): Promise<Uint8Array> {
    return this.watch(this.inner.read(offset, length, opts));
  }
  readInto(offset: number, dst: Uint8Array, opts?: ReadOptions): Promise<void> {
    return this.watch(readIntoAny(this.inner, offset, dst, opts));
  }
  readTail(length: number, opts?: ReadOptions): Promise<{ bytes: Uint8Array; stat: StorageStat }> {
    return this.watch(this.inner.readTail(length, opts));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** `storage`, with every `ARCHIVE_CHANGED` it throws also reported to `onChanged`. */
export function watchChanges(storage: Storage, onChanged: (err: HexzError) => void): Storage {
  return new ChangeWatchingStorage(storage, onChanged);
}
