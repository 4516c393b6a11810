/**
 * `sign`: give an existing archive a signature (docs/format.md, section 3.1; docs/cli.md, "Signing").
 * Only the trailer changes: the body is copied byte for byte and a new trailer, signed, replaces the
 * last bytes. UUID and root hash stay the same, so every delta built on the archive still opens.
 *
 * - Local → local (in place, or to another local file): the body is copied by the kernel
 *   (`fs.copyFile`: a reflink where the filesystem can, else copy_file_range) into a temporary file
 *   beside the output, the new trailer is written over the copy's last bytes, then fsync and an
 *   atomic rename. Readers of the old file keep reading the inode they opened.
 * - Anything else (a remote source or output): the archive streams through this process into the
 *   output's writer (an S3 multipart upload), trailer last. A remote archive is never rewritten in
 *   place implicitly: that takes an explicit output (the same URL, with `overwrite`).
 *
 * Signing needs no encryption key: the signed bytes are the plaintext trailer. It checks that the root
 * matches the trailer's hash (the signature vouches for that root) but not the content: verify first.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs, unlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWriter, openStorage, sameObject, toStorageUrl, type StorageOptions } from '../../storage/index.js';
import type { Storage, StorageWriter } from '../../storage/types.js';
import { encodeSignedTrailer, type SigningKey } from '../crypto/signatures.js';
import { HexzError, corrupt, throwIfAborted, toHexzError } from '../errors.js';
import { bytesEqual, toHex } from '../format/bytes.js';
import { MAX_TRAILER_SIZE, SIG_NONE } from '../format/constants.js';
import { formatUuid, type Trailer } from '../format/header.js';
import { hash } from '../hash.js';
import { readTrailer, trailerBytesOf } from '../reader/open.js';

/** Bytes of the body read per request when streaming (large enough for S3 parts, small enough for memory). */
const STREAM_PIECE_BYTES = 8 * 1024 * 1024;

