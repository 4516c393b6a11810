/** `hexz verify ARCHIVE`: see docs/cli.md. Exit code 4 when anything is wrong. */
import { ERROR_TABLE } from '../../errors.js';
import { verifyArchive } from '../../reader/verify.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location]: string[]): Promise<CommandResult> {
  const archive = await ctx.open(location);
  const bar = ctx.progress('verifying', archive.root.logicalSize);
  try {
    const r = await verifyArchive(archive, { signal: ctx.signal, onProgress: (d, t) => bar.update(d, t) });
    bar.stop();
    const head = r.ok
      ? `OK: ${r.files} files, ${r.refs} chunk references, ${r.chunks} distinct chunks (${formatBytes(r.bytes)}${r.baseChunks ? `, ${r.baseChunks} in bases` : ''}) verified in ${formatSeconds(r.seconds)}`
      : `FAILED: ${r.problems.length} problem(s) in ${r.archive}`;
    const lines = r.problems.map((p) => `  ${p.code}${p.path ? ` ${p.path}` : ''}: ${p.message}`);
    return { json: r, text: [head, ...lines].join('\n'), exitCode: r.ok ? 0 : ERROR_TABLE.CORRUPT.exit };
  } finally {
    bar.stop();
    await archive.close();
  }
}
