/** `hexz flatten DELTA OUTPUT`: see docs/cli.md. */
import { flattenArchive } from '../../packer/flatten.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location, output]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const archive = await ctx.open(location);
  const bar = ctx.progress('flattening', archive.root.logicalSize);
  try {
    const s = await flattenArchive(archive, output, { overwrite: Boolean(opts.force), storage: ctx.config.storage, signal: ctx.signal, onProgress: (b, t) => bar.update(b, t) });
    bar.stop();
    return { json: s, text: `flattened ${s.from} into ${s.output} (uuid ${s.uuid}): ${s.files} files, ${s.chunks} chunks, ${formatBytes(s.archiveBytes)} in ${formatSeconds(s.seconds)}` };
  } finally {
    bar.stop();
    await archive.close();
  }
}