export interface SignOptions {
  key: SigningKey;
  /** Where the signed archive goes; default: replace the source itself (local files only). */
  output?: string;
  /** Replace an existing output other than the source. */
  overwrite?: boolean;
  storage?: StorageOptions;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

export interface SignSummary {
  archive: string;
  output: string;
  uuid: string;
  /** The new signer's key id, hex. */
  keyId: string;
  /** The signer key id before, hex; undefined when it was unsigned. */
  previousKeyId?: string;
  /** True when the archive already carried this exact signature: nothing was written. */
  unchanged: boolean;
  archiveBytes: number;
  seconds: number;
}

/** Read the trailer, refuse what cannot be signed, and check the root against the trailer's hash. */
async function readSignable(storage: Storage, signal?: AbortSignal): Promise<{ trailer: Trailer; bytes: Uint8Array; size: number }> {
  const { trailer, tail, stat } = await readTrailer(storage, MAX_TRAILER_SIZE, { signal });
  if (trailer.version < 2) {
    throw new HexzError('UNSUPPORTED_VERSION', `${storage.url} is a format version ${trailer.version} archive, which has no signature slot`, { archive: storage.url, actual: String(trailer.version), remedy: 'repack' });
  }
  // The signature vouches for the root: never sign a trailer whose root is not there.
  const root = await storage.read(trailer.rootOffset, trailer.rootLength, { signal });
  if (!bytesEqual(hash(root), trailer.rootHash)) throw corrupt('root', 'hash mismatch', { archive: storage.url, offset: trailer.rootOffset });
  return { trailer, bytes: Uint8Array.from(trailerBytesOf(tail, trailer)), size: stat.size };
}

/**
 * Sign `source` with `opts.key`, writing the result to `opts.output` (default: `source` itself, which
 * must then be a local file). Re-signing replaces any earlier signature.
 */
export async function signArchive(source: string, opts: SignOptions): Promise<SignSummary> {
  const t0 = performance.now();
  const srcUrl = toStorageUrl(source);
  const outUrl = opts.output ? toStorageUrl(opts.output) : srcUrl;
  const inPlace = await sameObject(srcUrl, outUrl);
  if (inPlace && !outUrl.startsWith('file:') && !opts.output) {
    throw new HexzError('UNSUPPORTED', `${srcUrl} is remote: signing rewrites the archive, which is done in place only for local files`, { url: srcUrl, remedy: 'sign-output' });
  }
  const storage = await openStorage(srcUrl, opts.storage);
  try {
    const { trailer, bytes, size } = await readSignable(storage, opts.signal);
    const signed = encodeSignedTrailer(trailer, opts.key);
    const previous = trailer.signature && trailer.signature.algorithm !== SIG_NONE ? toHex(trailer.signature.keyId) : undefined;
    const summary = { archive: srcUrl, output: outUrl, uuid: formatUuid(trailer.uuid), keyId: toHex(opts.key.keyId), previousKeyId: previous, archiveBytes: size };
    // Ed25519 is deterministic: the same key over the same bytes gives the same signature.
    if (inPlace && bytesEqual(signed, bytes)) return { ...summary, unchanged: true, seconds: (performance.now() - t0) / 1000 };
    if (outUrl.startsWith('file:') && srcUrl.startsWith('file:')) {
      await signLocalCopy(fileURLToPath(srcUrl), fileURLToPath(outUrl), bytes, signed, { overwrite: inPlace || Boolean(opts.overwrite), signal: opts.signal });
    } else {
      await signStreaming(storage, outUrl, size, signed, { ...opts, overwrite: inPlace || Boolean(opts.overwrite) });
    }
    opts.onProgress?.(size, size);
    return { ...summary, unchanged: false, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await storage.close();
  }
}

/** Stream the body of `storage` and then the signed trailer into a writer of `outUrl`. */
async function signStreaming(storage: Storage, outUrl: string, size: number, signed: Uint8Array, opts: SignOptions & { overwrite: boolean }): Promise<void> {
  const body = size - signed.byteLength;
  const writer: StorageWriter = await createWriter(outUrl, { overwrite: opts.overwrite, signal: opts.signal, ...opts.storage });
  try {
    for (let at = 0; at < body; ) {
      throwIfAborted(opts.signal);
      const n = Math.min(STREAM_PIECE_BYTES, body - at);
      // The source's storage pins the version it opened: a replaced source fails ARCHIVE_CHANGED.
      await writer.write(await storage.read(at, n, { signal: opts.signal }));
      at += n;
      opts.onProgress?.(at, size);
    }
    await writer.write(signed);
    await writer.commit();
  } catch (err) {
    await writer.abort(err).catch(() => {});
    throw err;
  }
}

/**
 * Copy `src` to a temporary file beside `out` by the kernel, write the signed trailer over the copy's
 * last bytes, fsync, rename over `out`, fsync the directory. The copy's old trailer must be the one
 * that was signed (`expected`), else the source changed in between (`ARCHIVE_CHANGED`).
 */
async function signLocalCopy(src: string, out: string, expected: Uint8Array, signed: Uint8Array, opts: { overwrite: boolean; signal?: AbortSignal }): Promise<void> {
  const ctx = { url: toStorageUrl(out) };
  if (!opts.overwrite && (await fs.lstat(out).then(() => true, () => false))) throw new HexzError('EXISTS', `${out} already exists`, { ...ctx, remedy: 'overwrite' });
  const temp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  // A process that exits before the rename (a second Ctrl-C) still removes the temporary copy.
  const removeOnExit = () => {
    try {
      unlinkSync(temp);
    } catch {
      // not created yet, or already renamed
    }
  };
  process.once('exit', removeOnExit);
  let renamed = false;
  try {
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.copyFile(src, temp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
    const fh = await fs.open(temp, 'r+');
    try {
      const { size } = await fh.stat();
      const at = size - signed.byteLength;
      const old = Buffer.alloc(signed.byteLength);
      await fh.read(old, 0, old.byteLength, at);
      if (at < 0 || !bytesEqual(old, expected)) {
        throw new HexzError('ARCHIVE_CHANGED', `${src} changed while it was being signed`, { url: toStorageUrl(src) });
      }
      await fh.write(signed, 0, signed.byteLength, at);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // The rename is the commit: an interrupt that arrived meanwhile must still prevent it.
    throwIfAborted(opts.signal, ctx);
    await fs.rename(temp, out);
    renamed = true;
    const dir = await fs.open(path.dirname(out), fsConstants.O_RDONLY);
    await dir.sync().catch(() => {});
    await dir.close();
  } catch (err) {
    if (!renamed) await fs.unlink(temp).catch(() => {});
    throw toHexzError(err, ctx);
  } finally {
    process.removeListener('exit', removeOnExit);
  }
}

