/**
 * Signing key files and trusted public keys (docs/cli.md, "Signing"):
 *
 * - `NAME.key`: the Ed25519 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the format
 *   OpenSSL and every crypto library read (`openssl pkey -in NAME.key -pubout`), and one that cannot
 *   be mistaken for a 32-byte encryption key file. Like those, it must be readable by its owner only.
 * - `NAME.pub`: one line `hexz-ed25519 BASE64 [comment]`, BASE64 being the raw 32-byte public key, so
 *   a trusted-keys file can hold many keys (one per line, `#` comments) like ssh's authorized_keys,
 *   and a directory of `*.pub` files (a Kubernetes Secret or ConfigMap mounted as a volume) many files.
 *
 * The key id, what the archive records and what messages show, is BLAKE3 of the raw public key.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HexzError, toHexzError } from '../errors.js';
import { toHex } from '../format/bytes.js';
import { readSecretFile } from './key-files.js';
import { ED25519_PUBLIC_KEY_BYTES, keyIdOf, publicKeyObject, signingKeyOf, TrustedKeys, type SigningKey, type TrustedKey } from './signatures.js';

/** The first word of a public key line: names the algorithm, like ssh's `ssh-ed25519`. */
export const PUBLIC_KEY_TYPE = 'hexz-ed25519';
/** File name endings of a key pair made by `writeSigningKeyPair`. */
export const PRIVATE_KEY_SUFFIX = '.key';
export const PUBLIC_KEY_SUFFIX = '.pub';

/** The `.pub` line of a raw public key. */
export function formatPublicKeyLine(publicKey: Uint8Array, comment = ''): string {
  const c = comment.replace(/[\r\n]+/g, ' ').trim();
  return `${PUBLIC_KEY_TYPE} ${Buffer.from(publicKey).toString('base64')}${c ? ` ${c}` : ''}`;
}

/**
 * The public keys in the text of a trusted-keys file: one `hexz-ed25519 BASE64 [comment]` per line;
 * blank lines and lines starting with `#` are ignored. Anything else is `INVALID_ARGUMENT` naming
 * `source:line` (a typo must not silently drop a key).
 */
export function parsePublicKeyLines(text: string, source: string): TrustedKey[] {
  const out: TrustedKey[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `${source}:${i + 1}`;
    const [type, b64, ...comment] = line.split(/\s+/);
    if (type !== PUBLIC_KEY_TYPE) {
      const hint = line.startsWith('-----BEGIN') ? ' (a PEM block; public keys are the one-line .pub files hexz keygen writes)' : '';
      throw new HexzError('INVALID_ARGUMENT', `${where}: expected "${PUBLIC_KEY_TYPE} BASE64 [comment]", found "${line.slice(0, 40)}"${hint}`, { path: source, line: i + 1 });
    }
    const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(b64 ?? '') ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    if (bytes.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
      throw new HexzError('INVALID_ARGUMENT', `${where}: the key is not base64 of ${ED25519_PUBLIC_KEY_BYTES} bytes`, { path: source, line: i + 1 });
    }
    const publicKey = Uint8Array.from(bytes);
    out.push({ publicKey, keyId: keyIdOf(publicKey), comment: comment.join(' '), source: where, keyObject: publicKeyObject(publicKey) });
  });
  return out;
}

function unreadable(what: string, file: string, err: unknown): HexzError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'not found' : code === 'EACCES' || code === 'EPERM' ? 'unreadable (permission denied)' : `unreadable (${toHexzError(err).message})`;
  return new HexzError('INVALID_ARGUMENT', `${what} ${file}: ${why}`, { path: file, ...(code ? { errno: code } : {}) }, { cause: err });
}

/**
 * Read the trusted keys at `location`: a file of `.pub` lines, or a directory whose `*.pub` files
 * (symlinks followed; names starting with `.` skipped, as Kubernetes volumes keep their bookkeeping
 * there) are read. A location that holds no key is an error: an empty trust list is a
 * misconfiguration, never "trust nothing" by accident or "trust everything".
 */
export async function loadTrustedKeys(location: string): Promise<TrustedKeys> {
  let stat;
  try {
    stat = await fs.stat(location);
  } catch (err) {
    throw unreadable('trusted keys', location, err);
  }
  const files: string[] = [];
  if (stat.isDirectory()) {
    let names: string[];
    try {
      names = (await fs.readdir(location)).sort();
    } catch (err) {
      throw unreadable('trusted keys directory', location, err);
    }
    for (const name of names) {
      if (name.startsWith('.') || !name.endsWith(PUBLIC_KEY_SUFFIX)) continue;
      const file = path.join(location, name);
      if ((await fs.stat(file).catch(() => undefined))?.isFile()) files.push(file);
    }
  } else files.push(location);
  const keys: TrustedKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw unreadable('trusted keys file', file, err);
    }
    keys.push(...parsePublicKeyLines(text, file));
  }
  if (!keys.length) {
    const what = stat.isDirectory() ? `directory ${location} holds no *${PUBLIC_KEY_SUFFIX} file with a key` : `file ${location} holds no key`;
    throw new HexzError('INVALID_ARGUMENT', `trusted keys ${what}`, { path: location });
  }
  return new TrustedKeys(keys, [location]);
}

