/** `hexz cat ARCHIVE PATH [--offset N] [--length N]`: see docs/cli.md. */
import { once } from 'node:events';
import { parseInteger } from '../config.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(ctx: CommandContext, [location, path]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  ctx.warmDecoders();
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
      const out = ctx.stdout;
      // The bulk path: extents decoded on every core into cold cache segments (a one-pass read must
      // not flush the cache), each piece written straight from cache memory and released once the
      // write is done with it.
      for await (const piece of archive.leasedPieces([{ entry, start: offset, end: offset + length }], { signal: ctx.signal, cold: true })) {
        written = true;
        if (!out.write(piece.bytes, () => piece.release())) await once(out, 'drain');
      }
      return {};
    },
    { canRetry: () => !written },
  );
}
