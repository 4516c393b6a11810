/**
 * The process that serves a workspace's overlay mount, and how the CLI starts it: `hexz checkout`
 * (and `--resume`) spawns `hexz … checkout --resume ID --foreground` detached, its output going to
 * the workspace's mount.log, and returns once the mount is ready (the ready file appears) — or fails
 * with the server's own error line. The server holds the workspace's lock, the open session and the
 * control socket (status, commit) for as long as it is mounted. See docs/workspaces.md.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ERROR_TABLE, HexzError, type ErrorCode } from '../errors.js';
import { loadTrustedKeys, readSigningKeyFile } from '../crypto/signing-keys.js';
import { commitOverlay } from '../workspace/overlay/commit.js';
import { callControl, serveControl, type ControlCall, type ControlRequest } from '../workspace/overlay/control.js';
import { OverlaySession } from '../workspace/overlay/session.js';
import { overlayStatus } from '../workspace/overlay/status.js';
import { acquireLock, CONTROL_SOCKET, lockHolder, MOUNT_LOG, READY_FILE, type WorkspaceListing } from '../workspace/overlay/store.js';
import { workspaceIdFunction } from '../workspace/status.js';
import type { CommandContext } from './context.js';
import type { CodecName } from '../codecs/index.js';
import type { GlobalFlags } from './config.js';

/** How long `hexz checkout` waits for the mount to be ready (opening a remote archive included). */
const READY_DEADLINE_MS = 60_000;
const POLL_MS = 25;

/** Global options passed on to the server, with the command-line flag of each. */
const VALUE_FLAGS: Array<[keyof GlobalFlags, string, 'path' | 'value']> = [
  ['cacheSize', '--cache-size', 'value'],
  ['s3Endpoint', '--s3-endpoint', 'value'],
  ['s3Region', '--s3-region', 'value'],
  ['keyFile', '--key-file', 'path'],
  ['passphraseFile', '--passphrase-file', 'path'],
  ['trustedKeys', '--trusted-keys', 'path'],
  ['baseDir', '--base-dir', 'path'],
  ['baseHosts', '--base-hosts', 'value'],
  ['decodeThreads', '--decode-threads', 'value'],
  ['storageTimeout', '--storage-timeout', 'value'],
  ['httpTimeout', '--http-timeout', 'value'],
  ['httpRetries', '--http-retries', 'value'],
];

/** The global flags worth remembering for --resume: no HTTP headers (they may carry credentials). */
export function rememberedFlags(flags: GlobalFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, , kind] of VALUE_FLAGS) {
    const v = flags[key];
    if (typeof v === 'string') out[key] = kind === 'path' ? path.resolve(v) : v;
  }
  if (flags.s3PathStyle) out.s3PathStyle = true;
  if (flags.baseMap?.length) out.baseMap = flags.baseMap;
  return out;
}

function argsOf(flags: Record<string, unknown>): string[] {
  const args: string[] = [];
  for (const [key, flag] of VALUE_FLAGS) if (typeof flags[key] === 'string') args.push(flag, flags[key] as string);
  if (flags.s3PathStyle) args.push('--s3-path-style');
  for (const m of (flags.baseMap as string[] | undefined) ?? []) args.push('--base-map', m);
  return args;
}

/** The code of a CLI exit code (the first row of the error table with it). */
function codeOfExit(exit: number | null): ErrorCode {
  const row = Object.entries(ERROR_TABLE).find(([, k]) => k.exit === exit);
  return (row?.[0] as ErrorCode | undefined) ?? 'INTERNAL';
}

/**
 * Start the server of a workspace and wait until its mount is ready. `flags` are the global flags
 * to run it with (remembered ones merged with this command's).
 */
export async function startWorkspaceServer(w: WorkspaceListing, flags: Record<string, unknown>, opts: { fuse?: string; allowOther?: boolean }): Promise<{ pid: number; seconds: number }> {
  const t0 = performance.now();
  const ready = path.join(w.dir, READY_FILE);
  await fs.rm(ready, { force: true });
  const log = await fs.open(path.join(w.dir, MOUNT_LOG), 'a', 0o600);
  let logStart = 0;
  let child;
  try {
    logStart = (await log.stat()).size;
    const args = [process.argv[1], ...argsOf(flags), 'checkout', '--resume', w.config.id, '--foreground', ...(opts.fuse ? ['--fuse', opts.fuse] : []), ...(opts.allowOther ? ['--allow-other'] : [])];
    // HTTP headers may carry credentials: through the environment, never the (world-readable) argv.
    const headers = [...(process.env.HEXZ_HTTP_HEADERS ? [process.env.HEXZ_HTTP_HEADERS] : []), ...((flags.httpHeader as string[] | undefined) ?? [])].join('\n');
    const env = { ...process.env, HEXZ_PROGRESS: '0', ...(headers ? { HEXZ_HTTP_HEADERS: headers } : {}) };
    child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log.fd, log.fd], cwd: '/', env });
  } finally {
    await log.close();
  }
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code ?? -1));
  child.unref();
  const until = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (await fs.stat(ready).then(() => true, () => false)) return { pid: child.pid!, seconds: (performance.now() - t0) / 1000 };
    if (exited !== undefined) {
      const text = (await fs.readFile(path.join(w.dir, MOUNT_LOG), 'utf8').catch(() => '')).slice(logStart);
      const line = text.split('\n').reverse().find((l) => l.startsWith('hexz: error: ')) ?? `the workspace server exited with code ${exited}`;
      throw new HexzError(codeOfExit(exited), line.replace(/^hexz: error: /, ''), { path: w.config.mountpoint });
    }
    if (Date.now() > until) throw new HexzError('TIMEOUT', `the workspace mount at ${w.config.mountpoint} was not ready within ${READY_DEADLINE_MS / 1000} s (see ${path.join(w.dir, MOUNT_LOG)})`, { path: w.config.mountpoint });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Commit options as they travel over the control socket (files as absolute paths). */
