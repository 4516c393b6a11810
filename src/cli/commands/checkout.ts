/** `hexz checkout ARCHIVE DIR`: see docs/cli.md, "Workspaces". */
import { checkout } from '../../workspace/checkout.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location, dir]: string[]): Promise<CommandResult> {
  const archive = await ctx.open(location);
  const bar = ctx.progress('checking out', archive.root.logicalSize);
  try {
    const s = await checkout(archive, dir, { signal: ctx.signal, onProgress: (b, t) => bar.update(b, t) });
    bar.stop();
    return {
      json: s,
      text: `checked out ${s.archive} (uuid ${s.uuid}) into ${s.destination}: ${s.files} files, ${s.directories} directories, ${s.symlinks} symlinks (${formatBytes(s.bytes)}) in ${formatSeconds(s.seconds)}`,
    };
  } finally {
    bar.stop();
    await archive.close();
  }
}
