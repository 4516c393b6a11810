/** `hexz status [DIR]`: see docs/cli.md, "Workspaces". */
import { findWorkspace, readIndex, writeIndex } from '../../workspace/state.js';
import { scanWorkspace, type Change } from '../../workspace/status.js';
import { findOverlayWorkspace, type WorkspaceListing } from '../../workspace/overlay/store.js';
import type { OverlayStatus } from '../../workspace/overlay/status.js';
import type { CommandContext, CommandResult } from '../context.js';
import { requestWorkspace, servedBy } from '../workspace-server.js';
import { formatBytes } from '../format.js';

function describe(c: Change): string {
  const name = `${c.path}${c.type === 'directory' ? '/' : ''}`;
  switch (c.kind) {
    case 'modified':
      return `modified:   ${name}` + (c.type === 'file' && c.size !== c.previousSize ? ` (${formatBytes(c.previousSize ?? 0)} → ${formatBytes(c.size ?? 0)})` : '');
    case 'renamed':
      return `renamed:    ${c.from} → ${name}`;
    case 'mode':
      return `mode:       ${name} (${(c.previousMode ?? 0).toString(8)} → ${(c.mode ?? 0).toString(8)})`;
    case 'typechange':
      return `typechange: ${name} (now a ${c.type})`;
    default:
      return `${`${c.kind}:`.padEnd(11)} ${name}`;
  }
}

/** Status of an overlay workspace (docs/workspaces.md): from its dirty set, by the process serving it. */
async function overlayRun(ctx: CommandContext, w: WorkspaceListing): Promise<CommandResult> {
  const scan = await requestWorkspace<OverlayStatus>(ctx, w, { op: 'status' });
  const report = { root: scan.root, head: scan.head, clean: scan.clean, changes: scan.changes, unchanged: scan.unchanged, hashedFiles: scan.hashedFiles, hashedBytes: scan.hashedBytes, workspace: w.config.id, mounted: Boolean(await servedBy(w)) };
  const head = `on ${scan.head.url} (uuid ${scan.head.uuid})`;
  const text = scan.clean
    ? `${head}\nclean: the workspace matches its archive`
    : [head, ...scan.changes.map((c) => `  ${describe(c)}`), `${scan.changes.length} changed`].join('\n');
  return { json: { ...report, warnings: ctx.warnings }, text };
}

export async function run(ctx: CommandContext, [dir]: string[]): Promise<CommandResult> {
  const overlay = await findOverlayWorkspace(ctx.config.home, dir ?? '.');
  if (overlay) return overlayRun(ctx, overlay);
  const ws = await findWorkspace(dir ?? '.');
  const bar = ctx.progress('hashing changed files', 0);
  try {
    const scan = await scanWorkspace(ws, { key: await ctx.key(), signal: ctx.signal, onWarning: (m) => ctx.warn(m), onProgress: (b) => bar.update(b, 0) });
    bar.stop();
    // Like git status: remember the stats of files that were hashed and found unchanged.
    if (scan.refreshed > 0) {
      const index = await readIndex(ws.root);
      for (const [p, e] of scan.matching) index.set(p, e);
      await writeIndex(ws.root, index.values());
    }
    const report = { root: scan.root, head: scan.head, clean: scan.clean, changes: scan.changes, unchanged: scan.unchanged, hashedFiles: scan.hashedFiles, hashedBytes: scan.hashedBytes };
    const head = `on ${scan.head.url} (uuid ${scan.head.uuid})`;
    const text = scan.clean
      ? `${head}\nclean: the workspace matches its archive (${scan.unchanged} paths)`
      : [head, ...scan.changes.map((c) => `  ${describe(c)}`), `${scan.changes.length} changed, ${scan.unchanged} unchanged`].join('\n');
    return { json: { ...report, warnings: ctx.warnings }, text };
  } finally {
    bar.stop();
  }
}
