/** `hexz pack INPUT OUTPUT`: see docs/cli.md. */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chunkingForAverage } from '../../chunker/fastcdc.js';
import { parseInteger, parseSize } from '../config.js';
import { HexzError } from '../../errors.js';
import { MAX_METADATA_BYTES } from '../../format/constants.js';
import { toStorageUrl } from '../../../storage/index.js';
import { pack, type PackSummary } from '../../packer/pack.js';
import type { CodecName } from '../../codecs/index.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatRatio, formatSeconds, keyValues } from '../format.js';

/** zstd levels the CLI accepts: its fast negative levels down to -7, up to its maximum 22. */
export const ZSTD_LEVELS = { min: -7, max: 22 } as const;

/** Room the rest of the metadata (creator, source name, chunking, stats) needs next to --meta. */
const METADATA_HEADROOM = 16 * 1024;

export function parseMeta(pairs: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new HexzError('INVALID_ARGUMENT', `--meta expects key=value, got "${p}"`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  // Checked before reading any input: the archive's metadata may not exceed 1 MiB (docs/format.md §5).
  const bytes = Buffer.byteLength(JSON.stringify(out));
  if (bytes > MAX_METADATA_BYTES - METADATA_HEADROOM) {
    throw new HexzError('INVALID_ARGUMENT', `--meta values take ${bytes} bytes; an archive's metadata is limited to 1 MiB (about ${MAX_METADATA_BYTES - METADATA_HEADROOM} bytes for --meta)`);
  }
  return out;
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org): a whole number of seconds since 1970-01-01 UTC. */
export function parseSourceDateEpoch(value: string | undefined): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const date = /^\d{1,15}$/.test(value.trim()) ? new Date(Number(value.trim()) * 1000) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    throw new HexzError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, got "${value}"`);
  }
  return date;
}

/** A local OUTPUT that is an existing directory can never be replaced: say so before packing. */
async function checkOutput(output: string): Promise<void> {
  const url = toStorageUrl(output);
  if (!url.startsWith('file:')) return;
  const st = await fs.stat(fileURLToPath(url)).catch(() => undefined);
  if (st?.isDirectory()) {
    throw new HexzError('INVALID_ARGUMENT', `output ${output} is a directory; give the archive's file name (e.g. ${output.replace(/\/+$/, '')}/archive.hxz)`, { path: output });
  }
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
    ['signed', s.signerKeyId ? `Ed25519, key ${s.signerKeyId}` : undefined],
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
  const compression = (opts.compression ?? 'zstd') as CodecName;
  const level = opts.level === undefined ? undefined : parseInteger(String(opts.level), '--level', ZSTD_LEVELS.min, ZSTD_LEVELS.max);
  if (level !== undefined && compression !== 'zstd') ctx.warn(`--level applies to zstd only; it is ignored with --compression ${compression}`);
  const created = parseSourceDateEpoch(process.env.SOURCE_DATE_EPOCH);
  const user = parseMeta(opts.meta as string[] | undefined);
  // Read before any input: a bad key file fails in a second, not after the whole pack.
  const signKey = await ctx.signKey();
  const trustedKeys = await ctx.trustedKeys();
  await checkOutput(output);
  const bar = ctx.progress('packing', 0);
  try {
    const summary = await pack(input, output, {
      compression,
      level,
      chunking: opts.chunkSize ? chunkingForAverage(parseSize(String(opts.chunkSize), '--chunk-size')) : undefined,
      threads: opts.threads ? parseInteger(String(opts.threads), '--threads', 1, 256) : undefined,
      bases: opts.base as string[] | undefined,
      // The key always opens encrypted bases; whether the output is encrypted is a separate choice:
      // --encrypt, or automatically when a base is encrypted (a delta of one must be).
      key,
      encrypt: opts.encrypt ? true : 'auto',
      signKey,
      trustedKeys,
      cache: ctx.cache,
      user,
      overwrite: Boolean(opts.force),
      storage: ctx.config.storage,
      ...ctx.config.bases,
      signal: ctx.signal,
      created,
      onProgress: (p) => bar.update(p.bytesRead, p.totalBytes),
      onWarning: (m) => ctx.warn(m),
    });
    bar.stop();
    return { json: { ...summary, warnings: ctx.warnings }, text: summaryText(summary) };
  } finally {
    bar.stop();
  }
}
