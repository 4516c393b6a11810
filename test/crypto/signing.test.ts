/**
 * Signed archives in the library (docs/format.md, section 3.1): key files and trusted-key lists, the
 * signature a packer writes, every refusal of `openArchive({ trustedKeys })` — unsigned, unknown
 * signer, altered signature, an altered signed field with a valid checksum, a base signed by an
 * untrusted key or not at all, a base replaced by another signed archive — and what stays true across
 * `sign`, `flatten` and encryption. Real files throughout.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { writeNewKeyFile, readKeyFile } from '@hexz/src/crypto/key-files.js';
import { checkSignature, keyIdOf, SIGNATURE_CONTEXT, type SigningKey, type TrustedKeys } from '@hexz/src/crypto/signatures.js';
import { keyPairFiles, loadTrustedKeys, parsePublicKeyLines, readSigningKeyFile, writeSigningKeyPair } from '@hexz/src/crypto/signing-keys.js';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { toHex } from '@hexz/src/format/bytes.js';
import { decodeTrailer } from '@hexz/src/format/header.js';
import { hash } from '@hexz/src/hash.js';
import { flattenArchive } from '@hexz/src/packer/flatten.js';
import { pack } from '@hexz/src/packer/pack.js';
import { signArchive } from '@hexz/src/packer/sign.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import type { Storage } from '@hexz/storage/types.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { codeOf, errorOf } from '../helpers/errors.js';
import { openChain } from '../helpers/open-chain.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const TRAILER = 256;
const GOLDEN_V1 = new URL('../fixtures/golden-v1.hxz', import.meta.url).pathname;

let tmp: { dir: string; cleanup: () => Promise<void> };
let input: string;
let ci: SigningKey;
let rogue: SigningKey;
/** Trusts `ci` only. */
let trustCi: TrustedKeys;
let ciPub: string;
let roguePub: string;
const cache = new BlockCache({ maxBytes: 64 * MiB });

const at = (name: string) => path.join(tmp.dir, name);

/** Pack `dir` to `name` (in the temp dir) with the given options. */
async function packTo(name: string, opts: Parameters<typeof pack>[2] = {}, dir = input): Promise<string> {
  await pack(dir, at(name), { threads: 1, overwrite: true, cache, ...opts });
  return at(name);
}

/** Rewrite the trailer of `file` into `out` after `edit` changed its bytes; the checksum is recomputed. */
async function withTrailer(file: string, out: string, edit: (t: Buffer) => void): Promise<string> {
  const bytes = await fs.readFile(file);
  const t = bytes.subarray(bytes.byteLength - TRAILER);
  edit(t);
  hash(t.subarray(0, TRAILER - 8)).copy(t, TRAILER - 8, 0, 8);
  await fs.writeFile(out, bytes);
  return out;
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-signing-');
  input = at('in');
  await writeTree(input, { 'data/random.bin': randomBytesSeeded(MiB, 3), 'notes/secret-plans.txt': textBytes(200_000, 4) });
  const a = await writeSigningKeyPair(at('ci'));
  const b = await writeSigningKeyPair(at('rogue'), { comment: 'someone else' });
  ci = await readSigningKeyFile(a.keyFile);
  rogue = await readSigningKeyFile(b.keyFile);
  ciPub = a.publicKeyFile;
  roguePub = b.publicKeyFile;
  trustCi = await loadTrustedKeys(ciPub);
});

afterAll(async () => {
  await tmp?.cleanup();
});

