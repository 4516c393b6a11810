/**
 * Mounting a writable workspace (docs/workspaces.md): the overlay operations (./overlay-ops.ts) over
 * an open `OverlaySession`, served by the same lifecycle as a read-only mount (./mount.ts,
 * `serveMount`: readiness, watching for an unmount from elsewhere, auto_unmount so a killed server
 * leaves no stale mount).
 *
 * Options differ from the read-only mount's where writing needs it: no `ro`; kernel caches of
 * entries and attributes kept for a second only (the tree changes; the kernel learns of changes made
 * through the mount anyway, and one second bounds anything else, such as a commit switching HEAD);
 * no `kernel_cache` (page cache dropped at open, so a copy-up is always seen); `hard_remove`, so an
 * unlinked open file is not renamed to `.fuse_hidden…` (which would be journaled as a change).
 */
import type { OverlaySession } from '../src/workspace/overlay/session.js';
import { checkFuseAvailable, type FuseCheckOptions, type FuseInstance } from './availability.js';
import { prepareMountpoint, rateLimited, redactLocation, redactUrls, serveMount, type ArchiveMount, type MountLogKind } from './mount.js';
import { createOverlayOperations } from './overlay-ops.js';

/** Kernel cache lifetime of entries and attributes of a workspace, in seconds. */
export const WORKSPACE_CACHE_SECONDS = 1;

export interface WorkspaceMountOptions extends FuseCheckOptions {
  allowOther?: boolean;
  readyFile?: string;
  signal?: AbortSignal;
  log?: (line: string, kind: MountLogKind) => void;
}

/** The -o options of a workspace mount. */
export function workspaceMountOptions(opts: { id: string; allowOther?: boolean; version?: 3 | 2 }): string[] {
  const t = WORKSPACE_CACHE_SECONDS;
  return [
    'default_permissions',
    ...(opts.allowOther ? ['allow_other'] : []),
    'auto_unmount',
    ...(opts.version === 2 ? ['nonempty'] : []),
    `entry_timeout=${t}`,
    `attr_timeout=${t}`,
    `negative_timeout=${t}`,
    'subtype=hexz',
    `fsname=hexz-workspace:${opts.id}`,
  ];
}

/** Mount the workspace of `session` at its mountpoint; resolves once it is ready. */
export async function mountWorkspace(session: OverlaySession, opts: WorkspaceMountOptions = {}): Promise<ArchiveMount> {
  const logAs = opts.log ?? (() => {});
  const log = (line: string) => logAs(line, line.startsWith('hexz: error') ? 'error' : 'info');
  const binding = await checkFuseAvailable(opts);
  if (binding.fallback) log(`hexz: FUSE 3 is not usable (${binding.fallback}); using fuse-native (libfuse2)`);
  const mp = await prepareMountpoint(session.config.mountpoint, log);
  const { Fuse, version } = binding;
  const logError = rateLimited((line) => logAs(line, 'error'));
  let instance: FuseInstance | undefined;
  const ops = createOverlayOperations(session, {
    errno: (name) => (typeof Fuse[name] === 'number' ? (Fuse[name] as number) : undefined),
    context: () => instance?.context?.(),
    onError: (op, p, err) => logError(`hexz: error: ${op} ${p}: ${redactUrls(err.message)}`),
  });
  const label = redactLocation(session.config.head.url);
  return serveMount({
    binding,
    mountpoint: mp,
    options: workspaceMountOptions({ id: session.config.id, allowOther: opts.allowOther, version }),
    ops,
    fuseOptions: { hardRemove: true },
    readyLine: `hexz: workspace ${session.config.id} mounted at ${mp} over ${label} (writable)`,
    readyFile: opts.readyFile,
    readyInfo: { workspace: session.config.id, archive: label },
    logAs,
    signal: opts.signal,
    onInstance: (fuse) => (instance = fuse),
  });
}
