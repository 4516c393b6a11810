/** `hexz commit OUTPUT [-C DIR]`: see docs/cli.md, "Workspaces". */
import type { CodecName } from '../../codecs/index.js';
import { parseInteger } from '../config.js';
import { commitWorkspace } from '../../workspace/commit.js';
import { findWorkspace } from '../../workspace/state.js';
import path from 'node:path';
import type { OverlayCommitSummary } from '../../workspace/overlay/commit.js';
import { findOverlayWorkspace, type WorkspaceListing } from '../../workspace/overlay/store.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes } from '../format.js';
import { requestWorkspace, type CommitRequest } from '../workspace-server.js';
import { parseMeta, summaryText } from './pack.js';

/** Commit of an overlay workspace (docs/workspaces.md), by the process serving it when it is mounted. */
async function overlayRun(ctx: CommandContext, w: WorkspaceListing, output: string, opts: Record<string, unknown>): Promise<CommandResult> {
  const req: CommitRequest = {
    op: 'commit',
    // The server's working directory is not ours: a local output is named absolutely.
    output: /^[a-z][a-z0-9+.-]*:\/\//i.test(output) ? output : path.resolve(output),
    compression: opts.compression as CodecName,
    level: parseInteger(String(opts.level ?? 3), '--level', -7, 22),
    threads: opts.threads ? parseInteger(String(opts.threads), '--threads', 1, 256) : undefined,
    user: parseMeta(opts.meta as string[] | undefined),
    overwrite: Boolean(opts.force),
    allowEmpty: Boolean(opts.allowEmpty),
    signKeyFile: ctx.config.signKeyFile ? path.resolve(ctx.config.signKeyFile) : undefined,
  };
  const s = await requestWorkspace<OverlayCommitSummary>(ctx, w, req);
  const counts = new Map<string, number>();
  for (const c of s.status.changes) counts.set(c.kind, (counts.get(c.kind) ?? 0) + 1);
  const changed = [...counts].map(([k, n]) => `${n} ${k}`).join(', ') || 'no changes';
  return {
    json: { from: s.from, to: s.to, changes: s.status.changes, pack: s.pack, upperBytes: s.upperBytes, workspace: w.config.id, warnings: ctx.warnings },
    text: `committed ${changed} (read ${formatBytes(s.upperBytes)} of changed files; ${s.pack.reusedFiles} unchanged files taken from the base's index)\n${summaryText(s.pack)}\nHEAD is now ${s.to.url} (uuid ${s.to.uuid})`,
  };
}

export async function run(ctx: CommandContext, [output]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  const overlay = await findOverlayWorkspace(ctx.config.home, String(opts.dir ?? '.'));
  if (overlay) return overlayRun(ctx, overlay, output, opts);
  const ws = await findWorkspace(String(opts.dir ?? '.'));
  const signKey = await ctx.signKey();
  const trustedKeys = await ctx.trustedKeys();
  const bar = ctx.progress('committing', 0);
  try {
    const s = await commitWorkspace(ws, output, {
      compression: opts.compression as CodecName,
      level: parseInteger(String(opts.level ?? 3), '--level', -7, 22),
      threads: opts.threads ? parseInteger(String(opts.threads), '--threads', 1, 256) : undefined,
      key: await ctx.key(),
      signKey,
      trustedKeys,
      user: parseMeta(opts.meta as string[] | undefined),
      overwrite: Boolean(opts.force),
      allowEmpty: Boolean(opts.allowEmpty),
      storage: ctx.config.storage,
      ...ctx.config.bases,
      signal: ctx.signal,
      open: { cache: ctx.cache },
      onProgress: (phase, b, t) => bar.update(b, t),
      onWarning: (m) => ctx.warn(m),
    });
    bar.stop();
    const counts = new Map<string, number>();
    for (const c of s.status.changes) counts.set(c.kind, (counts.get(c.kind) ?? 0) + 1);
    const changed = [...counts].map(([k, n]) => `${n} ${k}`).join(', ') || 'no changes';
    return {
      json: { from: s.from, to: s.to, changes: s.status.changes, pack: s.pack, warnings: ctx.warnings },
      text: `committed ${changed} (${s.pack.reusedFiles} unchanged files taken from the base's index)\n${summaryText(s.pack)}\nHEAD is now ${s.to.url} (uuid ${s.to.uuid})`,
    };
  } finally {
    bar.stop();
  }
}
