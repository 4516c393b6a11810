/**
 * `flatten`: a self-contained archive with the same content as a thin one and no bases. Chunks are
 * copied as stored (no recompression; sealed chunks stay valid because their associated data is the
 * chunk id, not the archive), each verified on the way, once per distinct chunk.
 */
import { randomUUID } from 'node:crypto';
import { createWriter, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { StorageWriter } from '../../storage/types.js';
import type { SigningKey } from '../crypto/signatures.js';
import { throwIfAborted } from '../errors.js';
import { refsPerPage, type ChunkRef } from '../format/chunk-index.js';
import type { FileEntry } from '../format/file-table.js';
import { formatUuid, parseUuid } from '../format/header.js';
import type { Archive } from '../reader/archive.js';
import { VERSION } from '../version.js';
import { ArchiveWriter } from './archive-writer.js';
import { refuseOutputAt } from './chain-output.js';

export interface FlattenOptions {
  overwrite?: boolean;
  storage?: StorageOptions;
  signal?: AbortSignal;
  uuid?: string;
  created?: Date;
  /**
   * Sign the flattened archive with this key. It is a new archive (new UUID, new root), so the
   * delta's signature cannot carry over: unsigned unless a key is given.
   */
  signKey?: SigningKey;
  onProgress?: (bytes: number, total: number) => void;
}

export interface FlattenSummary {
  output: string;
  uuid: string;
  from: string;
  files: number;
  logicalBytes: number;
  chunks: number;
  storedBytes: number;
  archiveBytes: number;
  /** Key id (hex) of the key that signed the flattened archive, when signed. */
  signerKeyId?: string;
  seconds: number;
}

/** Bytes of chunk reads kept in flight while copying (coalesced into few large requests). */
const COPY_WINDOW = 16 * 1024 * 1024;

export async function flattenArchive(archive: Archive, output: string, opts: FlattenOptions = {}): Promise<FlattenSummary> {
  const t0 = performance.now();
  const outUrl = toStorageUrl(output);
  const uuid = parseUuid(opts.uuid ?? randomUUID());
  const root = archive.root;
  // Replacing an archive of the delta's chain (even with --force) would break every other delta that
  // names it: its UUID changes. Replacing the delta itself is allowed (same content, read before rename).
  for (const b of await archive.findBases()) {
    await refuseOutputAt(outUrl, b.url, `a base of ${archive.url}`, 'flattening would replace an archive other versions depend on');
  }
  const sink: StorageWriter = await createWriter(outUrl, { overwrite: opts.overwrite, signal: opts.signal, ...opts.storage });
  try {
    const writer = new ArchiveWriter(sink, { uuid, keys: archive.keys, kdf: archive.trailer.kdf, refsPerPage: refsPerPage(root.refCount), bases: [], signKey: opts.signKey });
    const copied = new Map<string, { offset: number; stored: number; codec: number }>();
    const codecs: Record<string, { chunks: number; rawBytes: number; storedBytes: number }> = {};
    const entries: FileEntry[] = [];
    let uniqueRawBytes = 0;
    for await (const src of archive.walk()) {
      throwIfAborted(opts.signal);
      const entry: FileEntry = { ...src, logical: 0, firstRef: 0, refCount: 0 };
      entries.push(entry);
      if (src.type !== 'file') continue;
      writer.beginFile(entry);
      // Keep a window of reads in flight, then write in order.
      const queue: Array<{ ref: ChunkRef; data?: Promise<{ stored: Uint8Array }> }> = [];
      let queued = 0;
      const refs = archive.fileRefs(src);
      let done = false;
      for (;;) {
        while (!done && queued < COPY_WINDOW) {
          const n = await refs.next();
          if (n.done) {
            done = true;
            break;
          }
          const ref = n.value;
          const k = Buffer.from(ref.id).toString('latin1');
          const first = !ref.hole && !copied.has(k) && !queue.some((q) => q.data && Buffer.compare(q.ref.id, ref.id) === 0);
          const data = first ? archive.fetchEncoded(ref) : undefined;
          data?.catch(() => {});
          queue.push({ ref, data });
          if (data) queued += ref.stored;
        }
        const item = queue.shift();
        if (!item) break;
        const { ref } = item;
        if (ref.hole) {
          writer.addHole(ref.raw);
          continue;
        }
        const k = Buffer.from(ref.id).toString('latin1');
        let loc = copied.get(k);
        if (!loc) {
          const { stored } = await item.data!;
          queued -= ref.stored;
          loc = { offset: writer.appendChunk(stored), stored: stored.byteLength, codec: ref.codec };
          copied.set(k, loc);
          uniqueRawBytes += ref.raw;
          const name = ref.codec === 0 ? 'none' : ref.codec === 1 ? 'zstd' : 'lz4';
          const c = (codecs[name] ??= { chunks: 0, rawBytes: 0, storedBytes: 0 });
          c.chunks++;
          c.rawBytes += ref.raw;
          c.storedBytes += stored.byteLength;
          await writer.drain();
        }
        writer.addRef({ id: ref.id, offset: loc.offset, stored: loc.stored, raw: ref.raw, owner: 0, codec: loc.codec, hole: false });
        opts.onProgress?.(writer.logical, root.logicalSize);
      }
      writer.endFile(entry);
    }
    const { size } = await writer.finish(entries, {
      chunking: root.chunking,
      defaultCodec: root.defaultCodec,
      defaultLevel: root.defaultLevel,
      metadata: {
        ...root.metadata,
        creator: `hexz/${VERSION}`,
        created: (opts.created ?? new Date()).toISOString(),
        flattenedFrom: archive.uuid,
        stats: { uniqueRawBytes, codecs },
      },
    });
    return {
      output: outUrl,
      uuid: formatUuid(uuid),
      from: archive.uuid,
      files: entries.filter((e) => e.type === 'file').length,
      logicalBytes: writer.logical,
      chunks: writer.storedChunkCount,
      storedBytes: writer.storedChunkBytes,
      archiveBytes: size,
      ...(opts.signKey ? { signerKeyId: Buffer.from(opts.signKey.keyId).toString('hex') } : {}),
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (err) {
    await sink.abort(err).catch(() => {});
    throw err;
  }
}
