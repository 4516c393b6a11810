/**
 * The operations table of a mount whose archive can be replaced under it: an https or s3 object
 * re-uploaded at the same URL. The storage backends pin the version they opened (ETag and size) and
 * answer `ARCHIVE_CHANGED` once it is gone, which on its own would leave a long-lived mount answering
 * EAGAIN forever. Here the first `ARCHIVE_CHANGED` reopens the archive (one reopen at a time; after a
 * failed one, the next attempt waits `REOPEN_RETRY_MS`), and then:
 *
 * - path operations (lookups, listings, open, readlink) are answered from the new version — one that
 *   failed because of the change is retried once on it, so the caller never sees the switch;
 * - file handles opened on the old version answer every further read with ESTALE ("Stale file
 *   handle"): their version's bytes are no longer fetchable, and new bytes must never be mixed into a
 *   file opened on the old version (nor enter the kernel's page cache for it);
 * - the old archive is closed.
 *
 * Each version has its own table from ./ops.ts (entry cache, handles); this layer only maps handles to
 * versions, so ./ops.ts and its read path stay as they are. Documented in docs/operations.md, "FUSE
 * mounts", "When the archive is replaced".
 */
import type { HexzError } from '../src/errors.js';
import type { Archive } from '../src/reader/archive.js';
import { createFuseOperations, type FuseOperations, type FuseOpsOptions } from './ops.js';

/** Pause after a failed reopen before the next `ARCHIVE_CHANGED` may try again. */
export const REOPEN_RETRY_MS = 5_000;
/** fuse-native hands fds to C as int32; handles are numbered 1..MAX_HANDLE and then wrap. */
const MAX_HANDLE = 0x7fff_ffff;

export interface ReopeningOptions extends FuseOpsOptions {
  /** Open the archive again from its location (the new version, if it was replaced). */
  reopen: () => Promise<Archive>;
  /** Lines about reopening; failures start with `hexz: error:`. */
  log?: (line: string) => void;
  /** Default `REOPEN_RETRY_MS`. */
  retryMs?: number;
}

export type ReopeningOperations = FuseOperations & {
  openHandles(): number;
  /** The archive now served (the last one opened). */
  archive(): Archive;
  /** 1 for the archive the mount started with, +1 per reopen. */
  generation(): number;
};

interface Version {
  n: number;
  archive: Archive;
  ops: ReturnType<typeof createFuseOperations>;
}

type Answer<R extends unknown[]> = (errno: number, ...rest: R) => void;

