/**
 * What opening an archive produced (src/reader/open.ts): the storage it reads from, the trailer, the
 * root, the tail kept from the opening read, the keys and the bases. The reader's parts (index pages,
 * paths, content) share this one record; none of them opens or closes anything.
 */
import type { BlockCache } from '../../cache/block-cache.js';
import type { Storage, StorageStat } from '../../storage/types.js';
import type { ArchiveKeys } from '../crypto/keys.js';
import type { ErrorContext } from '../errors.js';
import type { Trailer } from '../format/header.js';
import type { Root } from '../format/root.js';
import type { ArchiveBases } from './bases.js';
import type { Tail } from './open.js';

export interface OpenedArchive {
  /** Canonical URL of the archive (error context, base resolution). */
  readonly url: string;
  /** The archive object, wrapped for read coalescing. */
  readonly storage: Storage;
  /** Size and etag of the archive object as found when it was opened. */
  readonly storageStat: StorageStat;
  readonly trailer: Trailer;
  readonly root: Root;
  /** The last bytes of the archive, read when opening: page reads inside them cost no request. */
  readonly tail: Tail;
  readonly cache: BlockCache;
  readonly keys: ArchiveKeys | undefined;
  /** The bases, opened on first use (./bases.ts). */
  readonly bases: ArchiveBases;
  /**
   * The namespace of this archive's chunk ids in the cache: 1 for plain ids; for keyed ids (encrypted
   * archives) a value derived from the id key, so archives under different keys never share entries.
   */
  readonly chunkTag: number;
  /** Decode threads for bulk reads (0: decode on the reading thread). */
  readonly decodeThreads: number;
  /** Error context naming this archive, plus `extra`. */
  ctx(extra?: ErrorContext): ErrorContext;
}
