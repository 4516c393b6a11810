/** `hexz sign ARCHIVE --sign-key KEY [--output LOCATION] [--force]`: see docs/cli.md ("Signing"). */
import { HexzError } from '../../errors.js';
import { signArchive } from '../../packer/sign.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatSeconds } from '../format.js';

export async function run(ctx: CommandContext, [location]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const key = await ctx.signKey();
  if (!key) throw new HexzError('INVALID_ARGUMENT', 'signing needs a signing key', { remedy: 'sign-key' });
  const bar = ctx.progress('signing', 0);
  try {
    const s = await signArchive(location, {
      key,
      output: typeof opts.output === 'string' ? opts.output : undefined,
      overwrite: Boolean(opts.force),
      storage: ctx.config.storage,
      signal: ctx.signal,
      onProgress: (b, t) => bar.update(b, t),
    });
    bar.stop();
    const text = s.unchanged
      ? `${s.output} is already signed by key ${s.keyId}: nothing to do`
      : `signed ${s.output} (uuid ${s.uuid}) with key ${s.keyId}` + (s.previousKeyId ? `, replacing the signature by key ${s.previousKeyId}` : '') + ` in ${formatSeconds(s.seconds)}`;
    return { json: s, text };
  } finally {
    bar.stop();
  }
}
