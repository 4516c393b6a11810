/**
 * Signing from the command line, as a user runs it (child processes): `keygen --sign`, `pack
 * --sign-key` to a file and streamed to a real S3-compatible server, `sign` in place and to another
 * location (remote sources need an explicit output), `info` and `verify --trusted-keys` (which report
 * instead of refusing, with their exit codes), `--trusted-keys` / `HEXZ_TRUSTED_KEYS` refusing
 * everywhere else, `flatten --sign-key` and `commit --sign-key`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@hexz/src/hash.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const GOLDEN_V1 = new URL('../fixtures/golden-v1.hxz', import.meta.url).pathname;
let tmp: { dir: string; cleanup: () => Promise<void> };
let s3: S3TestServer;
let input: string;
let ciKeyId: string;
const at = (name: string) => path.join(tmp.dir, name);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-sign-cli-');
  s3 = await startS3Server({ buckets: ['datasets'] });
  input = at('in');
  await writeTree(input, { 'model/weights.bin': randomBytesSeeded(12 * MiB, 1), 'corpus/text.txt': textBytes(MiB, 2) });
  const ci = await hexzJson(['keygen', '--sign', at('ci')]);
  expect(ci.code, ci.stderr).toBe(0);
  ciKeyId = ci.json.keyId;
  expect((await hexz(['keygen', '--sign', at('rogue')])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  await tmp?.cleanup();
});

describe('hexz keygen --sign', () => {
  it('writes NAME.key 0600 and NAME.pub 0644, prints the key id, and refuses to replace them without --force', async () => {
    const r = await hexz(['keygen', '--sign', at('team')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await fs.stat(at('team.key'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(at('team.pub'))).mode & 0o777).toBe(0o644);
    const line = (await fs.readFile(at('team.pub'), 'utf8')).trim();
    const id = Buffer.from(hash(Buffer.from(line.split(' ')[1], 'base64'))).toString('hex');
    expect(r.stdout.toString()).toContain(`key id: ${id}`);
    const again = await hexz(['keygen', '--sign', at('team')]);
    expect(again.code).toBe(20);
    expect(again.stderr).toMatch(/team\.key already exists \(use --force to replace it\)/);
    expect((await fs.readFile(at('team.pub'), 'utf8')).trim()).toBe(line);
    expect((await hexz(['keygen', '--sign', '--force', at('team')])).code).toBe(0);
    expect((await fs.readFile(at('team.pub'), 'utf8')).trim()).not.toBe(line);
  });
});

describe('signing and checking from the command line', () => {
  it('pack --sign-key, then info and verify with --trusted-keys; refusals everywhere else', async () => {
    const packed = await hexzJson(['pack', input, at('a.hxz'), '--sign-key', at('ci.key')]);
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.json.signerKeyId).toBe(ciKeyId);

    const info = await hexzJson(['info', at('a.hxz'), '--trusted-keys', at('ci.pub')]);
    expect(info.json.signature).toEqual({ algorithm: 'ed25519', keyId: ciKeyId });
    expect(info.json.signatures).toEqual([expect.objectContaining({ slot: 0, state: 'trusted', keyId: ciKeyId, signer: 'ci' })]);
    const text = await hexz(['info', at('a.hxz')]);
    expect(text.stdout.toString()).toMatch(new RegExp(`signature: +Ed25519, key ${ciKeyId} \\(not checked: no trusted keys given\\)`));
    const untrustedInfo = await hexz(['info', at('a.hxz'), '--trusted-keys', at('rogue.pub')]);
    expect(untrustedInfo.code).toBe(0);
    expect(untrustedInfo.stdout.toString()).toContain('NOT TRUSTED');

    const ok = await hexz(['verify', at('a.hxz'), '--trusted-keys', at('ci.pub')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.toString()).toMatch(/^OK: /);
    expect(ok.stdout.toString()).toContain(`signature of the archive: Ed25519, key ${ciKeyId}: trusted (ci)`);
    const bad = await hexzJson(['verify', at('a.hxz'), '--trusted-keys', at('rogue.pub')]);
    expect(bad.code).toBe(27);
    expect(bad.json.problems.map((p: { code: string }) => p.code)).toEqual(['UNTRUSTED_SIGNER']);

    // A trusted-keys directory (both keys) from the environment: every command checks.
    await fs.mkdir(at('trusted'));
    await fs.copyFile(at('ci.pub'), at('trusted/ci.pub'));
    expect((await hexz(['ls', at('a.hxz')], { env: { HEXZ_TRUSTED_KEYS: at('trusted') } })).code).toBe(0);
    const refused = await hexzJson(['cat', at('a.hxz'), 'corpus/text.txt'], { env: { HEXZ_TRUSTED_KEYS: at('rogue.pub') } });
    expect(refused.code).toBe(27);
    expect(refused.json.error).toMatchObject({ code: 'UNTRUSTED_SIGNER', context: { keyId: ciKeyId } });
    expect(refused.stderr).toContain('add its .pub line to the --trusted-keys file or directory');
    const missing = await hexz(['ls', at('a.hxz'), '--trusted-keys', at('nope.pub')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/trusted keys .*nope\.pub: not found/);
  });

  it('sign replaces a local archive atomically; verify tells damage (exit 4) from signatures (exit 27)', async () => {
    expect((await hexz(['pack', input, at('u.hxz'), '-q'])).code).toBe(0);
    const unsigned = await hexz(['ls', at('u.hxz'), '--trusted-keys', at('ci.pub')]);
    expect(unsigned.code).toBe(27);
    expect(unsigned.stderr).toContain('is not signed; a signature by a trusted key is required (sign it: hexz sign ARCHIVE --sign-key KEY');
    const before = await fs.stat(at('u.hxz'));
    const s = await hexzJson(['sign', at('u.hxz'), '--sign-key', at('ci.key')]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.json).toMatchObject({ keyId: ciKeyId, unchanged: false });
    expect((await fs.stat(at('u.hxz'))).size).toBe(before.size);
    expect((await fs.stat(at('u.hxz'))).ino).not.toBe(before.ino);
    expect((await hexz(['verify', at('u.hxz'), '--trusted-keys', at('ci.pub')])).code).toBe(0);
    const again = await hexz(['sign', at('u.hxz'), '--sign-key', at('ci.key')]);
    expect(again.stdout.toString()).toContain('already signed by key');

    // A damaged chunk in a signed archive: verify reports it as damage, exit 4.
    const bytes = await fs.readFile(at('u.hxz'));
    bytes[1000] ^= 0xff;
    await fs.writeFile(at('damaged.hxz'), bytes);
    const damaged = await hexzJson(['verify', at('damaged.hxz'), '--trusted-keys', at('ci.pub')]);
    expect(damaged.code).toBe(4);
    expect(damaged.json.problems.some((p: { code: string }) => p.code === 'CORRUPT')).toBe(true);

    const noKey = await hexz(['sign', at('u.hxz')]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('give --sign-key FILE (hexz keygen --sign NAME makes one)');
    const encKey = at('enc.key');
    expect((await hexz(['keygen', encKey])).code).toBe(0);
    const wrongKind = await hexz(['sign', at('u.hxz'), '--sign-key', encKey]);
    expect(wrongKind.code).toBe(2);
    expect(wrongKind.stderr).toContain('this is an encryption key, not a signing key');
  });

  it('refuses to sign a version 1 archive, saying how to get a version 2 one', async () => {
    const r = await hexz(['sign', GOLDEN_V1, '--sign-key', at('ci.key'), '--output', at('v1.hxz')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('format version 1 archive, which has no signature slot: repack it (hexz pack) or flatten it (hexz flatten --sign-key KEY)');
    const verify = await hexz(['verify', GOLDEN_V1, '--trusted-keys', at('ci.pub')]);
    expect(verify.code).toBe(27);
    expect(verify.stdout.toString()).toContain('none (format version 1 cannot be signed)');
    // flatten of the v1 archive writes version 2, and signs it.
    const flat = await hexz(['flatten', GOLDEN_V1, at('v1-flat.hxz'), '--sign-key', at('ci.key')]);
    expect(flat.code, flat.stderr).toBe(0);
    expect((await hexz(['verify', at('v1-flat.hxz'), '--trusted-keys', at('ci.pub')])).code).toBe(0);
  });

  it('flatten: unsigned unless --sign-key, and says so for a signed delta', async () => {
    const v2 = at('in-v2');
    await writeTree(v2, { 'model/weights.bin': randomBytesSeeded(12 * MiB, 1), 'corpus/text.txt': textBytes(MiB, 3) });
    expect((await hexz(['pack', v2, at('d.hxz'), '--base', at('a.hxz'), '--sign-key', at('ci.key'), '-q'])).code).toBe(0);
    const chain = await hexzJson(['info', at('d.hxz'), '--trusted-keys', at('ci.pub')]);
    expect(chain.json.signatures.map((c: { state: string }) => c.state)).toEqual(['trusted', 'trusted']);
    expect(chain.json.bases[0].signature).toMatchObject({ state: 'trusted' });
    const plain = await hexz(['flatten', at('d.hxz'), at('d-flat.hxz')]);
    expect(plain.stdout.toString()).toContain('the result is unsigned: a signature covers one root');
    expect((await hexz(['ls', at('d-flat.hxz'), '--trusted-keys', at('ci.pub')])).code).toBe(27);
    const signed = await hexz(['flatten', at('d.hxz'), at('d-flat-signed.hxz'), '--sign-key', at('ci.key')]);
    expect(signed.stdout.toString()).toContain(`signed with key ${ciKeyId}`);
    expect((await hexz(['ls', at('d-flat-signed.hxz'), '--trusted-keys', at('ci.pub')])).code).toBe(0);
  });

  it('commit --sign-key signs the delta a workspace commits', async () => {
    const ws = at('ws');
    expect((await hexz(['checkout', '--copy', at('a.hxz'), ws, '--trusted-keys', at('ci.pub')])).code).toBe(0);
    await fs.writeFile(path.join(ws, 'corpus/added.txt'), 'new\n');
    const c = await hexzJson(['commit', at('c.hxz'), '-C', ws, '--sign-key', at('ci.key')]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.json.pack.signerKeyId).toBe(ciKeyId);
    expect((await hexz(['verify', at('c.hxz'), '--trusted-keys', at('ci.pub')])).code).toBe(0);
  });
});

describe('signing on S3', () => {
  const env = () => s3.env;

  it('pack --sign-key streams a signed archive into a multipart upload; verify checks it there', async () => {
    const r = await hexzJson(['pack', input, 's3://datasets/ds/v1.hxz', '--sign-key', at('ci.key')], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.uploadedBytes).toBeGreaterThan(12 * MiB);
    const v = await hexz(['verify', 's3://datasets/ds/v1.hxz', '--trusted-keys', at('ci.pub')], { env: env() });
    expect(v.code, v.stdout.toString() + v.stderr).toBe(0);
    expect((await hexz(['ls', 's3://datasets/ds/v1.hxz', '--trusted-keys', at('rogue.pub')], { env: env() })).code).toBe(27);
  });

  it('sign of a remote archive needs an explicit output; to S3 it streams, trailer last', async () => {
    expect((await hexz(['pack', input, 's3://datasets/ds/plain.hxz', '-q'], { env: env() })).code).toBe(0);
    const refused = await hexz(['sign', 's3://datasets/ds/plain.hxz', '--sign-key', at('ci.key')], { env: env() });
    expect(refused.code).toBe(13);
    expect(refused.stderr).toContain('give --output LOCATION to write a signed copy');
    const copy = await hexzJson(['sign', 's3://datasets/ds/plain.hxz', '--sign-key', at('ci.key'), '--output', 's3://datasets/ds/signed.hxz'], { env: env() });
    expect(copy.code, copy.stderr).toBe(0);
    expect((await hexz(['verify', 's3://datasets/ds/signed.hxz', '--trusted-keys', at('ci.pub')], { env: env() })).code).toBe(0);
    // In place on S3: the same URL as the output, with --force.
    const inPlace = await hexz(['sign', 's3://datasets/ds/plain.hxz', '--sign-key', at('ci.key'), '--output', 's3://datasets/ds/plain.hxz', '--force'], { env: env() });
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect((await hexz(['ls', 's3://datasets/ds/plain.hxz', '--trusted-keys', at('ci.pub')], { env: env() })).code).toBe(0);
    // From S3 to a local file.
    const local = await hexz(['sign', 's3://datasets/ds/v1.hxz', '--sign-key', at('rogue.key'), '--output', at('from-s3.hxz')], { env: env() });
    expect(local.code, local.stderr).toBe(0);
    expect((await hexz(['ls', at('from-s3.hxz'), '--trusted-keys', at('rogue.pub')])).code).toBe(0);
  });
});
