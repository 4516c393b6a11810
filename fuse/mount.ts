/**
 * Lifecycle of a read-only FUSE mount of an archive: check that FUSE is usable, load a FUSE binding
 * (lazily: no other command ever loads a native addon), mount with options suited to an immutable
 * tree, announce readiness (log line and optional ready file), then serve until a signal, an explicit
 * `unmount()` or someone else unmounting it. Operations live in ./ops.ts, unmounting in ./unmount.ts,
 * the checks of FUSE and the diagnoses of a refused mount in ./availability.ts. `serveMount` is the
 * lifecycle on its own, for any operations table: the workspace overlay (./overlay-mount.ts) uses it
 * too. Documented in docs/operations.md, "FUSE mounts".
 *
 * The binding: libfuse3 (./fuse3.ts over fuse/native, reads of up to 1 MiB) by default, fuse-native
 * (libfuse2, 128 KiB reads) when the libfuse3 addon was not built or libfuse3.so.3 or fusermount3 is
 * missing, said in one log line. `fuse: '3' | '2'` forces one (the CLI's --fuse / HEXZ_FUSE). Both
 * take the same operations table (./ops.ts, ./reopen.ts).
 *
 * Why this file is longer than 400 lines: it is the one place that knows the whole life of a mount —
 * mountpoint checks, options, readiness, the ways it ends — which read best in order.
 *
 * Rules this module keeps:
 * - The process that serves a mount never makes a synchronous fs call on it (the call would wait for
 *   an answer only this event loop can give: deadlock). Readiness is checked with an async stat.
 * - `auto_unmount`: fusermount keeps a small watchdog process that unmounts when our FUSE channel
 *   closes, so even SIGKILL leaves no stale mount behind.
 * - Errors are `HexzError`s; a missing FUSE (device, library, helper, the capability to mount) is
 *   `FUSE_UNAVAILABLE` with what to install; any other refusal is diagnosed and typed truthfully.
 */
import { promises as fs } from 'node:fs';
import { HexzError, toHexzError } from '../src/errors.js';
import type { Archive } from '../src/reader/archive.js';
import { createFuseOperations, type FuseOperations, type FuseOpsOptions } from './ops.js';
import { checkFuseAvailable, diagnoseMountFailure, FUSE_DEVICE, unavailable, type FuseBinding, type FuseCheckOptions, type FuseClass, type FuseInstance } from './availability.js';
import { createReopeningOperations } from './reopen.js';
export { checkFuseAvailable, diagnoseMountFailure, FUSE_DEVICE, FUSE_INSTALL_HINT, type FuseBinding, type FuseChoice, type FuseCheckOptions } from './availability.js';
import { canonicalMountpoint, DEFAULT_UNMOUNT_GRACE_MS, findMount, findMountById, isFuseType, isStaleMount, unmountFuse, type MountInfo } from './unmount.js';

/**
 * Kernel cache lifetime of entries, attributes and negative lookups, in seconds, for an archive that
 * cannot change while mounted (a local file: the mount reads the file it opened, whatever is renamed
 * over its path), so the only limit is memory the kernel reclaims anyway; an hour means a directory
 * walk costs one FUSE round trip per entry per hour.
 */
export const KERNEL_CACHE_SECONDS = 3600;
/**
 * The same lifetime for a mount that switches to a new version when its remote archive is replaced
 * (see ./reopen.ts). Neither binding invalidates the kernel's caches at a switch, so this bounds how
 * long after a switch the kernel may still answer `stat`, sizes and lookups of paths it had already
 * seen from the old version; file contents are revalidated at every open (`auto_cache`).
 */
export const REOPENING_CACHE_SECONDS = 60;
/**
 * The binding answers ETIMEDOUT for an operation our code has not answered within this time: the
 * gateway's default request deadline (DEFAULT_REQUEST_TIMEOUT_MS), so a read stuck on storage ends alike everywhere. Storage
 * stalls end well before (a progress timeout per attempt, docs/operations.md "Storage timeouts"); this
 * guards against anything else holding a kernel request, e.g. an origin that trickles a byte a second.
 */
export const OPERATION_TIMEOUT_MS = 30_000;
/**
 * Kernel readahead for the mount, in KiB (the per-mount bdi's read_ahead_kb; the kernel's default is
 * 128). FUSE 2 caps one read request at 128 KiB, so a larger readahead window is what lets the kernel
 * keep several requests in flight for a sequential reader: measured here, warm `dd bs=1M` went from
 * ~1.4 to ~2.0 GB/s at 1 MiB with random 4 KiB reads unchanged; 4 MiB was slower again. Stays below
 * REORDER_SLACK (cache/readahead.ts) so reordered requests still count as sequential.
 */
