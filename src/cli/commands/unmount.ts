/**
 * `hexz unmount MOUNTPOINT`: unmount a hexz (or any FUSE) mount; a busy one is retried for a few
 * seconds and then detached lazily, a stale one (its server killed) is cleared. See docs/cli.md.
 */
import type { CommandContext, CommandResult } from '../context.js';

export async function run(_ctx: CommandContext, [mountpoint]: string[], _opts: Record<string, unknown>): Promise<CommandResult> {
  const { unmountFuse } = await import('../../../fuse/unmount.js');
  const r = await unmountFuse(mountpoint);
  const how = r.stale ? ' (stale mount cleared)' : r.lazy ? ' (lazily: files were still open)' : '';
  return { json: r, text: `unmounted ${r.mountpoint}${how}` };
}
