/**
 * Keys of encrypted archives for the gateway (docs/gateway.md, "Encrypted archives"). Keys come only
 * from the operator, never from a request:
 *
 * - `--key-dir DIR` holds `NAME.key` (32-byte key file) or `NAME.passphrase` files. NAME is an archive
 *   name (`team-a/ds/v2.key` in a subdirectory) or a name prefix at a `/` boundary (`team-a.key`
 *   covers `team-a` and everything under `team-a/`); `default.key` covers every archive. The longest
 *   matching NAME wins; a `.key` beats a `.passphrase` of the same NAME.
 * - The global key (`--key-file`, `HEXZ_KEY_FILE`, `HEXZ_PASSPHRASE_FILE`, `HEXZ_PASSPHRASE`) is the
 *   fallback when no file in the directory matches.
 *
 * Files are read when an archive is opened (not per request), so a rotated key is picked up when the
 * archive is next opened; the directory is checked once at start so a bad key file fails fast.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, toHexzError } from '../errors.js';
import { loadKeySource, readKeyFile, readPassphraseFile } from '../crypto/key-files.js';
import type { KeySource } from '../crypto/keys.js';

/** The name in a key directory that covers every archive. */
export const DEFAULT_KEY_NAME = 'default';

/**
 * Returns the key for an archive name, or undefined (then only plain archives open). `inKeyDir`
 * says whether the key directory has a key for the name: such archives must be encrypted — a plain
 * object under a keyed prefix is refused, so a swapped object cannot pass for the encrypted one.
 */
export type KeyResolver = ((archiveName: string) => Promise<KeySource | undefined>) & {
  inKeyDir?: (archiveName: string) => Promise<boolean>;
};

export interface KeyResolverOptions {
  keyDir?: string;
  keyFile?: string;
  passphraseFile?: string;
  passphrase?: string;
}

/** Candidate NAMEs for an archive name, most specific first: `a/b/c`, `a/b`, `a`, `default`. */
export function keyNamesFor(archiveName: string): string[] {
  const segs = archiveName.split('/');
  const out: string[] = [];
  for (let n = segs.length; n > 0; n--) out.push(segs.slice(0, n).join('/'));
  out.push(DEFAULT_KEY_NAME);
  return out;
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Every `*.key` / `*.passphrase` file below `dir`, relative, `/`-separated. */
async function keyFilesIn(dir: string, rel = ''): Promise<string[]> {
  let dirents;
  try {
    dirents = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  } catch (err) {
    throw toHexzError(err, { path: path.join(dir, rel) });
  }
  const out: string[] = [];
  for (const d of dirents) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await keyFilesIn(dir, r)));
    else if (d.isFile() && (d.name.endsWith('.key') || d.name.endsWith('.passphrase'))) out.push(r);
  }
  return out;
}

/**
 * Build the resolver and validate every key file of the directory now (permissions, format), so a
 * misconfigured key is an error at start, not a 403 hours later.
 */
export async function createKeyResolver(opts: KeyResolverOptions): Promise<KeyResolver> {
  const fallback = await loadKeySource(opts);
  const dir = opts.keyDir ? path.resolve(opts.keyDir) : undefined;
  if (dir) {
    for (const rel of await keyFilesIn(dir)) {
      const file = path.join(dir, rel);
      if (rel.endsWith('.key')) await readKeyFile(file);
      else await readPassphraseFile(file);
    }
  }
  /** The key directory's file for an archive name, if any. */
  const fileFor = async (archiveName: string): Promise<string | undefined> => {
    assertKeyName(archiveName);
    if (!dir) return undefined;
    for (const name of keyNamesFor(archiveName)) {
      for (const ext of ['.key', '.passphrase']) {
        const file = path.join(dir, `${name}${ext}`);
        if (await exists(file)) return file;
      }
    }
    return undefined;
  };
  const resolver: KeyResolver = async (archiveName) => {
    const file = await fileFor(archiveName);
    if (file?.endsWith('.key')) return { kind: 'key', key: await readKeyFile(file) };
    if (file) return { kind: 'passphrase', passphrase: await readPassphraseFile(file) };
    assertKeyName(archiveName);
    return fallback;
  };
  resolver.inKeyDir = async (archiveName) => (await fileFor(archiveName)) !== undefined;
  return resolver;
}

/** Guard for names used as file names under the key directory (they were validated upstream; this keeps it local). */
export function assertKeyName(name: string): void {
  if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new HexzError('UNSAFE_PATH', `unsafe archive name ${name}`, { path: name });
}
