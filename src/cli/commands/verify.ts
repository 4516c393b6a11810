/** `hexz verify ARCHIVE`: see docs/cli.md. Exit code 4 when anything is wrong. */
import { ERROR_TABLE, HexzError } from '../../errors.js';
import { verifyArchive } from '../../reader/verify.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location]: string[]): Promise<CommandResult> {
  ctx.warmDecoders();
  return ctx.withArchive(location, async (archive) => {
    const bar = ctx.progress('verifying', archive.root.logicalSize);
    try {
      const r = await verifyArchive(archive, { signal: ctx.signal, onProgress: (d, t) => bar.update(d, t) });
      bar.stop();
      // A replaced archive is not a damaged one: raise it (reopened once, then exit 9), never "FAILED".
      const changed = r.problems.find((p) => p.code === 'ARCHIVE_CHANGED');
      if (changed) throw new HexzError('ARCHIVE_CHANGED', changed.message, { archive: r.archive, path: changed.path });
      const head = r.ok
        ? `OK: ${r.files} files, ${r.refs} chunk references, ${r.chunks} distinct chunks (${formatBytes(r.bytes)}${r.baseChunks ? `, ${r.baseChunks} in bases` : ''}) verified in ${formatSeconds(r.seconds)}`
        : `FAILED: ${r.problems.length} problem(s) in ${r.archive}`;
      const lines = r.problems.map((p) => `  ${p.code}${p.path ? ` ${p.path}` : ''}: ${p.message}`);
      return { json: r, text: [head, ...lines].join('\n'), exitCode: r.ok ? 0 : ERROR_TABLE.CORRUPT.exit };
    } finally {
      bar.stop();
    }
  });
}
