/** `hexz flatten DELTA OUTPUT`: see docs/cli.md. */
import { flattenArchive } from '../../packer/flatten.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location, output]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const signKey = await ctx.signKey();
  const archive = await ctx.open(location);
  const wasSigned = archive.ownSignature().state !== 'unsigned';
  const bar = ctx.progress('flattening', archive.root.logicalSize);
  try {
    const s = await flattenArchive(archive, output, { overwrite: Boolean(opts.force), storage: ctx.config.storage, signKey, signal: ctx.signal, onProgress: (b, t) => bar.update(b, t) });
    bar.stop();
    return { json: s, text: `flattened ${s.from} into ${s.output} (uuid ${s.uuid}): ${s.files} files, ${s.chunks} chunks, ${formatBytes(s.archiveBytes)} in ${formatSeconds(s.seconds)}${signedNote(s.signerKeyId, wasSigned)}` };
  } finally {
    bar.stop();
    await archive.close();
  }
}

/** What the summary says about signing: a signed delta's signature cannot carry over to a new root. */
function signedNote(signerKeyId: string | undefined, wasSigned: boolean): string {
  if (signerKeyId) return `; signed with key ${signerKeyId}`;
  return wasSigned ? '; the result is unsigned: a signature covers one root, and this is a new archive (give --sign-key to sign it)' : '';
}
