/**
 * Encrypted archives through the gateway: keys come from the key directory by name prefix (or the
 * global fallback), never from the request; an archive without a matching key answers 403.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { curl, getJson, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
let plainGw: Gateway;
const content = randomBytesSeeded(700_000, 61);
const teamKey = randomBytes(32);
const otherKey = randomBytes(32);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-keys-');
  const src = path.join(tmp.dir, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'secret.bin'), content);
  const root = path.join(tmp.dir, 'archives');
  await packArchive(src, root, 'team-a/ds', { key: { kind: 'key', key: teamKey } });
  await packArchive(src, root, 'team-b/ds', { key: { kind: 'passphrase', passphrase: 'correct horse' } });
  await packArchive(src, root, 'other', { key: { kind: 'key', key: otherKey } });
  await packArchive(src, root, 'plain');
  await packArchive(src, root, 'team-a/swapped'); // plain, under a keyed prefix
  const keys = path.join(tmp.dir, 'keys');
  await fs.mkdir(keys);
  await fs.writeFile(path.join(keys, 'team-a.key'), teamKey.toString('hex'), { mode: 0o600 });
  await fs.writeFile(path.join(keys, 'team-b.passphrase'), 'correct horse\n', { mode: 0o600 });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', keyDir: keys }, { processMetrics: false });
  plainGw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await plainGw?.close();
  await tmp?.cleanup();
});

describe('encrypted archives', () => {
  it('key and passphrase files by name prefix decrypt, byte-exact', async () => {
    for (const name of ['team-a/ds', 'team-b/ds', 'plain']) {
      const r = await curl(['-r', '1000-300000', `${gw.url}/v1/archives/${name}/files/secret.bin`]);
      expect(r.status, name).toBe(206);
      expect(r.body.equals(content.subarray(1000, 300001)), name).toBe(true);
    }
    const info = await getJson(`${gw.url}/v1/archives/team-a/ds`);
    expect(info.json).toMatchObject({ encrypted: true, keyDerivation: 'key' });
  });

  it('no matching key: 403 KEY_REQUIRED; a key sent by the client is never used', async () => {
    const r = await getJson(`${gw.url}/v1/archives/other/files/secret.bin`, { authorization: `Bearer ${otherKey.toString('hex')}`, 'x-hexz-key': otherKey.toString('hex') });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('KEY_REQUIRED');
    const none = await getJson(`${plainGw.url}/v1/archives/team-a/ds/tree/`);
    expect(none.status).toBe(403);
  });

  it('a plain archive under a prefix the key directory covers is refused (403 NOT_ENCRYPTED), not served', async () => {
    const r = await getJson(`${gw.url}/v1/archives/team-a/swapped/files/secret.bin`);
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('NOT_ENCRYPTED');
    // Without a key directory nothing requires encryption.
    const plain = await curl([`${plainGw.url}/v1/archives/team-a/swapped/files/secret.bin`]);
    expect(plain.status).toBe(200);
  });
});
