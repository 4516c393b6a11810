// Placeholder until `hexz mount` lands (its issue is in progress); keeps the command table compiling.
import { HexzError } from '../../errors.js';
import type { CommandContext, CommandResult } from '../context.js';

export async function run(_ctx: CommandContext, _args: string[], _opts: Record<string, unknown>): Promise<CommandResult> {
  throw new HexzError('UNSUPPORTED', 'hexz mount is not available yet');
}
