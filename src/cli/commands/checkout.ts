/**
 * `hexz checkout ARCHIVE DIR [--copy]`, `hexz checkout --resume DIR|ID`: see docs/cli.md,
 * "Workspaces", and docs/workspaces.md. By default DIR becomes a writable overlay mount of the
 * archive, served by a background process, ready when this returns; `--copy` (and any machine where
 * FUSE is not usable, said in one line) extracts a materialised copy instead.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, isHexzError, toHexzError } from '../../errors.js';
import { checkout, stateFor } from '../../workspace/checkout.js';
import { createWorkspaceDir, findOverlayWorkspace, listWorkspaces, stateDirOf, type WorkspaceListing } from '../../workspace/overlay/store.js';
import type { GlobalFlags } from '../config.js';
import type { CommandContext, CommandResult } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';
import { rememberedFlags, servedBy, serveWorkspace, startWorkspaceServer } from '../workspace-server.js';

async function copyCheckout(ctx: CommandContext, location: string, dir: string): Promise<CommandResult> {
  const archive = await ctx.open(location);
  const bar = ctx.progress('checking out', archive.root.logicalSize);
  try {
    const s = await checkout(archive, dir, { signal: ctx.signal, onProgress: (b, t) => bar.update(b, t) });
    bar.stop();
    return {
      json: { ...s, mode: 'copy' },
      text: `checked out ${s.archive} (uuid ${s.uuid}) into ${s.destination}: ${s.files} files, ${s.directories} directories, ${s.symlinks} symlinks (${formatBytes(s.bytes)}) in ${formatSeconds(s.seconds)}`,
    };
  } finally {
    bar.stop();
    await archive.close();
  }
}

/** A new or empty directory for the mount, canonical. */
async function prepareDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const abs = await fs.realpath(dir);
  const names = await fs.readdir(abs);
  if (names.length > 0) throw new HexzError('EXISTS', `${abs} is not empty: a workspace is checked out into a new or empty directory`, { path: abs });
  return abs;
}

async function resume(ctx: CommandContext, where: string, opts: Record<string, unknown>): Promise<CommandResult> {
  const w = await findOverlayWorkspace(ctx.config.home, where);
  if (!w) throw new HexzError('NOT_A_WORKSPACE', `no workspace is at ${path.resolve(where)} or has the id ${where} (hexz workspaces lists them)`, { path: where });
  const fuse = opts.fuse as string | undefined;
  const allowOther = Boolean(opts.allowOther);
  if (opts.foreground) {
    const r = await serveWorkspace(ctx, w, { fuse, allowOther });
    return { json: { workspace: w.config.id, mountpoint: w.config.mountpoint, ...r } };
  }
  const pid = await servedBy(w);
  if (pid) return { json: { workspace: w.config.id, mountpoint: w.config.mountpoint, pid, already: true }, text: `workspace ${w.config.id} is already mounted at ${w.config.mountpoint} (process ${pid})` };
  // Best effort: a stale mount left by a killed server is cleared by the server itself.
  await fs.mkdir(w.config.mountpoint, { recursive: true }).catch(() => {});
  const flags = { ...w.config.flags, ...rememberedFlags(opts as GlobalFlags), httpHeader: (opts as GlobalFlags).httpHeader };
  const started = await startWorkspaceServer(w, flags, { fuse, allowOther });
  return {
    json: { workspace: w.config.id, mountpoint: w.config.mountpoint, pid: started.pid, head: w.config.head },
    text: `mounted workspace ${w.config.id} at ${w.config.mountpoint} over ${w.config.head.url} in ${formatSeconds(started.seconds)}`,
  };
}

export async function run(ctx: CommandContext, args: string[], opts: Record<string, unknown>): Promise<CommandResult> {
  if (opts.resume) {
    if (args.length !== 1) throw new HexzError('INVALID_ARGUMENT', 'hexz checkout --resume takes one argument: the workspace directory or id');
    return resume(ctx, args[0], opts);
  }
  if (args.length !== 2) throw new HexzError('INVALID_ARGUMENT', 'hexz checkout takes an archive and a directory (or --resume DIR|ID)');
  const [location, dir] = args;
  if (opts.copy) return copyCheckout(ctx, location, dir);
  const fuse = opts.fuse as string | undefined;
  try {
    const { checkFuseAvailable } = await import('../../../fuse/availability.js');
    await checkFuseAvailable({ fuse: fuse as '3' | '2' | 'auto' | undefined });
  } catch (err) {
    if (!isHexzError(err, 'FUSE_UNAVAILABLE')) throw err;
    ctx.stderr.write(`hexz: FUSE is not usable here, so this is a full copy (--copy): ${err.message.split('. ')[0]}\n`);
    return copyCheckout(ctx, location, dir);
  }

  const archive = await ctx.open(location);
  let w: WorkspaceListing;
  try {
    const mountpoint = await prepareDir(dir);
    const taken = (await listWorkspaces(ctx.config.home)).find((x) => x.config.mountpoint === mountpoint);
    if (taken) throw new HexzError('EXISTS', `${mountpoint} is already workspace ${taken.config.id} (hexz checkout --resume ${mountpoint} mounts it again)`, { path: mountpoint });
    const made = await createWorkspaceDir(ctx.config.home, (id) => ({ ...stateFor(archive), id, mountpoint, generation: 0, flags: rememberedFlags(opts as GlobalFlags) }));
    w = { dir: made.dir, config: made.config };
  } finally {
    await archive.close();
  }
  try {
    const started = await startWorkspaceServer(w, { ...w.config.flags, httpHeader: (opts as GlobalFlags).httpHeader }, { fuse, allowOther: Boolean(opts.allowOther) });
    return {
      json: { mode: 'overlay', workspace: w.config.id, mountpoint: w.config.mountpoint, state: w.dir, pid: started.pid, archive: w.config.head.url, uuid: w.config.head.uuid, seconds: started.seconds },
      text: `checked out ${w.config.head.url} (uuid ${w.config.head.uuid}) at ${w.config.mountpoint} in ${formatSeconds(started.seconds)}: a writable overlay, nothing copied (workspace ${w.config.id}, state in ${w.dir})`,
    };
  } catch (err) {
    // Nothing was ever written to it: forget the workspace rather than leave a broken one behind.
    await fs.rm(stateDirOf(ctx.config.home, w.config.id), { recursive: true, force: true }).catch(() => {});
    throw toHexzError(err);
  }
}
