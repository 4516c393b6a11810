/** `hexz commit OUTPUT [-C DIR]`: see docs/cli.md, "Workspaces". */
import type { CodecName } from '../../codecs/index.js';
import { parseInteger } from '../config.js';
import { commitWorkspace } from '../../workspace/commit.js';
import { findWorkspace } from '../../workspace/state.js';
import type { CommandContext, CommandResult } from '../context.js';
import { parseMeta, summaryText } from './pack.js';

export async function run(ctx: CommandContext, [output]: string[], opts: Record<string, unknown>): Promise<CommandResult> {
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
