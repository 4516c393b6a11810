/** `hexz workspaces [--forget ID|DIR]`: the overlay workspaces under HEXZ_HOME (~/.hexz). See docs/workspaces.md. */
import { listWorkspaces } from '../../workspace/overlay/store.js';
import type { CommandContext, CommandResult } from '../context.js';
import { forgetWorkspace } from '../workspace-forget.js';

export async function run(ctx: CommandContext, _args: string[], opts: Record<string, unknown> = {}): Promise<CommandResult> {
  if (typeof opts.forget === 'string') {
    const f = await forgetWorkspace(ctx.config.home, opts.forget);
    return { json: { forgotten: f }, text: `forgot workspace ${f.id}${f.unmounted ? ` (unmounted ${f.mountpoint})` : ''}: deleted ${f.state}` };
  }
  const all = await listWorkspaces(ctx.config.home);
  const rows = all.map((w) => ({
    id: w.config.id,
    mountpoint: w.config.mountpoint,
    head: w.config.head,
    generation: w.config.generation,
    mounted: w.servedBy !== undefined,
    pid: w.servedBy,
    state: w.dir,
    updated: w.config.updated,
  }));
  const text = rows.length
    ? rows.map((r) => `${r.id}  ${r.mounted ? `mounted (pid ${r.pid})` : 'not mounted'}  ${r.mountpoint}  on ${r.head.url}`).join('\n')
    : `no workspaces in ${ctx.config.home}`;
  return { json: { home: ctx.config.home, workspaces: rows }, text };
}
