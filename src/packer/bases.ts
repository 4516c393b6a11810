/**
 * The bases of a thin archive, as `pack` sees them: their chunk indexes (never their chunk data) loaded
 * into the dedup map, and the settings a delta must share with them (chunking parameters, encryption
 * and key) settled before the first byte is cut.
 */
import { meterStorage, newCounters } from '../../cache/metered.js';
import { sharedCache } from '../../cache/block-cache.js';
import { relativeLocation, resolveLocation, toStorageUrl } from '../../storage/index.js';
import type { Storage } from '../../storage/types.js';
import { DEFAULT_CHUNKING, type ChunkingParams } from '../chunker/fastcdc.js';
import { deriveArchiveKeys, masterKey, newKdfParams, type ArchiveKeys } from '../crypto/keys.js';
import { HexzError } from '../errors.js';
import { bytesEqual } from '../format/bytes.js';
import { NO_KDF, type KdfParams } from '../format/header.js';
import type { BaseEntry } from '../format/root.js';
import { HASH_BYTES } from '../hash.js';
import { openArchive, type Archive } from '../reader/archive.js';
import { refuseOutputAt } from './chain-output.js';
import type { Location } from './job-writer.js';
import type { PackOptions } from './pack.js';

/** Load the chunk index of every base (never their chunk data) into the dedup map. */
export async function loadBases(
  outUrl: string,
  bases: string[],
  opts: PackOptions,
  known: Map<string, Location>,
): Promise<{ entries: BaseEntry[]; archives: Archive[]; bytesRead: number }> {
  const entries: BaseEntry[] = [];
  const slotOf = new Map<string, number>();
  const archives: Archive[] = [];
  const counters = newCounters();
  const counting = (s: Storage): Storage => meterStorage(opts.wrapStorage ? opts.wrapStorage(s) : s, counters);
  const slotFor = (uuid: Uint8Array, entry: () => BaseEntry): number => {
    const k = Buffer.from(uuid).toString('hex');
    let slot = slotOf.get(k);
    if (slot === undefined) {
      entries.push(entry());
      slot = entries.length;
      slotOf.set(k, slot);
    }
    return slot;
  };
  const refuseSelf = (url: string, what: string) => refuseOutputAt(outUrl, url, what, 'packing would overwrite an archive the new one depends on');
  // Up front, before any index is read: the output must not be a base…
  for (const location of bases) await refuseSelf(toStorageUrl(location), `the base ${location}`);
  try {
    for (const location of bases) {
      const url = toStorageUrl(location);
      // Index pages go through the process's one cache (one memory budget); pages are read once here,
      // and entries too large for the budget are not kept.
      const base = await openArchive(url, { ...opts, wrapStorage: counting, cache: opts.cache ?? sharedCache() });
      archives.push(base);
      // …nor an archive of a base's chain (opening a base resolved its chain; nothing is read yet).
      const ancestors = await base.findBases();
      for (const s of ancestors) await refuseSelf(s.url, `an ancestor of the base ${location} (part of its chain)`);
      const direct = slotFor(base.trailer.uuid, () => ({ uuid: base.trailer.uuid, rootHash: base.rootHash, logicalBytes: 0, direct: true, hint: relativeLocation(outUrl, base.url) }));
      entries[direct - 1].direct = true;
      const slots = base.root.bases.map((b, i) => {
        const abs = ancestors[i]?.url ?? resolveLocation(base.url, b.hint);
        return slotFor(b.uuid, () => ({ uuid: b.uuid, rootHash: b.rootHash, logicalBytes: 0, direct: false, hint: relativeLocation(outUrl, abs) }));
      });
      for await (const ref of base.refsIn(0, base.root.logicalSize)) {
        if (ref.hole) continue;
        const k = Buffer.from(ref.id.buffer, ref.id.byteOffset, HASH_BYTES).toString('latin1');
        if (known.has(k)) continue;
        known.set(k, { owner: ref.owner === 0 ? direct : slots[ref.owner - 1], offset: ref.offset, stored: ref.stored, codec: ref.codec });
      }
    }
    if (entries.length > 0xffff) throw new HexzError('INVALID_ARGUMENT', 'too many bases (more than 65,535 archives in the chain)');
  } catch (err) {
    await Promise.all(archives.map((a) => a.close()));
    throw err;
  }
  return { entries, archives, bytesRead: counters.bytes };
}

/** Pick the chunking parameters, keys and KDF of the new archive, consistent with its bases. */
export async function settle(
  opts: PackOptions,
  baseArchives: Archive[],
): Promise<{ chunking: ChunkingParams; keys?: ArchiveKeys; kdf: KdfParams }> {
  const first = baseArchives[0];
  let chunking = opts.chunking ?? first?.root.chunking ?? { ...DEFAULT_CHUNKING };
  if (first) {
    const inherited = first.root.chunking;
    if (opts.chunking && JSON.stringify(opts.chunking) !== JSON.stringify(inherited)) {
      opts.onWarning?.('chunking parameters are inherited from the base so chunk boundaries line up; the given ones are ignored');
    }
    chunking = inherited;
  }
  const encryptedBase = baseArchives.find((b) => b.encrypted);
  const encrypt = opts.encrypt === 'auto' ? encryptedBase !== undefined : (opts.encrypt ?? Boolean(opts.key));
  if (encrypt && !opts.key) throw new HexzError('INVALID_ARGUMENT', 'encrypting needs a key', { remedy: 'encryption-key' });
  for (const b of baseArchives) {
    if (b.encrypted !== encrypt) {
      throw new HexzError(
        'INVALID_ARGUMENT',
        b.encrypted
          ? `base ${b.url} is encrypted: a delta of an encrypted base must be encrypted with the same key`
          : `base ${b.url} is not encrypted: an encrypted delta cannot build on a plain base (see docs/format.md, section 9)`,
        { url: b.url, ...(b.encrypted ? { remedy: 'encrypt' as const } : {}) },
      );
    }
  }
  if (opts.encrypt === 'auto' && encryptedBase) {
    opts.onWarning?.(`base ${encryptedBase.url} is encrypted, so the delta is encrypted too, with the same key`);
  }
  if (!encrypt) return { chunking, kdf: NO_KDF };
  // A delta of an encrypted base reuses the base's key derivation so the key, and so the chunk ids, match.
  const kdf = first ? first.trailer.kdf : newKdfParams(opts.key!);
  const keys = deriveArchiveKeys(await masterKey(opts.key!, kdf));
  for (const b of baseArchives) {
    if (!bytesEqual(b.trailer.keyCheck, keys.keyCheck)) {
      throw new HexzError('WRONG_KEY', `base ${b.url} is encrypted under another key; a delta must use the key of its base`, { url: b.url });
    }
  }
  return { chunking, keys, kdf };
}
