/** `hexz keygen FILE` and `hexz keygen --sign NAME`: see docs/cli.md ("Encryption", "Signing"). */
import { writeNewKeyFile } from '../../crypto/key-files.js';
import { writeSigningKeyPair } from '../../crypto/signing-keys.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(_ctx: CommandContext, [file]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  if (opts.sign) {
    const pair = await writeSigningKeyPair(file, { force: Boolean(opts.force) });
    return {
      json: pair,
      text: [
        `wrote the signing key ${pair.keyFile} (private, mode 0600: keep it secret) and its public key ${pair.publicKeyFile}`,
        `key id: ${pair.keyId}`,
        `readers trust it with --trusted-keys ${pair.publicKeyFile} (or a file or directory holding its line)`,
      ].join('\n'),
    };
  }
  await writeNewKeyFile(file, Boolean(opts.force));
  return { json: { keyFile: file }, text: `wrote a new 256-bit key to ${file} (mode 0600); keep it safe: without it the archives it encrypts cannot be read` };
}