export const KERNEL_READAHEAD_KB = 1024;
/** How long the kernel may take to send INIT after the mount call before we give up. */
const MOUNT_TIMEOUT_MS = 30_000;
/** How often the mount table is checked to notice an unmount done by someone else. */
const WATCH_INTERVAL_MS = 1_000;
/** fuse-native copies the option string into a 1,024-byte buffer (the libfuse3 binding 4,096); keep the fsname well inside it. */
const MAX_FSNAME = 200;
/** Errors logged per second before the rest are counted instead (a failing backend must not flood). */
const ERROR_LOGS_PER_SECOND = 10;


export interface MountOptions extends FuseCheckOptions {
  /** `allow_other`: other users (and, in Kubernetes, other containers' users) may read the mount. */
  allowOther?: boolean;
  /** Created (atomically) once the mount answers; removed again when it ends. */
  readyFile?: string;
  /** Unmount when it fires (the CLI wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /**
   * Log lines (no newline); stderr in the CLI. `kind` tells the one readiness line and errors from
   * the rest (the CLI's --quiet keeps only those two).
   */
  log?: (line: string, kind: MountLogKind) => void;
  /**
   * How the archive is named in logs, the ready file and the mount table (default: its URL); always
   * passed through `redactLocation`.
   */
  label?: string;
  /**
   * Open the archive again from its location. Given, a mount of a remote archive (not a local file)
   * switches to the new version when the object is replaced (see ./reopen.ts); archives opened this
   * way are closed by the mount, a replaced one at the switch (the caller's too: closing it again is
   * harmless) and the last one when the mount ends.
   */
  reopen?: () => Promise<Archive>;
  /** How long a busy mount is retried before it is detached lazily (default 5 s). */
  unmountGraceMs?: number;
}

/** What a log line is: the readiness line, an error, or anything else. */
export type MountLogKind = 'ready' | 'error' | 'info';

/** Why a mount ended. */
export type MountEnd = 'signal' | 'unmount' | 'external';

export interface ArchiveMount {
  /** Canonical absolute path of the mountpoint. */
  readonly mountpoint: string;
  /** Resolves when the mount is gone (after our own unmount, or when someone else unmounted it). */
  readonly ended: Promise<MountEnd>;
  /** Unmount (busy: retried for the grace period, then lazily) and resolve `ended` with 'unmount'. */
  unmount(): Promise<void>;
}


/**
 * An archive location fit for the world-readable mount table, logs and the ready file: a URL loses
 * its `user:password@` and its query string and fragment (presigned S3 URLs carry their credential
 * and signature there: X-Amz-Credential, X-Amz-Signature, X-Amz-Security-Token); a path stays as is.
 */
export function redactLocation(location: string): string {
  // String surgery rather than URL parsing, which would re-encode the rest (a space becomes %20).
  const m = /^([a-z][a-z0-9+.-]+:\/\/)([^/?#]*)(.*)$/is.exec(location);
  if (!m) return location;
  const host = m[2].slice(m[2].lastIndexOf('@') + 1);
  return `${m[1]}${host}${m[3].replace(/[?#].*$/s, '')}`;
}

/** `redactLocation` applied to every URL inside a text (error messages quote the URL they read). */
export function redactUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]+:\/\/[^\s'"<>()]+/gi, (url) => redactLocation(url));
}

/** Make a string safe as a FUSE option value (no commas, backslashes, spaces), bounded in length. */
function optionValue(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9._:/@+=-]/g, '_');
  return clean.length > MAX_FSNAME ? `…${clean.slice(-MAX_FSNAME)}` : clean;
}

/**
 * The FUSE mount options (`-o`), see docs/operations.md: read-only; kernel permission checks on the
 * stored modes; auto-unmount; page cache kept across opens (`kernel_cache`: the content never
 * changes; `auto_cache` when the mount reopens a replaced archive); long entry/attribute/negative
 * caching (shorter when it reopens); a mountpoint with files in it is mounted over (they are hidden
 * while mounted, and untouched: the mount is read-only), as a sidecar over a pre-populated volume
 * needs — libfuse2 wants `nonempty` for that, libfuse3 always allows it and refuses the option; a
 * `fuse.hexz` type and the archive as source in the mount table.
 */
