import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { isHexzError } from '@hexz/src/errors.js';
import { parseKey, readKeyFile, readPassphraseFile, writeNewKeyFile } from '@hexz/src/crypto/key-files.js';
import { pack } from '@hexz/src/packer/pack.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, sha256, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let input: string;
const key = { kind: 'key' as const, key: Uint8Array.from(randomBytesSeeded(32, 99)) };
const otherKey = { kind: 'key' as const, key: Uint8Array.from(randomBytesSeeded(32, 98)) };
const SECRET_NAME = 'top-secret-plans.txt';
const SECRET_TEXT = 'the eagle lands at midnight';

beforeAll(async () => {
  tmp = await makeTempDir('hexz-crypto-');
  input = path.join(tmp.dir, 'in');
  await writeTree(input, {
    [SECRET_NAME]: `${SECRET_TEXT}\n`.repeat(2000),
    'data/random.bin': randomBytesSeeded(2 * MiB, 4),
    'data/text.txt': textBytes(MiB, 5),
    'data/zero.bin': Buffer.alloc(MiB),
  });
});
afterAll(async () => {
  await tmp.cleanup();
});

async function expectCode(p: Promise<unknown>, code: string, msg?: RegExp) {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(isHexzError(err), String(err)).toBe(true);
  expect(err.code).toBe(code);
  if (msg) expect(err.message).toMatch(msg);
}

