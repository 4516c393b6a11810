/**
 * The gateway with trusted keys: only archives whose whole chain is signed by a trusted key are
 * served; every other one answers 403 with the JSON error naming what is wrong (unsigned, unknown
 * signer, bad signature, a base signed by an untrusted key), the refusal is remembered for one TTL
 * like other lasting open failures, counted in /metrics, and a replaced archive is checked again.
 * `hexz serve` takes the keys from --trusted-keys, HEXZ_TRUSTED_KEYS or the config file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSigningKeyFile, writeSigningKeyPair } from '@hexz/src/crypto/signing-keys.js';
import type { SigningKey } from '@hexz/src/crypto/signatures.js';
import { signArchive } from '@hexz/src/packer/sign.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { loadServeConfig } from '@hexz/src/cli/serve-config.js';
import { hash } from '@hexz/src/hash.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { errorOf } from '../helpers/errors.js';
import { hexz } from '../helpers/cli.js';
import { spawnServe, stopAllServes } from '../helpers/serve.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, getJson, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let src: string;
let src2: string;
let ci: SigningKey;
let rogue: SigningKey;
let ciPub: string;
/** Refusals remembered for a minute. */
let gw: Gateway;
/** Every request opens afresh (TTL 0): replacements and fixes are seen at once. */
let fresh: Gateway;
const content = randomBytesSeeded(400_000, 71);
const TRAILER = 256;

