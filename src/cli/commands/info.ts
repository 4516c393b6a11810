/** `hexz info ARCHIVE`: see docs/cli.md. */
import type { Archive, ArchiveInfo, ChainSignature } from '../../reader/archive.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatRatio, formatSignature, keyValues, table } from '../format.js';

type Counts = Awaited<ReturnType<Archive['entryCounts']>>;

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function infoText(i: ArchiveInfo, counts: Counts, baseSizes: Array<number | undefined>, signatures: ChainSignature[]): string {
  const codecs = Object.entries(i.codecs ?? {})
    .map(([name, c]) => `${name} ${c.chunks} chunks`)
    .join(', ');
  const lines = keyValues([
    ['archive', i.url],
    ['uuid', i.uuid],
    ['format', `hxz v${i.formatVersion}`],
    ['created', i.created],
    ['creator', i.creator],
    ['source', `${i.source.name ?? '?'} (${i.source.type})`],
    ['encryption', i.encrypted ? `AES-256-GCM (${i.keyDerivation === 'scrypt' ? 'passphrase, scrypt' : 'key file'})` : 'none'],
    ['signature', formatSignature(signatures[0])],
    ['chunking', `FastCDC ${formatBytes(i.chunking.min)} / ${formatBytes(i.chunking.avg)} / ${formatBytes(i.chunking.max)}, normalization ${i.chunking.normalization}, seed ${i.chunking.seed}`],
    ['compression', `${i.compression.codec ?? '?'}${i.compression.level !== undefined ? ` level ${i.compression.level}` : ''}${codecs ? ` (${codecs})` : ''}`],
    ['entries', `${plural(counts.files, 'file', 'files')}, ${plural(counts.directories, 'directory', 'directories')}, ${plural(counts.symlinks, 'symlink', 'symlinks')}`],
    ['logical size', `${formatBytes(i.logicalSize)} (${i.logicalSize} bytes)`],
    ['holes', i.holeBytes ? formatBytes(i.holeBytes) : undefined],
    ['chunks', `${i.chunkRefs} references, ${i.storedChunks} stored here`],
    ['stored', `${formatBytes(i.storedChunkBytes)} of chunks; archive ${formatBytes(i.archiveSize)}`],
    ['ratios', `dedup ${formatRatio(i.dedupRatio)}, compression ${formatRatio(i.compressionRatio)}, logical/archive ${formatRatio(i.logicalSize / Math.max(1, i.archiveSize))}`],
    ...Object.entries(i.user).map(([k, v]) => [`meta ${k}`, v] as [string, string]),
  ]);
  if (i.bases.length === 0) return lines;
  const rows: Array<Array<string | number>> = [['', 'archive', 'uuid', 'size', 'logical bytes held', 'signature']];
  const signature = (slot: number) => (signatures[slot] ? shortSignature(signatures[slot]) : '?');
  rows.push(['this', i.url, i.uuid, formatBytes(i.archiveSize), `${formatBytes(i.selfLogicalBytes)} (${pct(i.selfLogicalBytes, i.logicalSize)})`, signature(0)]);
  i.bases.forEach((b, k) => {
    rows.push([b.direct ? 'base' : 'ancestor', b.url ?? b.hint, b.uuid, baseSizes[k] === undefined ? '?' : formatBytes(baseSizes[k]!), `${formatBytes(b.logicalBytes)} (${pct(b.logicalBytes, i.logicalSize)})`, signature(k + 1)]);
  });
  return `${lines}\n\nchain:\n${table(rows)}`;
}

/** A chain row's signature: the state and a key id prefix (the full id is on the signature line and in --json). */
function shortSignature(c: ChainSignature): string {
  return c.state === 'unsigned' ? 'unsigned' : `${c.state} ${c.keyId!.slice(0, 16)}…${c.signer ? ` (${c.signer})` : ''}`;
}

function pct(part: number, whole: number): string {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}

export async function run(ctx: CommandContext, [location]: string[]): Promise<CommandResult> {
  const trustedKeys = await ctx.trustedKeys();
  // Opened without refusing untrusted signatures: info shows them (against --trusted-keys when given).
  return ctx.withArchive(location, async (archive) => {
    // Finding the bases (for their signatures) first, so the summary names where each was found.
    const signatures = await archive.signatures(trustedKeys);
    const info = archive.info();
    const [counts, baseSizes] = await Promise.all([archive.entryCounts(), archive.baseSizes()]);
    return {
      json: {
        ...info,
        // fileCount (kept for compatibility) is the total of all entry types; these split it.
        entryCount: counts.entries,
        files: counts.files,
        directories: counts.directories,
        symlinks: counts.symlinks,
        bases: info.bases.map((b, k) => ({ ...b, archiveSize: baseSizes[k], signature: signatures[k + 1] })),
        // The chain's signatures, this archive first; `trusted`/`untrusted`/`bad` only with trusted keys.
        signatures,
      },
      text: infoText(info, counts, baseSizes, signatures),
    };
  }, { open: { trustedKeys: undefined } });
}