describe('encrypted archives', () => {
  it.each(['zstd', 'lz4', 'none'] as const)('round-trip a directory with %s, and leak no names or content', async (compression) => {
    const out = path.join(tmp.dir, `enc-${compression}.hxz`);
    await pack(input, out, { key, compression });
    const bytes = await fs.readFile(out);
    expect(bytes.includes(Buffer.from(SECRET_NAME))).toBe(false);
    expect(bytes.includes(Buffer.from('the eagle'))).toBe(false);
    expect(bytes.includes(Buffer.from('random.bin'))).toBe(false);
    const a = await openArchive(out, { key, cache: new BlockCache() });
    expect(a.info()).toMatchObject({ encrypted: true, keyDerivation: 'key', fileCount: 5 });
    for await (const e of a.walk()) {
      if (e.type === 'file') expect(sha256(await a.read(e, 0, e.size))).toBe(sha256(await fs.readFile(path.join(input, e.path))));
    }
    expect((await verifyArchive(a)).problems).toEqual([]);
    await a.close();
  });

  it('round-trips a single file', async () => {
    const out = path.join(tmp.dir, 'enc-file.hxz');
    await pack(path.join(input, 'data/random.bin'), out, { key });
    const a = await openArchive(out, { key, cache: new BlockCache() });
    expect(sha256(await a.read('disk', 0, 2 * MiB))).toBe(sha256(randomBytesSeeded(2 * MiB, 4)));
    await a.close();
  });

  it('says "key needed" without a key and "wrong key" with another', async () => {
    const out = path.join(tmp.dir, 'enc-zstd.hxz');
    // The library says what is wrong and what to do (a remedy); the CLI words it with its flags
    // ("give --key-file", asserted through `hexz` below).
    await expectCode(openArchive(out), 'KEY_REQUIRED', /is encrypted$/);
    await expect(openArchive(out)).rejects.toMatchObject({ context: { remedy: 'key' } });
    await expectCode(openArchive(out, { key: otherKey }), 'WRONG_KEY', /wrong key/);
    await expectCode(openArchive(out, { key: { kind: 'passphrase', passphrase: 'x' } }), 'WRONG_KEY', /key file, not a passphrase/);
  });

  it('tampering with any structure fails authentication or its hash, naming it, with no plaintext out', async () => {
    const out = path.join(tmp.dir, 'enc-zstd.hxz');
    const good = await fs.readFile(out);
    const a = await openArchive(out, { key });
    const t = a.trailer;
    const targets: Array<[string, number]> = [
      ['chunk', 64 + 10],
      ['chunk-index page', a.root.chunkPages[0].offset + 20],
      ['file-table page', a.root.filePages[0].offset + 20],
      ['root', t.rootOffset + 20],
    ];
    await a.close();
    for (const [what, at] of targets) {
      const bad = Buffer.from(good);
      bad[at] ^= 1;
      const p = path.join(tmp.dir, `tampered-${what.replace(/ /g, '-')}.hxz`);
      await fs.writeFile(p, bad);
      // Index structures are caught by their parent's hash first (a forger without the key cannot
      // re-seal the root to match); chunks, which have no parent hash, by GCM (next test).
      const r = await hexz(['--key-file', await keyFile(), 'cat', p, SECRET_NAME]);
      expect(r.code, what).not.toBe(0);
      expect(r.stdout.includes(Buffer.from('eagle'))).toBe(false);
      expect(r.stderr).toMatch(/corrupt|authentication/);
    }
  });

  it('a tampered sealed chunk with a consistent index fails GCM authentication by name', async () => {
    const out = path.join(tmp.dir, 'enc-zstd.hxz');
    const a = await openArchive(out, { key, cache: new BlockCache() });
    const e = await a.entry(SECRET_NAME);
    const [ref] = [await a.fileRefs(e).next()].map((n) => n.value!);
    const bytes = Buffer.from(await fs.readFile(out));
    bytes[ref.offset + 20] ^= 0x80; // inside the ciphertext of the secret file's first chunk
    await a.close();
    const p = path.join(tmp.dir, 'tampered-cipher.hxz');
    await fs.writeFile(p, bytes);
    const b = await openArchive(p, { key, cache: new BlockCache() });
    await expectCode(b.read(SECRET_NAME, 0, 100), 'AUTH_FAILED', /chunk failed authentication/);
    await b.close();
  });

  it('a delta of an encrypted base with the same key stays small; other keys and plain mixes are refused', async () => {
    const v2 = path.join(tmp.dir, 'in-v2');
    await fs.cp(input, v2, { recursive: true });
    await fs.appendFile(path.join(v2, 'data/text.txt'), 'one more line\n');
    const base = path.join(tmp.dir, 'enc-zstd.hxz');
    const plainBase = path.join(tmp.dir, 'plain.hxz');
    await pack(input, plainBase);
    const plainDelta = await pack(v2, path.join(tmp.dir, 'plain-delta.hxz'), { bases: [plainBase] });
    const encDelta = await pack(v2, path.join(tmp.dir, 'enc-delta.hxz'), { bases: [base], key });
    expect(encDelta.storedBytes).toBeLessThan(plainDelta.storedBytes * 1.2 + 4096);
    expect(encDelta.baseBytes).toBe(plainDelta.baseBytes);
    const d = await openArchive(path.join(tmp.dir, 'enc-delta.hxz'), { key, cache: new BlockCache() });
    expect(await treeDigestOf(d)).toEqual(await treeDigest(v2).then(filesOnly));
    await d.close();
    await expectCode(pack(v2, path.join(tmp.dir, 'x1.hxz'), { bases: [base], key: otherKey }), 'WRONG_KEY');
    await expectCode(pack(v2, path.join(tmp.dir, 'x2.hxz'), { bases: [plainBase], key }), 'INVALID_ARGUMENT', /cannot build on a plain base/);
    await expectCode(pack(v2, path.join(tmp.dir, 'x3.hxz'), { bases: [base] }), 'KEY_REQUIRED');
  });

  it('passphrases: scrypt parameters and salt in the archive; deltas reuse them', async () => {
    const pass = { kind: 'passphrase' as const, passphrase: 'correct horse battery staple' };
    const out = path.join(tmp.dir, 'pass.hxz');
    await pack(input, out, { key: pass });
    const a = await openArchive(out, { key: pass, cache: new BlockCache() });
    expect(a.info().keyDerivation).toBe('scrypt');
    expect(a.trailer.kdf).toMatchObject({ kind: 2, log2N: 17, r: 8, p: 1 });
    await a.close();
    await expectCode(openArchive(out, { key: { kind: 'passphrase', passphrase: 'wrong' } }), 'WRONG_KEY');
    const delta = path.join(tmp.dir, 'pass-delta.hxz');
    const s = await pack(input, delta, { key: pass, bases: [out] });
    expect(s.newChunks).toBe(0);
    const viaEnv = await hexz(['cat', delta, SECRET_NAME], { env: { HEXZ_PASSPHRASE: pass.passphrase } });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout.toString()).toMatch(/eagle/);
  });

  it('key files: raw, hex and base64 accepted; bad length and loose permissions refused', async () => {
    const raw = Buffer.from(key.key);
    expect(Buffer.from(parseKey(raw)).equals(raw)).toBe(true);
    expect(Buffer.from(parseKey(Buffer.from(`${raw.toString('hex')}\n`))).equals(raw)).toBe(true);
    expect(Buffer.from(parseKey(Buffer.from(raw.toString('base64')))).equals(raw)).toBe(true);
    expect(() => parseKey(Buffer.from('abc'))).toThrow(/32 bytes/);
    const loose = path.join(tmp.dir, 'loose.key');
    await fs.writeFile(loose, raw.toString('hex'), { mode: 0o644 });
    await fs.chmod(loose, 0o644);
    await expectCode(readKeyFile(loose), 'PERMISSION', /chmod 600/);
    const short = path.join(tmp.dir, 'short.key');
    await fs.writeFile(short, 'deadbeef', { mode: 0o600 });
    const r = await hexz(['--key-file', short, 'info', path.join(tmp.dir, 'enc-zstd.hxz')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a key must be 32 bytes/);
  });

  it('a missing key or passphrase file is a usage error naming the file (exit 2), never "no such path in the archive"', async () => {
    const archive = path.join(tmp.dir, 'enc-zstd.hxz');
    const missingKey = path.join(tmp.dir, 'no-such.key');
    const viaFlag = await hexz(['--key-file', missingKey, 'ls', archive]);
    expect(viaFlag.code).toBe(2);
    expect(viaFlag.stderr).toContain(`key file ${missingKey}: not found`);
    expect(viaFlag.stderr).not.toMatch(/no such path/);
    const viaEnv = await hexz(['ls', archive], { env: { HEXZ_KEY_FILE: missingKey } });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toContain(`key file ${missingKey}: not found`);
    const missingPass = path.join(tmp.dir, 'no-such.passphrase');
    const pass = await hexzJson(['--passphrase-file', missingPass, 'pack', '--encrypt', input, path.join(tmp.dir, 'never.hxz')]);
    expect(pass.code).toBe(2);
    expect(pass.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: `passphrase file ${missingPass}: not found`, context: { path: missingPass } });
    // Unreadable (a directory here: the tests run as root, for whom mode 000 does not stop reading).
    const dir = await hexz(['--key-file', tmp.dir, 'ls', archive]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain(`key file ${tmp.dir}: unreadable`);
    await expectCode(readKeyFile(missingKey), 'INVALID_ARGUMENT', /not found/);
  });

  it('passphrase files are held to the same rule as key files: readable by group or others is refused', async () => {
    const loose = path.join(tmp.dir, 'loose.passphrase');
    await fs.writeFile(loose, 'correct horse battery staple\n', { mode: 0o644 });
    await fs.chmod(loose, 0o644);
    await expectCode(readPassphraseFile(loose), 'PERMISSION', /passphrase file .* is accessible by group or others .*chmod 600/);
    const out = path.join(tmp.dir, 'pass-file.hxz');
    const refused = await hexz(['--passphrase-file', loose, 'pack', '--encrypt', input, out]);
    expect(refused.code).toBe(22);
    expect(refused.stderr).toMatch(/chmod 600/);
    await fs.chmod(loose, 0o600);
    expect((await hexz(['--passphrase-file', loose, 'pack', '--encrypt', input, out])).code).toBe(0);
    expect((await hexzJson(['--passphrase-file', loose, 'info', out])).json).toMatchObject({ encrypted: true, keyDerivation: 'scrypt' });
  });

  it('a delta of an encrypted base, given only the key, is encrypted automatically and says so', async () => {
    const kf = await keyFile();
    const base = path.join(tmp.dir, 'enc-zstd.hxz');
    const v2 = path.join(tmp.dir, 'in-v2-auto');
    await fs.cp(input, v2, { recursive: true });
    await fs.appendFile(path.join(v2, 'data/text.txt'), 'another line\n');

    // The key opens the base even without --encrypt; the delta is encrypted with it (it must be).
    const out = path.join(tmp.dir, 'auto-delta.hxz');
    const r = await hexzJson(['--key-file', kf, 'pack', v2, out, '--base', base]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/base .*enc-zstd\.hxz is encrypted, so the delta is encrypted too, with the same key/);
    expect(r.json).toMatchObject({ encrypted: true, newChunks: 1 });
    expect(r.json.baseChunks).toBeGreaterThan(10);
    expect((await fs.readFile(out)).includes(Buffer.from(SECRET_NAME))).toBe(false);
    expect((await hexz(['ls', out])).code).toBe(5);
    const cat = await hexz(['--key-file', kf, 'cat', out, 'data/text.txt']);
    expect(cat.stdout.equals(await fs.readFile(path.join(v2, 'data/text.txt')))).toBe(true);
    expect((await hexz(['--key-file', kf, 'pack', '-f', v2, out, '--base', base])).stdout.toString()).toMatch(/^encrypted: +yes/m);
    // --encrypt says the same thing explicitly.
    expect((await hexz(['--key-file', kf, 'pack', '--encrypt', '-f', v2, out, '--base', base])).code).toBe(0);

    // Without the key the base cannot be read at all: the message asks for the key.
    const noKey = await hexz(['pack', v2, path.join(tmp.dir, 'no-key-delta.hxz'), '--base', base]);
    expect(noKey.code).toBe(5);
    expect(noKey.stderr).toMatch(/is encrypted: give --key-file/);
    // The library can still ask for a plain output explicitly: refused, with the fix as a remedy
    // (the CLI, which encrypts such deltas automatically, words it "add --encrypt").
    await expectCode(pack(v2, path.join(tmp.dir, 'x4.hxz'), { bases: [base], key, encrypt: false }), 'INVALID_ARGUMENT', /a delta of an encrypted base must be encrypted with the same key/);
    await expect(pack(v2, path.join(tmp.dir, 'x5.hxz'), { bases: [base], key, encrypt: false })).rejects.toMatchObject({ context: { remedy: 'encrypt' } });
    // A key given for a plain base changes nothing: the delta stays plain.
    const plainBase = path.join(tmp.dir, 'plain-for-auto.hxz');
    await pack(input, plainBase);
    const plain = await hexzJson(['--key-file', kf, 'pack', v2, path.join(tmp.dir, 'plain-auto-delta.hxz'), '--base', plainBase]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json.encrypted).toBe(false);
  });

  it('keygen + pack --encrypt + every reading command with --key-file', async () => {
    const kf = path.join(tmp.dir, 'gen.key');
    expect((await hexz(['keygen', kf])).code).toBe(0);
    expect((await fs.stat(kf)).mode & 0o777).toBe(0o600);
    expect((await hexz(['keygen', kf])).code).toBe(20);
    const out = path.join(tmp.dir, 'cli-enc.hxz');
    expect((await hexz(['pack', '--encrypt', input, out])).stderr).toMatch(/--encrypt needs a key/);
    expect((await hexz(['--key-file', kf, 'pack', '--encrypt', input, out])).code).toBe(0);
    const info = await hexzJson(['--key-file', kf, 'info', out]);
    expect(info.json).toMatchObject({ encrypted: true, fileCount: 5 });
    expect((await hexz(['--key-file', kf, 'ls', '-r', out])).stdout.toString()).toMatch(new RegExp(SECRET_NAME));
    expect((await hexz(['--key-file', kf, 'verify', out])).code).toBe(0);
    const dest = path.join(tmp.dir, 'cli-enc-out');
    expect((await hexz(['--key-file', kf, 'extract', out, dest])).code).toBe(0);
    expect(filesOnly(await treeDigest(dest))).toEqual(filesOnly(await treeDigest(input)));
    expect((await hexz(['--key-file', kf, 'diff', out, out])).code).toBe(0);
    const noKey = await hexz(['ls', out]);
    expect(noKey.code).toBe(5);
    expect(noKey.stderr).toMatch(/is encrypted: give --key-file/);
    await writeNewKeyFile(path.join(tmp.dir, 'other.key'));
    const wrong = await hexz(['--key-file', path.join(tmp.dir, 'other.key'), 'ls', out]);
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toMatch(/wrong key/);
  });
});