/** Parse a signing key file's content (PKCS#8 PEM of an Ed25519 key); errors say what the file is instead. */
export function parseSigningKey(content: Uint8Array, file: string): SigningKey {
  const text = Buffer.from(content).toString('utf8').trim();
  const refuse = (why: string) => new HexzError('INVALID_ARGUMENT', `signing key file ${file}: ${why}`, { path: file, remedy: 'sign-key' });
  if (text.startsWith(PUBLIC_KEY_TYPE)) throw refuse(`this is a public key (${PUBLIC_KEY_SUFFIX}); signing needs the private ${PRIVATE_KEY_SUFFIX} file`);
  if (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) throw refuse('passphrase-protected PEM keys are not supported (keep the file mode 0600 instead)');
  if (!text.includes('-----BEGIN PRIVATE KEY-----')) {
    const encryptionKey = content.byteLength === 32 || /^[0-9a-fA-F]{64}$/.test(text) || /^[A-Za-z0-9+/_-]{43}=?$/.test(text);
    throw refuse(encryptionKey ? 'this is an encryption key, not a signing key' : 'not a PKCS#8 PEM private key');
  }
  try {
    return signingKeyOf(createPrivateKey({ key: text, format: 'pem' }));
  } catch (err) {
    if (err instanceof HexzError) throw refuse(err.message);
    throw refuse(`not a valid PEM private key (${(err as Error).message})`);
  }
}

/** Read a signing key file: owner-only permissions (like every secret file), PKCS#8 PEM of Ed25519. */
export async function readSigningKeyFile(file: string): Promise<SigningKey> {
  return parseSigningKey(await readSecretFile(file, 'signing key file'), file);
}

/** The two files of a key pair named `name` (a trailing `.key` or `.pub` is not doubled). */
export function keyPairFiles(name: string): { keyFile: string; publicKeyFile: string } {
  const suffix = [PRIVATE_KEY_SUFFIX, PUBLIC_KEY_SUFFIX].find((x) => name.endsWith(x));
  const base = suffix ? name.slice(0, -suffix.length) : name;
  return { keyFile: `${base}${PRIVATE_KEY_SUFFIX}`, publicKeyFile: `${base}${PUBLIC_KEY_SUFFIX}` };
}

export interface WrittenKeyPair {
  keyFile: string;
  publicKeyFile: string;
  /** Key id in hex. */
  keyId: string;
  /** The line written to the `.pub` file. */
  publicKeyLine: string;
}

/**
 * Generate an Ed25519 key pair and write `NAME.key` (mode 0600) and `NAME.pub` (mode 0644). Neither
 * file is replaced unless `force`: both are checked before anything is written (`EXISTS` with the
 * `overwrite` remedy), and the private key is created exclusively, so two runs never share one.
 */
export async function writeSigningKeyPair(name: string, opts: { force?: boolean; comment?: string } = {}): Promise<WrittenKeyPair> {
  const { keyFile, publicKeyFile } = keyPairFiles(name);
  if (!opts.force) {
    for (const f of [keyFile, publicKeyFile]) {
      if (await fs.lstat(f).then(() => true, () => false)) throw new HexzError('EXISTS', `${f} already exists`, { path: f, remedy: 'overwrite' });
    }
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const key = signingKeyOf(privateKey);
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicKeyLine = formatPublicKeyLine(key.publicKey, opts.comment ?? path.basename(keyFile, PRIVATE_KEY_SUFFIX));
  const write = async (file: string, text: string, mode: number) => {
    try {
      await fs.writeFile(file, text, { mode, flag: opts.force ? 'w' : 'wx' });
      // writeFile's mode applies only to a new file (and goes through the umask): set it either way.
      await fs.chmod(file, mode);
    } catch (err) {
      const e = toHexzError(err, { path: file });
      if (e.code === 'EXISTS') throw new HexzError('EXISTS', `${file} already exists`, { path: file, remedy: 'overwrite' });
      throw e;
    }
  };
  await write(keyFile, pem, 0o600);
  try {
    await write(publicKeyFile, `${publicKeyLine}\n`, 0o644);
  } catch (err) {
    // Half a key pair is worse than none: the private key would have no public key to trust.
    await fs.unlink(keyFile).catch(() => {});
    throw err;
  }
  return { keyFile, publicKeyFile, keyId: toHex(key.keyId), publicKeyLine };
}
