/**
 * One error hierarchy for the whole project.
 *
 * Library code throws `HexzError` with a `code` from `ERROR_TABLE` and typed context (archive, path,
 * offset, backend, url …). Every front end maps the code through the same table: the CLI to an exit
 * code, the gateway to an HTTP status, the FUSE client to an errno. No front end parses messages.
 */

/** Context attached to an error; every field optional, all JSON-serialisable. */
export interface ErrorContext {
  archive?: string;
  path?: string;
  offset?: number;
  length?: number;
  size?: number;
  structure?: string;
  backend?: string;
  url?: string;
  expected?: string;
  actual?: string;
  status?: number;
  /** What the user can do about it, for the front end to word (the CLI names its flags). */
  remedy?: Remedy;
  [key: string]: unknown;
}

/**
 * What a user can do about an error. Library messages never name a command-line flag: they set a
 * remedy, and each front end words it (src/cli/remedies.ts for the CLI).
 */
export type Remedy =
  /** Replace an existing destination (one object). */
  | 'overwrite'
  /** Replace existing files (several). */
  | 'overwrite-files'
  /** Give a key or a passphrase. */
  | 'key'
  /** Give a key file (the archive was encrypted with one). */
  | 'key-file'
  /** Give a passphrase (the archive was encrypted with one). */
  | 'passphrase'
  /** Give a key to encrypt with. */
  | 'encryption-key'
  /** Say where a moved base is. */
  | 'base-location'
  /** Commit although nothing changed. */
  | 'allow-empty'
  /** Write without checking whether the destination exists. */
  | 'unchecked-overwrite'
  /** Encrypt (a delta of an encrypted base). */
  | 'encrypt'
  /** Listen on another port. */
  | 'other-port'
  /** Sign the archive (it is unsigned). */
  | 'sign'
  /** Trust the signer's key, if it is to be trusted (the signer is unknown). */
  | 'trust-signer'
  /** Write the signed copy elsewhere (the archive cannot be rewritten in place). */
  | 'sign-output'
  /** Make a version 2 archive of it (version 1 has no signature slot). */
  | 'repack'
  /** Give a signing key. */
  | 'sign-key';

interface ErrorKind {
  /** Process exit code of the CLI. 1 is reserved for unexpected failures. */
  exit: number;
  /** HTTP status the gateway answers with. */
  http: number;
  /** errno name the FUSE client answers with. */
  errno: string;
  /** One line a user can act on, used when no more specific message is given. */
  summary: string;
}

/**
 * The one table. Exit codes are grouped: 2 usage, 3–9 input archives, 10–19 storage, 20+ local
 * filesystem / environment and workspaces, 27 refusals of archives not signed by a trusted key.
 */