describe('key files', () => {
  it('keygen writes NAME.key (PKCS#8 PEM, 0600) and NAME.pub (one line, 0644); the key id is BLAKE3 of the raw public key', async () => {
    const pair = await writeSigningKeyPair(at('pair'));
    expect(pair).toMatchObject({ keyFile: at('pair.key'), publicKeyFile: at('pair.pub') });
    expect((await fs.stat(pair.keyFile)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(pair.publicKeyFile)).mode & 0o777).toBe(0o644);
    expect(await fs.readFile(pair.keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    const line = (await fs.readFile(pair.publicKeyFile, 'utf8')).trimEnd();
    expect(line).toBe(pair.publicKeyLine);
    expect(line).toMatch(/^hexz-ed25519 [A-Za-z0-9+/]{43}= pair$/);
    const raw = Buffer.from(line.split(' ')[1], 'base64');
    expect(pair.keyId).toBe(toHex(keyIdOf(raw)));
    const key = await readSigningKeyFile(pair.keyFile);
    expect(toHex(key.keyId)).toBe(pair.keyId);
    expect(Buffer.from(key.publicKey).equals(raw)).toBe(true);
  });

  it('refuses to replace either file without force, and writes neither then', async () => {
    await fs.writeFile(at('taken.pub'), 'keep me\n');
    const e = await errorOf(writeSigningKeyPair(at('taken')));
    expect(e.code).toBe('EXISTS');
    expect(e.context.remedy).toBe('overwrite');
    await expect(fs.stat(at('taken.key'))).rejects.toThrow();
    expect(await fs.readFile(at('taken.pub'), 'utf8')).toBe('keep me\n');
    const again = await writeSigningKeyPair(at('taken'), { force: true });
    expect(await fs.readFile(at('taken.pub'), 'utf8')).toBe(`${again.publicKeyLine}\n`);
    expect((await fs.stat(at('taken.key'))).mode & 0o777).toBe(0o600);
  });

  it('names a pair once: NAME, NAME.key and NAME.pub give the same two files', () => {
    for (const n of ['x/ci', 'x/ci.key', 'x/ci.pub']) expect(keyPairFiles(n)).toEqual({ keyFile: 'x/ci.key', publicKeyFile: 'x/ci.pub' });
  });

  it('refuses a signing key that others can read, a public key, or an encryption key in its place', async () => {
    const loose = at('loose.key');
    await fs.copyFile(at('ci.key'), loose);
    await fs.chmod(loose, 0o644);
    expect(await codeOf(readSigningKeyFile(loose))).toBe('PERMISSION');
    await fs.copyFile(ciPub, at('pub-as-key.key'));
    await fs.chmod(at('pub-as-key.key'), 0o600);
    expect((await errorOf(readSigningKeyFile(at('pub-as-key.key')))).message).toMatch(/this is a public key/);
    await writeNewKeyFile(at('enc.key'));
    expect((await errorOf(readSigningKeyFile(at('enc.key')))).message).toMatch(/this is an encryption key, not a signing key/);
    expect((await errorOf(readSigningKeyFile(at('missing.key')))).message).toMatch(/signing key file .*missing\.key: not found/);
  });

  it.each([
    ['hexz-ed25519 AAAA', /:1: the key is not base64 of 32 bytes/],
    ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7 me', /:1: expected "hexz-ed25519 BASE64 \[comment\]"/],
    ['# fine\n\n-----BEGIN PUBLIC KEY-----', /:3: .*a PEM block/],
  ])('a trusted-keys line %j is refused, naming file and line', (text, message) => {
    expect(() => parsePublicKeyLines(text, 'keys.txt')).toThrow(message);
  });

  it('reads many keys from a file (comments, blank lines) and from a directory of *.pub files (symlinks followed, dotfiles skipped)', async () => {
    const ciLine = (await fs.readFile(ciPub, 'utf8')).trim();
    const rogueLine = (await fs.readFile(roguePub, 'utf8')).trim();
    await fs.writeFile(at('trusted.txt'), `# publishers\n${ciLine}\n\n  ${rogueLine}  \n`);
    const fromFile = await loadTrustedKeys(at('trusted.txt'));
    expect(fromFile.size).toBe(2);
    expect(fromFile.get(rogue.keyId)?.comment).toBe('someone else');
    expect(fromFile.get(ci.keyId)?.source).toBe(`${at('trusted.txt')}:2`);

    // A Kubernetes volume: the files are symlinks into a hidden ..data directory.
    const dir = at('trusted.d');
    await fs.mkdir(path.join(dir, '..data'), { recursive: true });
    await fs.writeFile(path.join(dir, '..data', 'ci.pub'), `${ciLine}\n`);
    await fs.symlink('..data/ci.pub', path.join(dir, 'ci.pub'));
    await fs.writeFile(path.join(dir, 'README'), 'not a key\n');
    await fs.writeFile(path.join(dir, '.hidden.pub'), `${rogueLine}\n`);
    const fromDir = await loadTrustedKeys(dir);
    expect([...fromDir].map((k) => k.comment)).toEqual(['ci']);

    const empty = at('empty.d');
    await fs.mkdir(empty);
    expect((await errorOf(loadTrustedKeys(empty))).message).toMatch(/holds no \*\.pub file with a key/);
    await fs.writeFile(at('comments-only'), '# nothing\n');
    expect((await errorOf(loadTrustedKeys(at('comments-only')))).message).toMatch(/holds no key/);
    expect((await errorOf(loadTrustedKeys(at('nowhere')))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('signed archives', () => {
  let signed: string;

  beforeAll(async () => {
    signed = await packTo('signed.hxz', { signKey: ci });
  });

  it('a packer signs the trailer: the signature is Ed25519 over the context and trailer bytes [0, 160)', async () => {
    const bytes = await fs.readFile(signed);
    const t = bytes.subarray(bytes.byteLength - TRAILER);
    expect(t[120]).toBe(1);
    expect(Buffer.from(t.subarray(128, 160)).equals(Buffer.from(ci.keyId))).toBe(true);
    const { verify } = await import('node:crypto');
    const key = [...trustCi][0].keyObject;
    expect(SIGNATURE_CONTEXT.byteLength).toBe(26);
    expect(verify(null, Buffer.concat([Buffer.from('hexz/v2/trailer-signature\0'), t.subarray(0, 160)]), key, t.subarray(160, 224))).toBe(true);
    const trailer = decodeTrailer(t, bytes.byteLength);
    expect(checkSignature(t, trailer, trustCi)).toEqual({ state: 'trusted', formatVersion: 2, keyId: toHex(ci.keyId), signer: 'ci' });
    expect(checkSignature(t, trailer)).toEqual({ state: 'unchecked', formatVersion: 2, keyId: toHex(ci.keyId) });
  });

  it('opens with trusted keys, in as many reads as without them', async () => {
    let reads = 0;
    const counting = (s: Storage): Storage => ({
      ...s,
      url: s.url,
      backend: s.backend,
      stat: (o) => s.stat(o),
      close: () => s.close(),
      read: (o, l, opt) => (reads++, s.read(o, l, opt)),
      readTail: (l, opt) => (reads++, s.readTail(l, opt)),
    });
    const plain = await openArchive(signed, { cache, wrapStorage: counting });
    const without = reads;
    await plain.close();
    reads = 0;
    const a = await openArchive(signed, { cache, wrapStorage: counting, trustedKeys: trustCi });
    expect(reads).toBe(without);
    expect(reads).toBeLessThanOrEqual(2);
    expect(await a.signatures(trustCi)).toEqual([expect.objectContaining({ slot: 0, state: 'trusted', uuid: a.uuid, signer: 'ci' })]);
    expect(a.info().signature).toEqual({ algorithm: 'ed25519', keyId: toHex(ci.keyId) });
    const report = await verifyArchive(a, { trustedKeys: trustCi });
    expect(report.ok, JSON.stringify(report.problems)).toBe(true);
    await a.close();
  });

  it('refuses an unsigned archive, an unknown signer and a version 1 archive', async () => {
    const unsigned = await packTo('unsigned.hxz');
    const e1 = await errorOf(openArchive(unsigned, { cache, trustedKeys: trustCi }));
    expect([e1.code, e1.context.remedy]).toEqual(['UNSIGNED', 'sign']);
    expect(e1.message).toContain(`${path.basename(unsigned)} is not signed`);
    const byRogue = await packTo('rogue.hxz', { signKey: rogue });
    const e2 = await errorOf(openArchive(byRogue, { cache, trustedKeys: trustCi }));
    expect(e2.code).toBe('UNTRUSTED_SIGNER');
    expect(e2.context.keyId).toBe(toHex(rogue.keyId));
    const e3 = await errorOf(openArchive(GOLDEN_V1, { cache, trustedKeys: trustCi }));
    expect([e3.code, e3.context.remedy]).toEqual(['UNSIGNED', 'repack']);
    expect(e3.message).toMatch(/format version 1 archive, which cannot carry a signature/);
    for (const code of ['UNSIGNED', 'UNTRUSTED_SIGNER', 'BAD_SIGNATURE'] as const) {
      expect(ERROR_TABLE[code]).toMatchObject({ exit: 27, http: 403, errno: 'EACCES' });
    }
  });

  it('refuses a tampered signature, and a signed field changed with its checksum recomputed', async () => {
    const badSig = await withTrailer(signed, at('bad-sig.hxz'), (t) => (t[170] ^= 1));
    const e1 = await errorOf(openArchive(badSig, { cache, trustedKeys: trustCi }));
    expect(e1.code).toBe('BAD_SIGNATURE');
    expect(e1.message).toMatch(/does not verify: the archive was altered after it was signed/);
    // A flipped byte of the root hash: the trailer checksum is right, the signature is not.
    const badRoot = await withTrailer(signed, at('bad-root.hxz'), (t) => (t[48] ^= 1));
    expect(await codeOf(openArchive(badRoot, { cache, trustedKeys: trustCi }))).toBe('BAD_SIGNATURE');
    // Without trusted keys the reader still catches it, as corruption (the root's hash).
    expect(await codeOf(openArchive(badRoot, { cache }))).toBe('CORRUPT');
    // Claiming a trusted signer over a rogue's signature: the key id is signed too.
    const rogueFile = await packTo('rogue-claims-ci.hxz', { signKey: rogue });
    const claimed = await withTrailer(rogueFile, at('claimed.hxz'), (t) => Buffer.from(ci.keyId).copy(t, 128));
    expect(await codeOf(openArchive(claimed, { cache, trustedKeys: trustCi }))).toBe('BAD_SIGNATURE');
  });

  it('checks the signature before the key: an untrusted encrypted archive costs no key derivation', async () => {
    await writeNewKeyFile(at('data.key'));
    const key = { kind: 'key' as const, key: await readKeyFile(at('data.key')) };
    const enc = await packTo('enc-rogue.hxz', { key, encrypt: true, signKey: rogue });
    expect(await codeOf(openArchive(enc, { cache, trustedKeys: trustCi }))).toBe('UNTRUSTED_SIGNER');
    expect(await codeOf(openArchive(enc, { cache }))).toBe('KEY_REQUIRED');
  });
});

describe('encrypted signed archives', () => {
  it('are signed the same way; signing needs no encryption key, and the trailer shows no name', async () => {
    const key = { kind: 'passphrase' as const, passphrase: 'correct horse battery staple' };
    const enc = await packTo('enc.hxz', { key, encrypt: true });
    const s = await signArchive(enc, { key: ci });
    expect(s).toMatchObject({ unchanged: false, keyId: toHex(ci.keyId) });
    const a = await openArchive(enc, { cache, key, trustedKeys: trustCi });
    expect(a.encrypted).toBe(true);
    expect(Buffer.from(await a.read('notes/secret-plans.txt', 0, 100)).equals(textBytes(200_000, 4).subarray(0, 100))).toBe(true);
    await a.close();
    const bytes = await fs.readFile(enc);
    const trailer = bytes.subarray(bytes.byteLength - TRAILER);
    expect(trailer.includes(Buffer.from('secret'))).toBe(false);
    expect(bytes.includes(Buffer.from('secret-plans'))).toBe(false);
    // The key is still needed to read, signed or not.
    expect(await codeOf(openArchive(enc, { cache, trustedKeys: trustCi }))).toBe('KEY_REQUIRED');
  });
});

describe('chains', () => {
  let v2Dir: string;

  beforeAll(async () => {
    v2Dir = at('in-v2');
    await writeTree(v2Dir, { 'data/random.bin': randomBytesSeeded(MiB, 3), 'notes/secret-plans.txt': textBytes(200_000, 5), 'added.txt': 'new\n' });
  });

  it('refuses a trusted delta whose base is unsigned or signed by an untrusted key, naming the base', async () => {
    const base = await packTo('chain-base.hxz', { signKey: rogue });
    const delta = await packTo('chain-delta.hxz', { bases: [base], signKey: ci }, v2Dir);
    const e = await errorOf(openChain(delta, { cache, trustedKeys: trustCi }));
    expect(e.code).toBe('UNTRUSTED_SIGNER');
    const baseUuid = (await openArchive(base, { cache }).then(async (b) => (await b.close(), b.uuid)));
    expect(e.context).toMatchObject({ base: baseUuid, slot: 1, keyId: toHex(rogue.keyId) });
    expect(e.message).toContain(`base ${baseUuid} of `);

    const plainBase = await packTo('chain-base-unsigned.hxz');
    const delta2 = await packTo('chain-delta2.hxz', { bases: [plainBase], signKey: ci }, v2Dir);
    const e2 = await errorOf(openChain(delta2, { cache, trustedKeys: trustCi }));
    expect([e2.code, e2.context.slot]).toEqual(['UNSIGNED', 1]);

    // Signing the base (its trailer only) fixes the chain: the delta's record of it still matches.
    await signArchive(plainBase, { key: ci });
    const a = await openArchive(delta2, { cache, trustedKeys: trustCi });
    expect((await a.signatures(trustCi)).map((c) => [c.slot, c.state])).toEqual([
      [0, 'trusted'],
      [1, 'trusted'],
    ]);
    const report = await verifyArchive(a, { trustedKeys: trustCi });
    expect(report.ok, JSON.stringify(report.problems)).toBe(true);
    await a.close();

    // verify (opened without enforcement) names every untrusted member of the chain.
    const b = await openArchive(delta, { cache });
    const r = await verifyArchive(b, { trustedKeys: trustCi });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.code)).toEqual(['UNTRUSTED_SIGNER']);
    expect(r.signatures.map((c) => c.state)).toEqual(['trusted', 'untrusted']);
    await b.close();
  });

  it('a base replaced by another signed archive is a base mismatch, however trusted its signer', async () => {
    const base = await packTo('swap-base.hxz', { signKey: ci });
    const delta = await packTo('swap-delta.hxz', { bases: [base], signKey: ci }, v2Dir);
    await packTo('swap-base.hxz', { signKey: ci }, v2Dir);
    expect(await codeOf(openChain(delta, { cache, trustedKeys: trustCi }))).toBe('BASE_MISMATCH');
  });

  it('flatten: a new archive, unsigned unless given a key; a delta of the flattened base keeps opening only while the original base is in place', async () => {
    const v1 = await packTo('flat-v1.hxz', { signKey: ci });
    const v2 = await packTo('flat-v2.hxz', { bases: [v1], signKey: ci }, v2Dir);
    const v3Dir = at('in-v3');
    await writeTree(v3Dir, { 'added.txt': 'newer\n', 'data/random.bin': randomBytesSeeded(MiB, 3) });
    const v3 = await packTo('flat-v3.hxz', { bases: [v2], signKey: ci }, v3Dir);

    const delta = await openArchive(v2, { cache, trustedKeys: trustCi });
    await flattenArchive(delta, at('flat-v2-unsigned.hxz'));
    await flattenArchive(delta, at('flat-v2-signed.hxz'), { signKey: ci });
    await delta.close();
    expect(await codeOf(openArchive(at('flat-v2-unsigned.hxz'), { cache, trustedKeys: trustCi }))).toBe('UNSIGNED');
    const flat = await openArchive(at('flat-v2-signed.hxz'), { cache, trustedKeys: trustCi });
    expect(flat.bases.count).toBe(0);
    await flat.close();

    // v3 still names v2 (UUID and root hash) and v1: with them in place its signature and chain hold…
    const chain = await openArchive(v3, { cache, trustedKeys: trustCi });
    expect((await chain.signatures(trustCi)).map((c) => c.state)).toEqual(['trusted', 'trusted', 'trusted']);
    await chain.close();
    // …but the flattened copy put in v2's place is another archive (new UUID, new root): a mismatch.
    await fs.copyFile(at('flat-v2-signed.hxz'), v2);
    expect(await codeOf(openChain(v3, { cache, trustedKeys: trustCi }))).toBe('BASE_MISMATCH');
  });
});

describe('sign', () => {
  it('replaces only the trailer, in place: same size, mode, UUID and root hash; the same key again changes nothing', async () => {
    const file = await packTo('to-sign.hxz');
    await fs.chmod(file, 0o640);
    const before = await fs.readFile(file);
    const s = await signArchive(file, { key: ci });
    expect(s).toMatchObject({ unchanged: false, previousKeyId: undefined, archiveBytes: before.byteLength });
    const after = await fs.readFile(file);
    expect(after.byteLength).toBe(before.byteLength);
    expect(after.subarray(0, after.byteLength - TRAILER).equals(before.subarray(0, before.byteLength - TRAILER))).toBe(true);
    expect(after.subarray(after.byteLength - TRAILER, after.byteLength - TRAILER + 120).equals(before.subarray(before.byteLength - TRAILER, before.byteLength - TRAILER + 120))).toBe(true);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o640);
    expect((await fs.readdir(tmp.dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await signArchive(file, { key: ci })).unchanged).toBe(true);
    const resigned = await signArchive(file, { key: rogue });
    expect(resigned.previousKeyId).toBe(toHex(ci.keyId));
    expect(await codeOf(openArchive(file, { cache, trustedKeys: trustCi }))).toBe('UNTRUSTED_SIGNER');
  });

  it('writes a signed copy elsewhere, refusing an existing output without overwrite', async () => {
    const file = await packTo('copy-src.hxz');
    await fs.writeFile(at('copy-out.hxz'), 'occupied');
    expect(await codeOf(signArchive(file, { key: ci, output: at('copy-out.hxz') }))).toBe('EXISTS');
    await signArchive(file, { key: ci, output: at('copy-out.hxz'), overwrite: true });
    await (await openArchive(at('copy-out.hxz'), { cache, trustedKeys: trustCi })).close();
    expect(await codeOf(openArchive(file, { cache, trustedKeys: trustCi }))).toBe('UNSIGNED');
  });

  it('refuses a version 1 archive (no slot), a truncated one, and one whose root does not match its trailer', async () => {
    const e = await errorOf(signArchive(GOLDEN_V1, { key: ci, output: at('v1-signed.hxz') }));
    expect([e.code, e.context.remedy]).toEqual(['UNSUPPORTED_VERSION', 'repack']);
    const good = await fs.readFile(await packTo('cut.hxz'));
    await fs.writeFile(at('cut.hxz'), good.subarray(0, good.byteLength - 100));
    expect(await codeOf(signArchive(at('cut.hxz'), { key: ci }))).toBe('TRUNCATED');
    const badRoot = await withTrailer(at('signed.hxz'), at('bad-root-sign.hxz'), (t) => (t[48] ^= 1));
    expect(await codeOf(signArchive(badRoot, { key: ci }))).toBe('CORRUPT');
  });
});