export function fuseMountOptions(opts: { allowOther?: boolean; label: string; reopens?: boolean; version?: 3 | 2 }): string[] {
  const t = opts.reopens ? REOPENING_CACHE_SECONDS : KERNEL_CACHE_SECONDS;
  return [
    'ro',
    'default_permissions',
    ...(opts.allowOther ? ['allow_other'] : []),
    'auto_unmount',
    ...(opts.version === 2 ? ['nonempty'] : []),
    // A mount that may switch versions keeps a file's pages only while libfuse sees the same size and
    // mtime at open (checked at every open: ac_attr_timeout=0); a fixed archive keeps them always.
    ...(opts.reopens ? ['auto_cache', 'ac_attr_timeout=0'] : ['kernel_cache']),
    `entry_timeout=${t}`,
    `attr_timeout=${t}`,
    `negative_timeout=${t}`,
    'subtype=hexz',
    `fsname=hexz:${optionValue(redactLocation(opts.label))}`,
  ];
}

/**
 * fuse-native builds its option string from a fixed list that lacks `ro` and `negative_timeout`;
 * this subclass supplies ours instead (its `_fuseOptions` hook is stable in the pinned 2.2.6, and
 * ./fuse3.ts keeps the same hook).
 */
function fuseWithOptions(Fuse: FuseClass, options: string[]): new (mnt: string, ops: object, opts: Record<string, unknown>) => FuseInstance {
  const Base = Fuse as unknown as new (...args: unknown[]) => FuseInstance;
  return class extends Base {
    _fuseOptions(): string {
      return `-o${options.join(',')}`;
    }
  };
}

/** Stale mounts cleared from one mountpoint before giving up (restarts stack at most a few). */
const MAX_STALE_MOUNTS = 8;

/**
 * Canonical mountpoint, checked: it must be an existing directory. It may already be a mount point —
 * in Kubernetes the shared volume always is one (an emptyDir is a bind mount), so is a bind mount —
 * and the FUSE mount then goes on top. Only a FUSE mount showing at the path is a problem: a live
 * one is refused, a stale one (a killed server) is cleared, which is what a restarted sidecar needs.
 */
export async function prepareMountpoint(input: string, log: (line: string) => void): Promise<string> {
  const mp = await canonicalMountpoint(input);
  for (let cleared = 0; ; cleared++) {
    const top = await findMount(mp);
    if (!top || !isFuseType(top.fstype)) break;
    if (!(await isStaleMount(mp))) {
      throw new HexzError('INVALID_ARGUMENT', `${mp} is already a live FUSE mount (${top.fstype} from ${top.source}); unmount it first (hexz unmount ${mp})`, { path: mp });
    }
    if (cleared >= MAX_STALE_MOUNTS) throw new HexzError('INVALID_ARGUMENT', `${mp} still has stale FUSE mounts after clearing ${cleared}`, { path: mp });
    log(`hexz: clearing a stale mount at ${mp}`);
    await unmountFuse(mp, { mount: top });
  }
  let st;
  try {
    st = await fs.stat(mp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new HexzError('INVALID_ARGUMENT', `mountpoint ${mp} does not exist (create the directory first)`, { path: mp });
    throw toHexzError(err, { path: mp });
  }
  if (!st.isDirectory()) throw new HexzError('INVALID_ARGUMENT', `mountpoint ${mp} is not a directory`, { path: mp });
  return mp;
}

export function rateLimited(log: (line: string) => void): (line: string) => void {
  let windowStart = 0;
  let count = 0;
  let suppressed = 0;
  return (line) => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      if (suppressed) log(`hexz: ${suppressed} more errors not shown`);
      windowStart = now;
      count = 0;
      suppressed = 0;
    }
    if (count++ < ERROR_LOGS_PER_SECOND) log(line);
    else suppressed++;
  };
}


function mountNow(fuse: FuseInstance, mp: string, library: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new HexzError('TIMEOUT', `mounting ${mp}: the kernel did not answer within ${MOUNT_TIMEOUT_MS / 1000} s (FUSE INIT never arrived)`, { path: mp })),
      MOUNT_TIMEOUT_MS,
    );
    fuse.mount((err) => {
      clearTimeout(timer);
      if (!err) return resolve();
      diagnoseMountFailure(mp, err, FUSE_DEVICE, library).then(reject, reject);
    });
  });
}

/**
 * Best effort: raise the kernel readahead of the mount (needs root and a writable /sys; containers
 * without them keep the default, which is only slower). The bdi is named by the mount's device
 * number, as /proc/self/mountinfo lists it, so the mount itself is never touched.
 */
