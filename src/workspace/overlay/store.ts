/**
 * Where an overlay workspace keeps its state: `<home>/workspaces/<id>/` (home is `~/.hexz`, or
 * `HEXZ_HOME`, resolved by the CLI), never inside the tree. Layout (docs/workspaces.md):
 *
 *   config.json       HEAD (URL, UUID, index hash), mountpoint, generation, chunking, key parameters
 *   gen-<g>/journal   the namespace journal of generation g (./journal.ts)
 *   gen-<g>/upper/    upper files (copied-up and new content), named by the journal's records
 *   lock              pid and start time of the process serving the mount (one mount per workspace)
 *   control.sock      that process's control socket (status, commit)
 *   mount.log         its log
 *
 * A commit moves to generation g+1 by replacing config.json (temp file, fsync, rename, fsync of the
 * directory): that one rename is the commit point, so HEAD and the (now empty) journal and upper
 * layer always change together. Generations other than the current one are leftovers of a crash and
 * are deleted when the workspace is next opened.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, toHexzError } from '../../errors.js';
import type { WorkspaceState } from '../state.js';

const CONFIG_FILE = 'config.json';
const LOCK_FILE = 'lock';
export const CONTROL_SOCKET = 'control.sock';
export const MOUNT_LOG = 'mount.log';
export const READY_FILE = 'ready';
const CONFIG_VERSION = 1;

/** config.json: the materialised workspace's state plus where and at which generation it is mounted. */
export interface OverlayConfig extends WorkspaceState {
  id: string;
  /** Canonical absolute path of the mountpoint (the workspace's directory). */
  mountpoint: string;
  generation: number;
  /** Global options the mount was started with that are not secrets (paths), reused by --resume. */
  flags: Record<string, unknown>;
}

export function workspacesDir(home: string): string {
  return path.join(home, 'workspaces');
}

export function stateDirOf(home: string, id: string): string {
  return path.join(workspacesDir(home), id);
}

export function generationDir(dir: string, generation: number): string {
  return path.join(dir, `gen-${generation}`);
}

export function upperDir(dir: string, generation: number): string {
  return path.join(generationDir(dir, generation), 'upper');
}

export function journalFile(dir: string, generation: number): string {
  return path.join(generationDir(dir, generation), 'journal');
}

/** fsync a directory, so the renames and creations in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replace a file atomically and durably: temp file, fsync, rename, fsync of the directory. */
export async function replaceDurably(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

export async function readConfig(dir: string): Promise<OverlayConfig> {
  const file = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw toHexzError(err, { path: file });
  }
  let c: OverlayConfig;
  try {
    c = JSON.parse(text) as OverlayConfig;
  } catch (err) {
    throw new HexzError('CORRUPT', `workspace config ${file} is not valid JSON`, { path: file }, { cause: err });
  }
  if (c.version !== CONFIG_VERSION) throw new HexzError('UNSUPPORTED_VERSION', `workspace config ${file} has version ${c.version}; this hexz supports ${CONFIG_VERSION}`, { path: file });
  return c;
}

export async function writeConfig(dir: string, c: OverlayConfig): Promise<void> {
  await replaceDurably(path.join(dir, CONFIG_FILE), `${JSON.stringify(c, null, 2)}\n`);
}

/** Make the state directory of a new workspace (its generation 0 empty) and return its id. */
export async function createWorkspaceDir(home: string, make: (id: string) => OverlayConfig): Promise<{ id: string; dir: string; config: OverlayConfig }> {
  await fs.mkdir(workspacesDir(home), { recursive: true, mode: 0o700 });
  const id = randomBytes(6).toString('hex');
  const dir = stateDirOf(home, id);
  await fs.mkdir(dir, { mode: 0o700 });
  const config = { ...make(id), id, generation: 0 };
  await fs.mkdir(upperDir(dir, 0), { recursive: true });
  await writeConfig(dir, config);
  return { id, dir, config };
}

/** Remove generations other than the current one (left by a crash around a commit) and stale temp files. */
export async function cleanGenerations(dir: string, current: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (/^gen-\d+$/.test(name) && name !== `gen-${current}`) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
  const upper = upperDir(dir, current);
  await fs.mkdir(upper, { recursive: true });
  for (const name of await fs.readdir(upper)) if (name.startsWith('.tmp-') || name.endsWith('.tmp')) await fs.rm(path.join(upper, name), { force: true });
}

/**
 * Start time of a live process (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid
 * apart. A zombie is not alive: a killed server whose parent has not reaped it (a container's PID 1
 * often never does) still has its /proc entry.
 */
async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The pid holding the workspace's lock, if that process is alive. */
export async function lockHolder(dir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const [pid, started] = text.trim().split(' ');
  const n = Number(pid);
  return Number.isInteger(n) && n > 0 && (await startTime(n)) === started ? n : undefined;
}

/**
 * Take the workspace's lock (one process serves or commits a workspace at a time); a lock left by a
 * dead process is taken over. Returns the function that releases it.
 */
export async function acquireLock(dir: string, what: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE);
  const mine = `${process.pid} ${await startTime(process.pid)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(file, 'wx', 0o600);
      try {
        await fh.writeFile(mine);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return async () => {
        const now = await fs.readFile(file, 'utf8').catch(() => '');
        if (now === mine) await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toHexzError(err, { path: file });
    }
    const holder = await lockHolder(dir);
    if (holder) throw new HexzError('WORKSPACE_BUSY', `cannot ${what}: the workspace is in use by process ${holder}`, { path: dir });
    await fs.rm(file, { force: true }); // its process is gone
  }
  throw new HexzError('WORKSPACE_BUSY', `cannot ${what}: could not take the lock ${file}`, { path: dir });
}

export interface WorkspaceListing {
  dir: string;
  config: OverlayConfig;
  /** Pid of the process serving its mount, when it is mounted. */
  servedBy?: number;
}

/** Every workspace under `home`. */
export async function listWorkspaces(home: string): Promise<WorkspaceListing[]> {
  let names: string[];
  try {
    names = await fs.readdir(workspacesDir(home));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw toHexzError(err, { path: workspacesDir(home) });
  }
  const out: WorkspaceListing[] = [];
  for (const id of names.sort()) {
    const dir = stateDirOf(home, id);
    const config = await readConfig(dir).catch(() => undefined);
    if (config) out.push({ dir, config, servedBy: await lockHolder(dir) });
  }
  return out;
}

/**
 * The workspace a path is in (its mountpoint or below), or the one with this id. Paths are compared
 * textually after resolving: the caller never stats inside a mount it serves.
 */
export async function findOverlayWorkspace(home: string, where: string): Promise<WorkspaceListing | undefined> {
  const all = await listWorkspaces(home);
  const byId = all.find((w) => w.config.id === where);
  if (byId) return byId;
  let abs = path.resolve(where);
  try {
    abs = await fs.realpath(abs);
  } catch {
    // a path that does not resolve (a stale mount) is compared as given
  }
  let best: WorkspaceListing | undefined;
  for (const w of all) {
    const mp = w.config.mountpoint;
    if ((abs === mp || abs.startsWith(`${mp}/`)) && (!best || mp.length > best.config.mountpoint.length)) best = w;
  }
  return best;
}
