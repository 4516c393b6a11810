/**
 * `hexz verify ARCHIVE [--trusted-keys FILE|DIR]`: see docs/cli.md. Exit code 4 when anything is
 * damaged; 27 when the only problems are signatures (unsigned, unknown signer, bad signature).
 */
import { SIGNATURE_REFUSALS } from '../../crypto/signatures.js';
import { ERROR_TABLE, HexzError } from '../../errors.js';
import { verifyArchive } from '../../reader/verify.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds, formatSignature } from '../format.js';

/** Problems that are about who signed, not about damage. */
const SIGNATURE_CODES: ReadonlySet<string> = new Set(SIGNATURE_REFUSALS);

export async function run(ctx: CommandContext, [location]: string[]): Promise<CommandResult> {
  ctx.warmDecoders();
  const trustedKeys = await ctx.trustedKeys();
  // Opened without refusing untrusted signatures: verify reports them, with everything else it finds.
  return ctx.withArchive(location, async (archive) => {
    const bar = ctx.progress('verifying', archive.root.logicalSize);
    try {
      const r = await verifyArchive(archive, { signal: ctx.signal, trustedKeys, onProgress: (d, t) => bar.update(d, t) });
      bar.stop();
      // A replaced archive is not a damaged one: raise it (reopened once, then exit 9), never "FAILED".
      const changed = r.problems.find((p) => p.code === 'ARCHIVE_CHANGED');
      if (changed) throw new HexzError('ARCHIVE_CHANGED', changed.message, { archive: r.archive, path: changed.path });
      const head = r.ok
        ? `OK: ${r.files} files, ${r.refs} chunk references, ${r.chunks} distinct chunks (${formatBytes(r.bytes)}${r.baseChunks ? `, ${r.baseChunks} in bases` : ''}) verified in ${formatSeconds(r.seconds)}`
        : `FAILED: ${r.problems.length} problem(s) in ${r.archive}`;
      const lines = r.problems.map((p) => `  ${p.code}${p.path ? ` ${p.path}` : ''}: ${p.message}`);
      // Signatures are shown when they matter: trusted keys were given, or something is signed.
      const show = trustedKeys !== undefined || r.signatures.some((c) => c.state !== 'unsigned');
      const signed = !show ? [] : r.signatures.map((c) => `  signature of ${c.slot === 0 ? 'the archive' : `base ${c.uuid}`}: ${formatSignature(c)}`);
      const onlySignatures = r.problems.every((p) => SIGNATURE_CODES.has(p.code));
      const exitCode = r.ok ? 0 : onlySignatures ? ERROR_TABLE.UNSIGNED.exit : ERROR_TABLE.CORRUPT.exit;
      return { json: r, text: [head, ...lines, ...signed].join('\n'), exitCode };
    } finally {
      bar.stop();
    }
  }, { open: { trustedKeys: undefined } });
}