async function raiseKernelReadahead(device: string): Promise<boolean> {
  try {
    if (!/^\d+:\d+$/.test(device)) return false;
    await fs.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, String(KERNEL_READAHEAD_KB));
    return true;
  } catch {
    return false;
  }
}

/** Write the ready file atomically, so a probe never sees a half-written one. */
async function writeReadyFile(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, content);
  await fs.rename(tmp, file);
}

/**
 * Mount `archive` read-only at `mountpoint` and serve it from this process. Resolves once the mount
 * is live — INIT received from the kernel, the mount listed in the mount table, and an async stat of
 * its root answered by our own getattr — after writing the ready file and logging
 * `hexz: mounted <archive> at <mountpoint> (read-only)`. The returned handle's `ended` resolves when
 * the mount goes away. Throws `FUSE_UNAVAILABLE` (with install instructions) when FUSE cannot be used
 * and `INVALID_ARGUMENT` for a bad mountpoint.
 */
export async function mountArchive(archive: Archive, mountpoint: string, opts: MountOptions = {}): Promise<ArchiveMount> {
  const logAs = opts.log ?? (() => {});
  const log = (line: string) => logAs(line, line.startsWith('hexz: error') ? 'error' : 'info');
  const label = redactLocation(opts.label ?? archive.url);
  const binding = await checkFuseAvailable(opts);
  const { Fuse, version } = binding;
  if (binding.fallback) log(`hexz: FUSE 3 is not usable (${binding.fallback}); using fuse-native (libfuse2: reads of 128 KiB)`);
  const mp = await prepareMountpoint(mountpoint, log);
  // A ready file left by an earlier run must not report this mount as ready before it is.
  if (opts.readyFile) await fs.rm(opts.readyFile, { force: true });

  const logError = rateLimited((line) => logAs(line, 'error'));
  const opsOptions: FuseOpsOptions = {
    errno: (name) => (typeof Fuse[name] === 'number' ? (Fuse[name] as number) : undefined),
    onError: (op, p, err) => logError(`hexz: error: ${op} ${p}: ${redactUrls(err.message)}`),
  };
  // A local archive file is read through the descriptor opened before mounting: replacing the file
  // never reaches the mount. A remote object can be replaced under it; then the mount reopens it.
  const reopen = opts.reopen && !archive.url.startsWith('file:') ? opts.reopen : undefined;
  const ops: FuseOperations & { archive?: () => Archive } = reopen
    ? createReopeningOperations(archive, { ...opsOptions, reopen, log: (line) => log(redactUrls(line)) })
    : createFuseOperations(archive, opsOptions);
  // Archives this mount opened itself (reopens) are closed when it ends; the caller's is the caller's.
  const closeReopened = async () => {
    const last = ops.archive?.();
    if (last && last !== archive) await last.close().catch(() => {});
  };
  return serveMount({
    binding,
    mountpoint: mp,
    options: fuseMountOptions({ allowOther: opts.allowOther, label, reopens: Boolean(reopen), version }),
    ops,
    readyLine: `hexz: mounted ${label} at ${mp} (read-only)`,
    readyFile: opts.readyFile,
    readyInfo: { archive: label },
    logAs,
    signal: opts.signal,
    unmountGraceMs: opts.unmountGraceMs,
    onEnd: closeReopened,
  });
}

export interface ServeMountOptions {
  binding: FuseBinding;
  /** Canonical and checked (`prepareMountpoint`). */
  mountpoint: string;
  /** The -o options of the mount. */
  options: string[];
  /** The operations table. */
  ops: object;
  /** Extra options of the binding (hardRemove…). */
  fuseOptions?: Record<string, unknown>;
  /** The one readiness line. */
  readyLine: string;
  readyFile?: string;
  /** Written into the ready file besides the mountpoint and pid. */
  readyInfo?: Record<string, unknown>;
  logAs: (line: string, kind: MountLogKind) => void;
  signal?: AbortSignal;
  unmountGraceMs?: number;
  /** Runs once the mount is gone, before `ended` resolves. */
  onEnd?: () => Promise<void>;
  /** Hears the binding instance before mounting (libfuse3's context() lives there). */
  onInstance?: (fuse: FuseInstance) => void;
}

/**
 * Mount an operations table at a prepared mountpoint and serve it until it ends: INIT received,
 * the mount listed in the mount table, an async stat of its root answered by our own getattr, the
 * ready file written and the readiness line logged; then watch for an unmount from elsewhere, and
 * unmount on `signal` or `unmount()`. The read-only mount and the workspace overlay share it.
 */
