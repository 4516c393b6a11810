/** `hexz diff A B`: see docs/cli.md. */
import { diffArchives } from '../../diff.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes } from '../format.js';

export async function run(ctx: CommandContext, [left, right]: string[]): Promise<CommandResult> {
  return ctx.withArchives([left, right], async ([a, b]) => {
    const d = await diffArchives(a, b);
    const lines = [
      ...d.added.map((e) => `A ${e.path}${e.type === 'directory' ? '/' : ''}`),
      ...d.removed.map((e) => `D ${e.path}${e.type === 'directory' ? '/' : ''}`),
      ...d.modified.map(
        (e) =>
          `M ${e.path}` +
          (e.metadataOnly
            ? ' (mode/target only)'
            : e.typeA === 'file' && e.typeB === 'file'
              ? ` (${formatBytes(e.sizeA)} → ${formatBytes(e.sizeB)}, ${e.sharedBytes === null ? 'shared bytes unknown' : `${formatBytes(e.sharedBytes)} shared`})`
              : ` (${e.typeA} → ${e.typeB})`),
      ),
      ...d.renamed.map((r) => `R ${r.from} → ${r.to}`),
    ];
    const c = d.chunks;
    lines.push(
      '',
      `${d.added.length} added, ${d.removed.length} removed, ${d.modified.length} modified, ${d.renamed.length} renamed, ${d.unchanged} unchanged`,
      c.comparable && c.sharedBytes !== null
        ? `chunks: ${formatBytes(c.sharedBytes)} shared (${c.sharedChunks}), ${formatBytes(c.onlyABytes)} only in A (${c.onlyAChunks}), ${formatBytes(c.onlyBBytes)} only in B (${c.onlyBChunks})`
        : `chunks: not comparable; ${formatBytes(c.onlyABytes)} in A (${c.onlyAChunks}), ${formatBytes(c.onlyBBytes)} in B (${c.onlyBChunks})`,
    );
    if (d.comparison.method === 'content') {
      lines.push(`note: chunk ids are not comparable (${d.comparison.reason}): files of equal size were compared by reading both, and shared bytes of modified files are unknown`);
    }
    return { json: d, text: lines.join('\n').replace(/^\n/, '') };
  });
}
