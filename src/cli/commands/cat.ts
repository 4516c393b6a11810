/** `hexz cat ARCHIVE PATH [--offset N] [--length N]`: see docs/cli.md. */
import { pipeline } from 'node:stream/promises';
import { parseInteger } from '../config.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(ctx: CommandContext, [location, path]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  let written = false;
  // An archive replaced before the first byte went out is reopened and read again; after that,
  // stdout holds bytes of the old version and the typed error (exit 9) stands.
  return ctx.withArchive(
    location,
    async (archive) => {
      const entry = await archive.resolve(path); // like cat(1), follow symlinks (inside the archive only)
      const offset = parseInteger(String(opts.offset ?? 0), '--offset');
      const length = opts.length === undefined ? Math.max(0, entry.size - offset) : parseInteger(String(opts.length), '--length');
      if (length === 0 && offset <= entry.size && entry.type === 'file') return {};
      const stream = archive.createReadStream(entry, { start: offset, end: offset + length - 1, signal: ctx.signal });
      stream.once('data', () => (written = true));
      await pipeline(stream, ctx.stdout, { end: false });
      return {};
    },
    { canRetry: () => !written },
  );
}
