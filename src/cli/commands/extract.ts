/** `hexz extract ARCHIVE DIR [PATH...]`: see docs/cli.md. */
import { extractArchive } from '../../extract.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location, dir, ...paths]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  ctx.warmDecoders();
  let written = false;
  // Reopened once if the archive is replaced before any file is created; after that the typed
  // error stands (a rerun with --force replaces the partial extraction).
  return ctx.withArchive(
    location,
    async (archive) => {
      const bar = ctx.progress('extracting', archive.root.logicalSize);
      try {
        const s = await extractArchive(archive, dir, {
          paths,
          force: Boolean(opts.force),
          signal: ctx.signal,
          onProgress: (b, t) => bar.update(b, t),
          onWrite: () => (written = true),
        });
        bar.stop();
        return {
          json: s,
          text: `extracted ${s.files} files, ${s.directories} directories, ${s.symlinks} symlinks (${formatBytes(s.bytes)}) into ${s.destination} in ${formatSeconds(s.seconds)}`,
        };
      } finally {
        bar.stop();
      }
    },
    { canRetry: () => !written },
  );
}