/** The value of one sample of the exposition text, 0 when absent. */
async function sample(g: Gateway, series: string): Promise<number> {
  const text = (await get(`${g.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-signed-');
  src = path.join(tmp.dir, 'src');
  src2 = path.join(tmp.dir, 'src2');
  await fs.mkdir(src);
  await fs.mkdir(src2);
  await fs.writeFile(path.join(src, 'data.bin'), content);
  await fs.writeFile(path.join(src2, 'data.bin'), content);
  await fs.writeFile(path.join(src2, 'new.txt'), 'new\n');
  ciPub = (await writeSigningKeyPair(path.join(tmp.dir, 'ci'))).publicKeyFile;
  await writeSigningKeyPair(path.join(tmp.dir, 'rogue'));
  ci = await readSigningKeyFile(path.join(tmp.dir, 'ci.key'));
  rogue = await readSigningKeyFile(path.join(tmp.dir, 'rogue.key'));
  root = path.join(tmp.dir, 'archives');
  const signedBase = await packArchive(src, root, 'ds/v1', { signKey: ci });
  await packArchive(src2, root, 'ds/v2', { signKey: ci, bases: [signedBase] });
  await packArchive(src, root, 'unsigned');
  await packArchive(src, root, 'rogue', { signKey: rogue });
  const rogueBase = await packArchive(src, root, 'chain/base', { signKey: rogue });
  await packArchive(src2, root, 'chain/delta', { signKey: ci, bases: [rogueBase] });
  const good = await fs.readFile(await packArchive(src, root, 'tampered', { signKey: ci }));
  const t = good.subarray(good.byteLength - TRAILER);
  t[48] ^= 1; // a byte of the root hash, with the trailer checksum made right again
  hash(t.subarray(0, TRAILER - 8)).copy(t, TRAILER - 8, 0, 8);
  await fs.writeFile(path.join(root, 'tampered.hxz'), good);
  await packArchive(src, root, 'replaced', { signKey: ci });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', trustedKeys: ciPub, archiveTtlMs: 60_000 }, { processMetrics: false });
  fresh = await startGateway({ storage: root, port: 0, logLevel: 'silent', trustedKeys: ciPub, archiveTtlMs: 0 }, { processMetrics: false });
});

afterAll(async () => {
  await stopAllServes();
  await gw?.close();
  await fresh?.close();
  await tmp?.cleanup();
});

describe('a gateway with trusted keys', () => {
  it('serves archives (and chains) signed by a trusted key, and says who signed', async () => {
    const r = await get(`${gw.url}/v1/archives/ds/v2/files/new.txt`);
    expect([r.status, r.body.toString()]).toEqual([200, 'new\n']);
    const info = await getJson(`${gw.url}/v1/archives/ds/v2`);
    expect(info.json.signature).toEqual({ algorithm: 'ed25519', keyId: Buffer.from(ci.keyId).toString('hex') });
  });

  it.each([
    ['unsigned', 'UNSIGNED', /unsigned\.hxz is not signed/],
    ['rogue', 'UNTRUSTED_SIGNER', /rogue\.hxz is signed by key [0-9a-f]{64}, which is not a trusted key/],
    ['tampered', 'BAD_SIGNATURE', /does not verify: the archive was altered after it was signed/],
    ['chain/delta', 'UNTRUSTED_SIGNER', /^base [0-9a-f-]{36} of chain\/delta\.hxz \(at chain\/base\.hxz\) is signed by key/],
  ])('refuses %s with 403 %s on every route', async (name, code, message) => {
    for (const route of [`/v1/archives/${name}`, `/v1/archives/${name}/tree/`, `/v1/archives/${name}/files/data.bin`]) {
      const r = await getJson(`${gw.url}${route}`);
      expect(r.status, route).toBe(403);
      expect(r.json.error.code, route).toBe(code);
      expect(r.json.error.message, route).toMatch(message);
      // The storage root's location never reaches the client.
      expect(r.json.error.message).not.toContain(root);
    }
  });

  it('remembers a refusal for one TTL, counts refusals (not requests) in /metrics, and the listing still shows the name', async () => {
    const before = await sample(gw, 'hexz_archive_refusals_total{reason="unsigned"}');
    expect(before).toBe(1); // from the test above: three requests, one refused open
    // unsigned.hxz is signed meanwhile, but the refusal stands for the TTL: no new open, no new count.
    await signArchive(path.join(root, 'unsigned.hxz'), { key: ci });
    expect((await getJson(`${gw.url}/v1/archives/unsigned/tree/`)).json.error.code).toBe('UNSIGNED');
    expect(await sample(gw, 'hexz_archive_refusals_total{reason="unsigned"}')).toBe(1);
    expect(await sample(gw, 'hexz_archive_refusals_total{reason="untrusted_signer"}')).toBe(2);
    expect(await sample(gw, 'hexz_archive_refusals_total{reason="bad_signature"}')).toBe(1);
    // A gateway that opens afresh sees the signed version.
    expect((await get(`${fresh.url}/v1/archives/unsigned/files/data.bin`)).status).toBe(200);
    const list = await getJson(`${gw.url}/v1/archives`);
    expect(list.json.archives.map((a: { name: string }) => a.name)).toContain('rogue');
  });

  it('checks a replaced archive again: an unsigned replacement of a signed archive is refused', async () => {
    expect((await get(`${fresh.url}/v1/archives/replaced/files/data.bin`)).status).toBe(200);
    await packArchive(src2, root, 'replaced');
    const r = await getJson(`${fresh.url}/v1/archives/replaced/files/new.txt`);
    expect([r.status, r.json.error.code]).toEqual([403, 'UNSIGNED']);
    expect(await sample(fresh, 'hexz_archive_refusals_total{reason="unsigned"}')).toBeGreaterThanOrEqual(1);
  });

  it('fails at start, naming the option, when the trusted keys cannot be read or hold no key', async () => {
    const e = await errorOf(startGateway({ storage: root, port: 0, logLevel: 'silent', trustedKeys: path.join(tmp.dir, 'none.pub') }));
    expect([e.code, e.context.option]).toEqual(['INVALID_ARGUMENT', 'trustedKeys']);
    await fs.writeFile(path.join(tmp.dir, 'empty.pub'), '# no keys yet\n');
    expect((await errorOf(startGateway({ storage: root, port: 0, logLevel: 'silent', trustedKeys: path.join(tmp.dir, 'empty.pub') }))).message).toMatch(/trustedKeys: trusted keys file .* holds no key/);
  });
});

describe('hexz serve --trusted-keys', () => {
  it('takes the keys from the flag, else HEXZ_TRUSTED_KEYS, else the config file', async () => {
    const file = path.join(tmp.dir, 'serve.json');
    await fs.writeFile(file, JSON.stringify({ trustedKeys: '/from/file' }));
    expect((await loadServeConfig({ config: file }, {})).trustedKeys).toBe('/from/file');
    expect((await loadServeConfig({ config: file }, { HEXZ_TRUSTED_KEYS: '/from/env' })).trustedKeys).toBe('/from/env');
    expect((await loadServeConfig({ config: file, trustedKeys: '/from/flag' }, { HEXZ_TRUSTED_KEYS: '/from/env' })).trustedKeys).toBe('/from/flag');
    expect((await loadServeConfig({}, {})).trustedKeys).toBeUndefined();
  });

  it('refuses untrusted archives with 403 when started from the command line', async () => {
    const s = await spawnServe(['--storage', root, '--port', '0', '--trusted-keys', ciPub]);
    expect((await get(`${s.url}/v1/archives/ds/v1/files/data.bin`)).status).toBe(200);
    const r = await getJson(`${s.url}/v1/archives/rogue/files/data.bin`);
    expect([r.status, r.json.error.code]).toEqual([403, 'UNTRUSTED_SIGNER']);
    const env = await spawnServe(['--storage', root, '--port', '0'], { env: { HEXZ_TRUSTED_KEYS: ciPub } });
    expect((await getJson(`${env.url}/v1/archives/chain/delta/tree/`)).status).toBe(403);
  });

  it('exits 2 naming --trusted-keys when the keys cannot be read', async () => {
    const r = await hexz(['serve', '--storage', root, '--port', '0', '--trusted-keys', path.join(tmp.dir, 'missing.pub')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--trusted-keys: trusted keys .*missing\.pub: not found/);
  });
});
