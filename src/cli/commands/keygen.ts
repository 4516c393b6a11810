/** `hexz keygen FILE`: see docs/cli.md ("Encryption"). */
import { writeNewKeyFile } from '../../crypto/key-files.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(_ctx: CommandContext, [file]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  await writeNewKeyFile(file, Boolean(opts.force));
  return { json: { keyFile: file }, text: `wrote a new 256-bit key to ${file} (mode 0600); keep it safe: without it the archives it encrypts cannot be read` };
}