export interface CommitRequest extends ControlRequest {
  op: 'commit';
  output: string;
  compression?: CodecName;
  level?: number;
  threads?: number;
  user?: Record<string, string>;
  overwrite?: boolean;
  allowEmpty?: boolean;
  signKeyFile?: string;
}

/**
 * Run a status or commit request on an open session: in the server (`call` is the client's
 * connection: its interruption and where its warnings go), or in the CLI when unmounted.
 */
export async function handleRequest(ctx: CommandContext, session: OverlaySession, req: ControlRequest, call?: ControlCall): Promise<unknown> {
  const key = await ctx.key();
  if (req.op === 'ping') return { pid: process.pid };
  if (req.op === 'retire') return session.retire();
  if (req.op === 'status') return overlayStatus(session, () => workspaceIdFunction({ root: session.config.mountpoint, state: session.config }, key));
  if (req.op === 'commit') {
    const r = req as CommitRequest;
    return commitOverlay(session, r.output, {
      compression: r.compression,
      level: r.level,
      threads: r.threads,
      user: r.user,
      overwrite: r.overwrite,
      allowEmpty: r.allowEmpty,
      key,
      signKey: r.signKeyFile ? await readSigningKeyFile(r.signKeyFile) : undefined,
      trustedKeys: ctx.config.trustedKeys ? await loadTrustedKeys(ctx.config.trustedKeys) : undefined,
      storage: ctx.config.storage,
      ...ctx.config.bases,
      signal: call?.signal ?? ctx.signal,
      onWarning: (m) => {
        ctx.warn(m); // the CLI's stderr, or the server's mount.log
        call?.warn(m);
      },
      openHead: (location) => ctx.open(location),
    });
  }
  throw new HexzError('INVALID_ARGUMENT', `unknown request ${String(req.op)}`);
}

/** Serve the workspace's mount from this process until it is unmounted (`--foreground`). */
export async function serveWorkspace(ctx: CommandContext, w: WorkspaceListing, opts: { fuse?: string; allowOther?: boolean }): Promise<{ ended: string }> {
  const release = await acquireLock(w.dir, 'mount the workspace');
  try {
    const archive = await ctx.open(w.config.head.url);
    let session: OverlaySession;
    try {
      session = await OverlaySession.open(w.dir, archive, { writable: true, extentCopyUpMin: ctx.config.extentCopyUpMin, compactMinLines: ctx.config.journalCompactMin });
    } catch (err) {
      await archive.close();
      throw err;
    }
    const closeControl = await serveControl(path.join(w.dir, CONTROL_SOCKET), (req, call) => handleRequest(ctx, session, req, call));
    try {
      const { mountWorkspace } = await import('../../fuse/overlay-mount.js');
      const mount = await mountWorkspace(session, {
        fuse: opts.fuse as '3' | '2' | 'auto' | undefined,
        allowOther: opts.allowOther,
        readyFile: path.join(w.dir, READY_FILE),
        signal: ctx.signal,
        log: (line) => ctx.stderr.write(`${line}\n`),
      });
      return { ended: await mount.ended };
    } finally {
      await closeControl();
      await session.close();
      await session.archive.close();
      if (session.archive !== archive) await archive.close();
    }
  } finally {
    await release();
  }
}

/** Is the workspace served (mounted) right now? */
export async function servedBy(w: WorkspaceListing): Promise<number | undefined> {
  return lockHolder(w.dir);
}

/**
 * Run a request on a workspace: through its control socket when it is mounted, else on a session
 * opened in this process (a commit then takes the workspace's lock, so nothing mounts it meanwhile).
 */
export async function requestWorkspace<T>(ctx: CommandContext, w: WorkspaceListing, req: ControlRequest): Promise<T> {
  // Ctrl-C interrupts a request the server runs too; its warnings are this command's.
  const answer = await callControl<T>(path.join(w.dir, CONTROL_SOCKET), req, { signal: ctx.signal, onWarning: (m) => ctx.warn(m) });
  if (answer) return answer.result;
  const writes = req.op === 'commit';
  const release = writes ? await acquireLock(w.dir, 'commit') : undefined;
  try {
    const archive = await ctx.open(w.config.head.url);
    let session: OverlaySession | undefined;
    try {
      session = await OverlaySession.open(w.dir, archive, { writable: writes });
      return (await handleRequest(ctx, session, req)) as T;
    } finally {
      await session?.close();
      if (session && session.archive !== archive) await session.archive.close();
      await archive.close();
    }
  } finally {
    await release?.();
  }
}
