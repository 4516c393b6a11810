/** `hexz pack INPUT OUTPUT`: see docs/cli.md. */
import { chunkingForAverage } from '../../chunker/fastcdc.js';
import { parseInteger, parseSize } from '../../config.js';
import { HexzError } from '../../errors.js';
import { pack, type PackSummary } from '../../packer/pack.js';
import type { CodecName } from '../../codecs/index.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatRatio, formatSeconds, keyValues } from '../format.js';

function parseMeta(pairs: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new HexzError('INVALID_ARGUMENT', `--meta expects key=value, got "${p}"`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

export function summaryText(s: PackSummary): string {
  const delta = s.bases.length > 0;
  return keyValues([
    ['packed', `${s.output} (${s.kind}, uuid ${s.uuid})`],
    ['input', `${formatBytes(s.logicalBytes)} in ${s.files} files, ${s.directories} directories, ${s.symlinks} symlinks`],
    ['chunks', `${s.chunks}: ${s.newChunks} new (${formatBytes(s.newBytes)}), ${s.dupChunks} repeated (${formatBytes(s.dupBytes)})` + (delta ? `, ${s.baseChunks} in bases (${formatBytes(s.baseBytes)})` : '')],
    ['holes', s.holeBytes ? formatBytes(s.holeBytes) : undefined],
    ['stored', `${formatBytes(s.storedBytes)} (compression ${formatRatio(s.compressionRatio)}, dedup ${formatRatio(s.dedupRatio)})`],
    ['encrypted', s.encrypted ? 'yes (AES-256-GCM)' : undefined],
    // Remote outputs went over the wire: say so (the CI question is "how much did we upload?").
    [s.uploadedBytes !== undefined ? 'uploaded' : delta ? 'written' : 'archive', `${formatBytes(s.archiveBytes)}` + (delta ? ` (bases' indexes read: ${formatBytes(s.baseIndexBytes)})` : '')],
    ['time', `${formatSeconds(s.seconds)} (${formatBytes(s.logicalBytes / Math.max(s.seconds, 1e-6))}/s)`],
  ]);
}

export async function run(ctx: CommandContext, [input, output]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const key = await ctx.key();
  if (opts.encrypt && !key) {
    throw new HexzError('INVALID_ARGUMENT', '--encrypt needs a key: --key-file FILE, --passphrase-file FILE or HEXZ_PASSPHRASE (hexz keygen FILE makes one)');
  }
  const bar = ctx.progress('packing', 0);
  try {
    const summary = await pack(input, output, {
      compression: opts.compression as CodecName,
      level: parseInteger(String(opts.level ?? 3), '--level', -7, 22),
      chunking: opts.chunkSize ? chunkingForAverage(parseSize(String(opts.chunkSize), '--chunk-size')) : undefined,
      threads: opts.threads ? parseInteger(String(opts.threads), '--threads', 1, 256) : undefined,
      bases: opts.base as string[] | undefined,
      // The key always opens encrypted bases; whether the output is encrypted is a separate choice:
      // --encrypt, or automatically when a base is encrypted (a delta of one must be).
      key,
      encrypt: opts.encrypt ? true : 'auto',
      cache: ctx.cache,
      user: parseMeta(opts.meta as string[] | undefined),
      overwrite: Boolean(opts.force),
      storage: ctx.config.storage,
      ...ctx.config.bases,
      signal: ctx.signal,
      created: process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : undefined,
      onProgress: (p) => bar.update(p.bytesRead, p.totalBytes),
      onWarning: (m) => ctx.warn(m),
    });
    bar.stop();
    return { json: { ...summary, warnings: ctx.warnings }, text: summaryText(summary) };
  } finally {
    bar.stop();
  }
}