export async function serveMount(o: ServeMountOptions): Promise<ArchiveMount> {
  const { logAs, mountpoint: mp, binding } = o;
  const { Fuse, version } = binding;
  const log = (line: string) => logAs(line, line.startsWith('hexz: error') ? 'error' : 'info');
  const opts = { readyFile: o.readyFile, signal: o.signal, unmountGraceMs: o.unmountGraceMs };
  const closeReopened = o.onEnd ?? (async () => {});
  const HexzFuse = fuseWithOptions(Fuse, o.options);
  const fuse = new HexzFuse(mp, o.ops, { timeout: OPERATION_TIMEOUT_MS, ...o.fuseOptions });
  o.onInstance?.(fuse);
  await mountNow(fuse, mp, version === 3 ? 'libfuse3' : 'libfuse2');

  // Our mount is the one now on top at the path. It is tracked by its mount ID and device from here
  // on, so a bind mount or volume underneath never passes for it (nor another FUSE mount later).
  let own: MountInfo | undefined;
  try {
    own = await findMount(mp);
    if (!own || own.fstype !== 'fuse.hexz') throw unavailable(`the mount of ${mp} does not show in the mount table`);
    // Async on purpose: this stat is answered by our own getattr, on this event loop.
    const st = await fs.stat(mp);
    if (!st.isDirectory()) throw new HexzError('INTERNAL', `the root of the mount at ${mp} is not a directory`, { path: mp });
    await raiseKernelReadahead(own.device);
    if (opts.readyFile) {
      await writeReadyFile(opts.readyFile, `${JSON.stringify({ mountpoint: mp, ...o.readyInfo, pid: process.pid })}\n`);
    }
  } catch (err) {
    // Only our own mount; if it never showed up, the auto-unmount watchdog removes it once we exit.
    if (own?.fstype === 'fuse.hexz') await unmountFuse(mp, { graceMs: 0, mount: own }).catch(() => {});
    throw err;
  }
  const self = { id: own.id, device: own.device };
  const stillMounted = async () => Boolean(await findMountById(self.id, mp, self.device));
  logAs(o.readyLine, 'ready');

  let resolveEnded!: (why: MountEnd) => void;
  let rejectEnded!: (err: unknown) => void;
  const ended = new Promise<MountEnd>((resolve, reject) => {
    resolveEnded = resolve;
    rejectEnded = reject;
  });
  let finishing: Promise<void> | undefined;
  let checking = false;
  const end = async (why: MountEnd) => {
    const served = fuse.stats?.();
    // What the kernel asked for: how large its read requests were (docs/operations.md, "FUSE mounts").
    if (served?.reads) {
      const large = served.readBuckets.slice(6).reduce((a, b) => a + b, 0);
      log(`hexz: served ${served.reads} reads through libfuse3, the largest ${served.maxRead / 1024} KiB, ${large} of them over 128 KiB`);
    }
    await closeReopened();
    resolveEnded(why);
  };

  const cleanup = async () => {
    clearInterval(watch);
    opts.signal?.removeEventListener('abort', onAbort);
    if (opts.readyFile) await fs.rm(opts.readyFile, { force: true }).catch(() => {});
  };

  const stop = (why: MountEnd): Promise<void> => {
    finishing ??= (async () => {
      await cleanup();
      try {
        const r = await unmountFuse(mp, { graceMs: opts.unmountGraceMs ?? DEFAULT_UNMOUNT_GRACE_MS, mount: self });
        log(`hexz: unmounted ${mp}${r.lazy ? ' (lazily: files were still open)' : ''}`);
        await end(why);
      } catch (err) {
        // Someone else may have unmounted it meanwhile; that is an end too.
        if (!(await stillMounted().catch(() => true))) {
          log(`hexz: unmounted ${mp}`);
          await end(why);
        } else {
          rejectEnded(err);
          throw err;
        }
      }
    })();
    return finishing;
  };

  // Noticing `hexz unmount`, `fusermount -u` or `umount` from elsewhere: the server then exits too.
  // It is this exact mount that must be gone, whatever else is mounted at the path.
  const watch = setInterval(() => {
    if (checking || finishing) return;
    checking = true;
    stillMounted()
      .then(async (mounted) => {
        if (mounted || finishing) return;
        finishing = cleanup();
        await finishing;
        log(`hexz: ${mp} was unmounted`);
        await end('external');
      })
      .catch(() => {})
      .finally(() => (checking = false));
  }, WATCH_INTERVAL_MS);

  const onAbort = () => void stop('signal').catch(() => {});
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  return {
    mountpoint: mp,
    ended,
    unmount: () => stop('unmount'),
  };
}
