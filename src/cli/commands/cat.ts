/** `hexz cat ARCHIVE PATH [--offset N] [--length N]`: see docs/cli.md. */
import { pipeline } from 'node:stream/promises';
import { parseInteger } from '../../config.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(ctx: CommandContext, [location, path]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const archive = await ctx.open(location);
  try {
    const entry = await archive.resolve(path); // like cat(1), follow symlinks (inside the archive only)
    const offset = parseInteger(String(opts.offset ?? 0), '--offset');
    const length = opts.length === undefined ? Math.max(0, entry.size - offset) : parseInteger(String(opts.length), '--length');
    if (length === 0 && offset <= entry.size && entry.type === 'file') return {};
    const stream = archive.createReadStream(entry, { start: offset, end: offset + length - 1, signal: ctx.signal });
    await pipeline(stream, ctx.stdout, { end: false });
    return {};
  } finally {
    await archive.close();
  }
}