let keyFilePath: string | undefined;
async function keyFile(): Promise<string> {
  if (!keyFilePath) {
    keyFilePath = path.join(tmp.dir, 'test.key');
    await fs.writeFile(keyFilePath, Buffer.from(key.key), { mode: 0o600 });
  }
  return keyFilePath;
}

function filesOnly(d: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(d).filter(([k, v]) => !k.endsWith('/') && v !== 'dir'));
}

async function treeDigestOf(a: Awaited<ReturnType<typeof openArchive>>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of a.walk()) if (e.type === 'file') out[e.path] = sha256(await a.read(e, 0, e.size));
  return out;
}

describe('a key given for a plain archive', () => {
  it('is not used, and the command says so (the key does not authenticate it)', async () => {
    const plain = path.join(tmp.dir, 'plain-with-key.hxz');
    expect((await hexz(['pack', input, plain])).code).toBe(0);
    const r = await hexz(['--key-file', await keyFile(), 'ls', plain]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain(SECRET_NAME);
    expect(r.stderr).toMatch(/is not encrypted: the key was not used/);
    expect((await hexz(['ls', plain])).stderr).toBe('');
  });
});

describe('sealing a chunk in place', () => {
  it('makes exactly the bytes sealChunk makes (deduplication across versions depends on it)', async () => {
    const { deriveArchiveKeys, sealChunk, sealChunkInPlace, NONCE_BYTES, SEAL_OVERHEAD } = await import('@hexz/src/crypto/keys.js');
    const keys = deriveArchiveKeys(key.key);
    for (const n of [0, 1, 100, 65536]) {
      const body = randomBytesSeeded(n, n + 1);
      const id = randomBytesSeeded(32, n + 2);
      const buf = Buffer.alloc(n + SEAL_OVERHEAD + 10);
      body.copy(buf, NONCE_BYTES);
      const len = sealChunkInPlace(keys, id, 1, buf, n);
      expect(Buffer.from(buf.subarray(0, len)).equals(Buffer.from(sealChunk(keys, id, 1, body)))).toBe(true);
    }
  });
});