export function createReopeningOperations(initial: Archive, opts: ReopeningOptions): ReopeningOperations {
  const { errno } = opts;
  const EAGAIN = errno('EAGAIN') ?? -11;
  const ESTALE = errno('ESTALE') ?? -116;
  const EBADF = errno('EBADF') ?? -9;
  const retryMs = opts.retryMs ?? REOPEN_RETRY_MS;
  const handles = new Map<number, { version: Version; fd: number }>();
  let nextHandle = 1;
  let reopening: Promise<void> | undefined;
  let lastFailure = -Infinity;

  const version = (archive: Archive, n: number): Version => {
    const v = { n, archive } as Version;
    v.ops = createFuseOperations(archive, {
      ...opts,
      onError: (op, path, err) => {
        // A replaced version's failures (its storage closed under in-flight reads) are expected.
        if (v === current) opts.onError?.(op, path, err);
      },
    });
    // The reader tells when a read found the object replaced (Archive.onChange): reopen then.
    archive.onChange((err) => {
      if (v === current) changed(err);
    });
    return v;
  };
  let current = version(initial, 1);

  function changed(err: HexzError): void {
    if (reopening || Date.now() - lastFailure < retryMs) return;
    const old = current;
    reopening = (async () => {
      try {
        const archive = await opts.reopen();
        current = version(archive, old.n + 1);
        const what = archive.uuid === old.archive.uuid ? 'the same archive' : `archive ${archive.uuid}, was ${old.archive.uuid}`;
        opts.log?.(`hexz: the archive was replaced (${err.message}); reopened it: ${what}. Files opened before now answer ESTALE`);
        void old.archive.close().catch(() => {});
      } catch (e) {
        lastFailure = Date.now();
        opts.log?.(`hexz: error: the archive was replaced and reopening it failed: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        reopening = undefined;
      }
    })();
  }

  /**
   * Run a path operation on the current version. If it failed because the archive changed (EAGAIN),
   * or while a reopen was under way, it is run once more on the new version, when there is one.
   */
  function onCurrent<R extends unknown[]>(call: (v: Version, done: Answer<R>) => void, answer: (v: Version, errno: number, rest: R) => void): void {
    const first = current;
    call(first, (e, ...rest) => {
      if (e >= 0 || (e !== EAGAIN && first === current && !reopening)) return answer(first, e, rest);
      void (reopening ?? Promise.resolve()).then(() => {
        const next = current;
        if (next === first) return answer(first, e, rest);
        call(next, (e2, ...rest2) => answer(next, e2, rest2));
      });
    });
  }

  function allocateHandle(): number {
    for (;;) {
      const fd = nextHandle;
      nextHandle = nextHandle >= MAX_HANDLE ? 1 : nextHandle + 1;
      if (!handles.has(fd)) return fd;
    }
  }

  const latest = () => current.ops;

  return {
    openHandles: () => handles.size,
    archive: () => current.archive,
    generation: () => current.n,

    getattr(path, cb) {
      onCurrent<[Parameters<Parameters<FuseOperations['getattr']>[1]>[1]]>(
        (v, done) => v.ops.getattr(path, done),
        (_v, e, [st]) => cb(e, st),
      );
    },
    readdir(path, cb) {
      onCurrent<[string[]?, Parameters<Parameters<FuseOperations['readdir']>[1]>[2]?]>(
        (v, done) => v.ops.readdir(path, done),
        (_v, e, [names, stats]) => cb(e, names, stats),
      );
    },
    readlink(path, cb) {
      onCurrent<[string?]>(
        (v, done) => v.ops.readlink(path, done),
        (_v, e, [target]) => cb(e, target),
      );
    },
    open(path, flags, cb) {
      onCurrent<[number?]>(
        (v, done) => v.ops.open(path, flags, done),
        (v, e, [fd]) => {
          if (e < 0 || fd === undefined) return cb(e);
          const h = allocateHandle();
          handles.set(h, { version: v, fd });
          cb(0, h);
        },
      );
    },
    read(path, fd, buf, len, pos, cb) {
      const h = handles.get(fd);
      if (!h) return cb(EBADF);
      const v = h.version;
      if (v !== current) return cb(ESTALE);
      // EAGAIN: this read found the archive replaced. Either way no bytes of a replaced version are
      // handed out once it is replaced (the buffer is only used when a byte count is returned).
      v.ops.read(path, h.fd, buf, len, pos, (r) => cb(v !== current || r === EAGAIN ? ESTALE : r));
    },
    release(path, fd, cb) {
      const h = handles.get(fd);
      handles.delete(fd);
      if (!h) return cb(0);
      h.version.ops.release(path, h.fd, cb);
    },
    statfs: (path, cb) => latest().statfs(path, cb),

    write: (...a) => latest().write(...a),
    create: (...a) => latest().create(...a),
    truncate: (...a) => latest().truncate(...a),
    ftruncate: (...a) => latest().ftruncate(...a),
    unlink: (...a) => latest().unlink(...a),
    rename: (...a) => latest().rename(...a),
    link: (...a) => latest().link(...a),
    symlink: (...a) => latest().symlink(...a),
    mkdir: (...a) => latest().mkdir(...a),
    rmdir: (...a) => latest().rmdir(...a),
    mknod: (...a) => latest().mknod(...a),
    chmod: (...a) => latest().chmod(...a),
    chown: (...a) => latest().chown(...a),
    utimens: (...a) => latest().utimens(...a),
    setxattr: (...a) => latest().setxattr(...a),
    removexattr: (...a) => latest().removexattr(...a),
  };
}
