/**
 * Key files and passphrases (docs/cli.md, "Encryption"). A key file holds 32 bytes, either raw or as
 * text: 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored). Like ssh with private
 * keys, a key or passphrase file that group or others can read is refused.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { HexzError, toHexzError } from '../errors.js';
import { KEY_BYTES, type KeySource } from './keys.js';

/** Decode key file content: raw 32 bytes, 64 hex digits, or base64 of 32 bytes. */
export function parseKey(content: Uint8Array, file = 'key file'): Uint8Array {
  if (content.byteLength === KEY_BYTES) return Uint8Array.from(content);
  const text = Buffer.from(content).toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const b = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (b.byteLength === KEY_BYTES) return Uint8Array.from(b);
  }
  throw new HexzError(
    'INVALID_ARGUMENT',
    `${file}: a key must be 32 bytes (raw), 64 hex digits or base64 of 32 bytes; this file has ${content.byteLength} bytes`,
    { path: file },
  );
}

/**
 * Read a secret file (key or passphrase) that only its owner may read. A file that cannot be read is
 * a usage error naming the option's file (`INVALID_ARGUMENT`, exit 2), never a "path not found in
 * the archive"; one that group or others can access is refused (`PERMISSION`), like ssh does.
 */
export async function readSecretFile(file: string, what: 'key file' | 'passphrase file' | 'signing key file'): Promise<Buffer> {
  let stat;
  let content;
  try {
    stat = await fs.stat(file);
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    content = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    const why =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? 'not found'
        : code === 'EACCES' || code === 'EPERM'
          ? 'unreadable (permission denied)'
          : code === 'EISDIR'
            ? 'unreadable (it is a directory)'
            : `unreadable (${(err as Error)?.message ?? err})`;
    const e = toHexzError(err, { path: file });
    throw new HexzError('INVALID_ARGUMENT', `${what} ${file}: ${why}`, { path: file, ...(code ? { errno: code } : {}) }, { cause: e });
  }
  if ((stat.mode & 0o077) !== 0 && process.platform !== 'win32') {
    throw new HexzError(
      'PERMISSION',
      `${what} ${file} is accessible by group or others (mode ${(stat.mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
      { path: file },
    );
  }
  return content;
}

/** Read and check a key file (permissions 0600 or stricter). */
export async function readKeyFile(file: string): Promise<Uint8Array> {
  return parseKey(await readSecretFile(file, 'key file'), file);
}

/** Read a passphrase file (permissions 0600 or stricter; first line, trailing newline removed). */
export async function readPassphraseFile(file: string): Promise<string> {
  const text = (await readSecretFile(file, 'passphrase file')).toString('utf8');
  const pass = text.split(/\r?\n/)[0];
  if (!pass) throw new HexzError('INVALID_ARGUMENT', `passphrase file ${file} is empty`, { path: file });
  return pass;
}

/** The key source from configured locations: key file, then passphrase file, then passphrase text. */
export async function loadKeySource(cfg: { keyFile?: string; passphraseFile?: string; passphrase?: string }): Promise<KeySource | undefined> {
  if (cfg.keyFile) return { kind: 'key', key: await readKeyFile(cfg.keyFile) };
  if (cfg.passphraseFile) return { kind: 'passphrase', passphrase: await readPassphraseFile(cfg.passphraseFile) };
  if (cfg.passphrase) return { kind: 'passphrase', passphrase: cfg.passphrase };
  return undefined;
}

/** Write a new random key as 64 hex digits with mode 0600; refuses to overwrite unless `force`. */
export async function writeNewKeyFile(file: string, force = false): Promise<void> {
  const text = `${randomBytes(KEY_BYTES).toString('hex')}\n`;
  try {
    await fs.writeFile(file, text, { mode: 0o600, flag: force ? 'w' : 'wx' });
    await fs.chmod(file, 0o600);
  } catch (err) {
    const e = toHexzError(err, { path: file });
    if (e.code === 'EXISTS') throw new HexzError('EXISTS', `${file} already exists`, { path: file, remedy: 'overwrite' });
    throw e;
  }
}
