/**
 * `ArchiveInfo`: what `hexz info` and the gateway's archive description show, derived from the root,
 * the trailer and the metadata's `stats` (docs/format.md, section 5). Nothing here reads storage.
 */
import { toHex } from '../format/bytes.js';
import { SIG_NONE } from '../format/constants.js';
import { formatUuid } from '../format/header.js';
import type { Root } from '../format/root.js';
import type { OpenedArchive } from './opened.js';

/** Summary of an archive for `hexz info` and the gateway. */
export interface ArchiveInfo {
  url: string;
  uuid: string;
  formatVersion: number;
  encrypted: boolean;
  keyDerivation: 'none' | 'key' | 'scrypt';
  /**
   * Who signed the archive (docs/format.md, section 3.1): the algorithm and the signer's key id in
   * hex, or null when unsigned. Whether that key is trusted is a reader's decision (`Archive.signatures`).
   */
  signature: { algorithm: 'ed25519'; keyId: string } | null;
  archiveSize: number;
  etag?: string;
  created?: string;
  creator?: string;
  source: { name?: string; type: 'directory' | 'file' };
  compression: { codec?: string; level?: number };
  chunking: Root['chunking'];
  /**
   * Entries of the file table, of all types (files, directories and symlinks; the root's count). The
   * name is historical: `entryCounts()` splits it by type.
   */
  fileCount: number;
  logicalSize: number;
  chunkRefs: number;
  storedChunks: number;
  storedChunkBytes: number;
  uniqueRawBytes?: number;
  holeBytes: number;
  selfLogicalBytes: number;
  codecs?: Record<string, { chunks: number; rawBytes: number; storedBytes: number }>;
  /** Logical bytes per stored unique byte among this archive's own chunks. */
  dedupRatio?: number;
  /** Raw bytes per stored byte of this archive's own chunks. */
  compressionRatio?: number;
  bases: Array<{ uuid: string; hint: string; url?: string; direct: boolean; logicalBytes: number }>;
  user: Record<string, string>;
}

/** The summary of an opened archive. */
export function archiveInfo(a: OpenedArchive): ArchiveInfo {
  const r = a.root;
  const m = r.metadata;
  const stats = (m.stats ?? {}) as { uniqueRawBytes?: number; codecs?: ArchiveInfo['codecs'] };
  const kdf = a.trailer.kdf.kind;
  const sig = a.trailer.signature;
  return {
    url: a.url,
    uuid: formatUuid(a.trailer.uuid),
    formatVersion: a.trailer.version,
    encrypted: a.keys !== undefined,
    keyDerivation: kdf === 0 ? 'none' : kdf === 1 ? 'key' : 'scrypt',
    signature: sig && sig.algorithm !== SIG_NONE ? { algorithm: 'ed25519', keyId: toHex(sig.keyId) } : null,
    archiveSize: a.storageStat.size,
    etag: a.storageStat.etag,
    created: m.created,
    creator: m.creator,
    source: { name: m.source?.name, type: m.source?.type === 'file' ? 'file' : 'directory' },
    compression: { codec: m.compression?.codec, level: m.compression?.level },
    chunking: r.chunking,
    fileCount: r.fileCount,
    logicalSize: r.logicalSize,
    chunkRefs: r.refCount,
    storedChunks: r.storedChunkCount,
    storedChunkBytes: r.storedChunkBytes,
    uniqueRawBytes: stats.uniqueRawBytes,
    holeBytes: r.holeBytes,
    selfLogicalBytes: r.selfLogicalBytes,
    codecs: stats.codecs,
    dedupRatio: stats.uniqueRawBytes ? r.selfLogicalBytes / stats.uniqueRawBytes : undefined,
    compressionRatio: stats.uniqueRawBytes && r.storedChunkBytes ? stats.uniqueRawBytes / r.storedChunkBytes : undefined,
    bases: r.bases.map((b, i) => ({
      uuid: formatUuid(b.uuid),
      hint: b.hint,
      url: a.bases.foundAt(i + 1)?.url,
      direct: b.direct,
      logicalBytes: b.logicalBytes,
    })),
    user: m.user ?? {},
  };
}