export const ERROR_TABLE = {
  INVALID_ARGUMENT: { exit: 2, http: 400, errno: 'EINVAL', summary: 'invalid argument' },
  UNSAFE_PATH: { exit: 2, http: 400, errno: 'EINVAL', summary: 'path escapes its root or is malformed' },
  NOT_AN_ARCHIVE: { exit: 3, http: 422, errno: 'EIO', summary: 'not a hexz archive' },
  TRUNCATED: { exit: 3, http: 422, errno: 'EIO', summary: 'archive is truncated (no valid trailer)' },
  UNSUPPORTED_VERSION: { exit: 3, http: 422, errno: 'EIO', summary: 'archive format version not supported' },
  CORRUPT: { exit: 4, http: 500, errno: 'EIO', summary: 'archive is corrupt' },
  KEY_REQUIRED: { exit: 5, http: 403, errno: 'EACCES', summary: 'archive is encrypted: a key is needed' },
  WRONG_KEY: { exit: 5, http: 403, errno: 'EACCES', summary: 'wrong key for this archive' },
  NOT_ENCRYPTED: { exit: 5, http: 403, errno: 'EACCES', summary: 'archive is not encrypted, but a key is required for it' },
  AUTH_FAILED: { exit: 4, http: 500, errno: 'EIO', summary: 'authentication failed: data was tampered with' },
  BASE_MISSING: { exit: 6, http: 502, errno: 'EIO', summary: 'a base archive of this delta is missing' },
  BASE_MISMATCH: { exit: 6, http: 502, errno: 'EIO', summary: 'a base archive is not the one this delta was made from' },
  PATH_NOT_FOUND: { exit: 7, http: 404, errno: 'ENOENT', summary: 'no such path in the archive' },
  NOT_A_FILE: { exit: 7, http: 404, errno: 'EISDIR', summary: 'not a regular file' },
  NOT_A_DIRECTORY: { exit: 7, http: 404, errno: 'ENOTDIR', summary: 'not a directory' },
  SYMLINK_LOOP: { exit: 7, http: 404, errno: 'ELOOP', summary: 'too many levels of symbolic links' },
  OUT_OF_RANGE: { exit: 2, http: 416, errno: 'EINVAL', summary: 'range outside the object' },
  UNAUTHORIZED: { exit: 11, http: 401, errno: 'EACCES', summary: 'authentication required' },
  PRECONDITION_FAILED: { exit: 9, http: 412, errno: 'EAGAIN', summary: 'precondition failed (the content changed)' },
  ARCHIVE_NOT_FOUND: { exit: 8, http: 404, errno: 'ENOENT', summary: 'archive not found' },
  ARCHIVE_CHANGED: { exit: 9, http: 503, errno: 'EAGAIN', summary: 'archive changed while it was being read' },
  STORAGE_IO: { exit: 10, http: 502, errno: 'EIO', summary: 'storage read failed' },
  STORAGE_DENIED: { exit: 11, http: 502, errno: 'EACCES', summary: 'storage refused access' },
  STORAGE_UNAVAILABLE: { exit: 10, http: 503, errno: 'EIO', summary: 'the storage root does not exist or cannot be reached' },
  TIMEOUT: { exit: 12, http: 504, errno: 'ETIMEDOUT', summary: 'storage timed out' },
  UNSUPPORTED: { exit: 13, http: 501, errno: 'ENOTSUP', summary: 'not supported' },
  ABORTED: { exit: 130, http: 499, errno: 'EINTR', summary: 'aborted' },
  EXISTS: { exit: 20, http: 409, errno: 'EEXIST', summary: 'destination exists (use --force)' },
  NO_SPACE: { exit: 21, http: 507, errno: 'ENOSPC', summary: 'no space left on device' },
  PERMISSION: { exit: 22, http: 403, errno: 'EACCES', summary: 'permission denied' },
  READ_ONLY: { exit: 23, http: 405, errno: 'EROFS', summary: 'read-only' },
  FUSE_UNAVAILABLE: { exit: 24, http: 500, errno: 'ENOSYS', summary: 'FUSE is not available' },
  NOT_A_WORKSPACE: { exit: 25, http: 400, errno: 'EINVAL', summary: 'not inside a hexz workspace (hexz checkout makes one)' },
  NOTHING_TO_COMMIT: { exit: 26, http: 409, errno: 'EINVAL', summary: 'nothing to commit: the workspace matches its archive' },
  NOT_EMPTY: { exit: 20, http: 409, errno: 'ENOTEMPTY', summary: 'directory not empty' },
  WORKSPACE_BUSY: { exit: 28, http: 409, errno: 'EBUSY', summary: 'the workspace is in use (mounted, committing, or a file is open for writing)' },
  UNSIGNED: { exit: 27, http: 403, errno: 'EACCES', summary: 'archive is not signed, and a trusted signature is required' },
  UNTRUSTED_SIGNER: { exit: 27, http: 403, errno: 'EACCES', summary: 'archive is signed by a key that is not trusted' },
  BAD_SIGNATURE: { exit: 27, http: 403, errno: 'EACCES', summary: 'archive signature does not verify: it was altered after signing' },
  INTERNAL: { exit: 1, http: 500, errno: 'EIO', summary: 'internal error' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_TABLE;

/** The error every library function throws. */
export class HexzError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message?: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message ?? ERROR_TABLE[code].summary, options);
    this.name = 'HexzError';
    this.code = code;
    this.context = context;
  }

  /** Row of `ERROR_TABLE` for this error. */
  get kind(): ErrorKind {
    return ERROR_TABLE[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; context: ErrorContext } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

/** Type guard, optionally for one code. */
export function isHexzError(err: unknown, code?: ErrorCode): err is HexzError {
  return err instanceof HexzError && (code === undefined || err.code === code);
}

/** Shorthand for a corrupt-structure error with the structure named. */
export function corrupt(structure: string, detail: string, context: ErrorContext = {}): HexzError {
  return new HexzError('CORRUPT', `corrupt ${structure}: ${detail}`, { structure, ...context });
}

const ERRNO_CODES: Record<string, ErrorCode> = {
  ENOENT: 'PATH_NOT_FOUND',
  EEXIST: 'EXISTS',
  ENOSPC: 'NO_SPACE',
  EDQUOT: 'NO_SPACE',
  EACCES: 'PERMISSION',
  EPERM: 'PERMISSION',
  EROFS: 'READ_ONLY',
  ENOTDIR: 'NOT_A_DIRECTORY',
  // A name the destination file system cannot hold (a component over NAME_MAX, 255 bytes on Linux).
  ENAMETOOLONG: 'UNSAFE_PATH',
  EISDIR: 'NOT_A_FILE',
  ENOTEMPTY: 'NOT_EMPTY',
  EBUSY: 'WORKSPACE_BUSY',
  // fs.rm/fs.cp report a directory they will not remove or copy with Node's own code.
  ERR_FS_EISDIR: 'NOT_A_FILE',
  ETIMEDOUT: 'TIMEOUT',
  ABORT_ERR: 'ABORTED',
};

/**
 * Wrap any thrown value as a HexzError. Node system errors (errno codes) map to their natural code;
 * anything unknown becomes `INTERNAL` with the original kept as `cause`.
 */
export function toHexzError(err: unknown, context: ErrorContext = {}): HexzError {
  if (err instanceof HexzError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e === 'object') {
    if (e.name === 'AbortError') return new HexzError('ABORTED', 'aborted', context, { cause: err });
    const code = e.code ? ERRNO_CODES[e.code] : undefined;
    if (code) {
      return new HexzError(code, `${ERROR_TABLE[code].summary}: ${e.message}`, { ...context, errno: e.code }, { cause: err });
    }
  }
  const message = e instanceof Error ? e.message : String(err);
  return new HexzError('INTERNAL', message, context, { cause: err });
}

/** Throw `ABORTED` if the signal fired. */
export function throwIfAborted(signal: AbortSignal | undefined, context: ErrorContext = {}): void {
  if (signal?.aborted) throw new HexzError('ABORTED', 'aborted', context, { cause: signal.reason });
}
