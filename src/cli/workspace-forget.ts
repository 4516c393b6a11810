/**
 * `hexz workspaces --forget ID|DIR`: unmount a workspace and delete its state directory — and with it
 * every change not committed. Refused while a commit runs, whoever runs it: a mounted workspace's
 * server is first asked to `retire` (it refuses while committing, and refuses every commit after), and
 * an unmounted one is deleted only under its lock, which a CLI committing it holds. The mountpoint
 * directory itself is left where it was, empty. See docs/workspaces.md.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError } from '../errors.js';
import { callControl } from '../workspace/overlay/control.js';
import { acquireLock, CONTROL_SOCKET, findOverlayWorkspace, lockHolder } from '../workspace/overlay/store.js';

/** How long the server may take to exit once its mount is gone. */
const EXIT_DEADLINE_MS = 20_000;

export interface Forgotten {
  id: string;
  state: string;
  mountpoint: string;
  unmounted: boolean;
}

export async function forgetWorkspace(home: string, where: string): Promise<Forgotten> {
  const w = await findOverlayWorkspace(home, where);
  if (!w) throw new HexzError('NOT_A_WORKSPACE', `no workspace ${where} under ${home} (hexz workspaces lists them)`, { path: where });
  const mp = w.config.mountpoint;
  const { findFuseMount, unmountFuse } = await import('../../fuse/unmount.js');
  let unmounted = false;
  const holder = await lockHolder(w.dir);
  if (holder !== undefined) {
    const answer = await callControl(path.join(w.dir, CONTROL_SOCKET), { op: 'retire' });
    // A live lock holder with no control socket is a CLI committing the unmounted workspace.
    if (!answer) throw new HexzError('WORKSPACE_BUSY', `cannot forget the workspace: process ${holder} is committing it (wait for it to end)`, { path: w.dir });
    // Gone already when the server is still on its way out (after `hexz unmount`).
    if (await findFuseMount(mp).catch(() => undefined)) {
      await unmountFuse(mp);
      unmounted = true;
    }
    const until = Date.now() + EXIT_DEADLINE_MS;
    while ((await lockHolder(w.dir)) !== undefined) {
      if (Date.now() > until) throw new HexzError('WORKSPACE_BUSY', `cannot forget the workspace: its server (pid ${holder}) has not exited since ${mp} was unmounted (files still open there?)`, { path: w.dir });
      await new Promise((r) => setTimeout(r, 50));
    }
  } else if (await findFuseMount(mp).catch(() => undefined)) {
    // The stale mount of a killed server.
    await unmountFuse(mp);
    unmounted = true;
  }
  const release = await acquireLock(w.dir, 'forget the workspace');
  try {
    await fs.rm(w.dir, { recursive: true, force: true });
  } finally {
    await release().catch(() => {});
  }
  return { id: w.config.id, state: w.dir, mountpoint: mp, unmounted };
}
