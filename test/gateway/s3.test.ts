/**
 * The gateway over a real S3-compatible server (s3rver in a child process): archives under a prefix,
 * a thin archive whose base is in the same bucket (resolved inside the root), a delta whose base hint
 * leads outside the root (refused: BASE_MISSING), byte-exact ranges through curl, readiness, and an
 * object replaced in the bucket while served.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import type { StorageOptions } from '@hexz/storage/index.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { randomBytesSeeded, sha256, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { curl, get, getJson, MiB } from './fixture.js';

const BUCKET = 'hexz-gw';
const TTL_MS = 200;

let s3: S3TestServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let storage: StorageOptions;
let gw: Gateway;
const v1Big = randomBytesSeeded(2 * MiB + 11, 51);
// v2: the same big file with an insert in the middle, a changed text, a new file.
const v2Big = Buffer.concat([v1Big.subarray(0, MiB), Buffer.from('inserted bytes'), v1Big.subarray(MiB)]);
const v1Text = textBytes(200_000, 52);
const v2Text = textBytes(210_000, 53);

beforeAll(async () => {
  s3 = await startS3Server({ buckets: [BUCKET] });
  Object.assign(process.env, s3.env);
  storage = { s3: { endpoint: s3.endpoint, forcePathStyle: true } };
  tmp = await makeTempDir('hexz-gw-s3-');
  const v1 = path.join(tmp.dir, 'v1');
  const v2 = path.join(tmp.dir, 'v2');
  await writeTree(v1, { 'big.bin': v1Big, 'notes/text.txt': v1Text });
  await writeTree(v2, { 'big.bin': v2Big, 'notes/text.txt': v2Text, 'notes/new.md': '# new\n' });
  const v1Url = `s3://${BUCKET}/datasets/ds/v1.hxz`;
  await pack(v1, v1Url, { storage, threads: 2 });
  await pack(v2, `s3://${BUCKET}/datasets/ds/v2.hxz`, { storage, threads: 2, bases: [v1Url] });
  // A delta inside the root whose base lives outside it: the gateway must not follow the hint.
  const outsideUrl = `s3://${BUCKET}/outside/base.hxz`;
  await pack(v1, outsideUrl, { storage, threads: 2 });
  await pack(v2, `s3://${BUCKET}/datasets/escapes.hxz`, { storage, threads: 2, bases: [outsideUrl] });
  await fs.writeFile(path.join(tmp.dir, 'solo.bin'), v1Big);
  await pack(path.join(tmp.dir, 'solo.bin'), `s3://${BUCKET}/datasets/solo.hxz`, { storage, threads: 2 });
  gw = await startGateway({ storage: `s3://${BUCKET}/datasets`, storageOptions: storage, port: 0, logLevel: 'silent', archiveTtlMs: TTL_MS }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await s3?.stop();
  await tmp?.cleanup();
});

describe('gateway over S3', () => {
  it('lists the archives under the prefix', async () => {
    const r = await getJson(`${gw.url}/v1/archives`);
    expect(r.json.archives.map((a: { name: string }) => a.name)).toEqual(['ds/v1', 'ds/v2', 'escapes', 'solo']);
    expect((await getJson(`${gw.url}/readyz`)).json.status).toBe('ready');
  });

  it('a thin archive: its base resolved in the same bucket, content byte-exact', async () => {
    const info = await getJson(`${gw.url}/v1/archives/ds/v2`);
    expect(info.status).toBe(200);
    expect(info.json.bases).toHaveLength(1);
    expect(info.json.bases[0]).toMatchObject({ name: 'ds/v1', hint: 'v1.hxz', direct: true });
    expect(info.json.bases[0].logicalBytes).toBeGreaterThan(MiB);
    expect(JSON.stringify(info.json)).not.toContain('s3://');

    const whole = await curl([`${gw.url}/v1/archives/ds/v2/files/big.bin`]);
    expect(whole.status).toBe(200);
    expect(sha256(whole.body)).toBe(sha256(v2Big));
    const across = await curl(['-r', `${MiB - 100}-${MiB + 200}`, `${gw.url}/v1/archives/ds/v2/files/big.bin`]);
    expect(across.body.equals(v2Big.subarray(MiB - 100, MiB + 201))).toBe(true);
    const suffix = await curl(['-r', '-5000', `${gw.url}/v1/archives/ds/v2/files/notes/text.txt`]);
    expect(suffix.body.equals(v2Text.subarray(v2Text.length - 5000))).toBe(true);
    const tree = await getJson(`${gw.url}/v1/archives/ds/v2/tree/notes`);
    expect(tree.json.entries.map((e: { name: string }) => e.name).sort()).toEqual(['new.md', 'text.txt']);
    const v1 = await curl(['-r', '0-999', `${gw.url}/v1/archives/ds/v1/files/big.bin`]);
    expect(v1.body.equals(v1Big.subarray(0, 1000))).toBe(true);
  });

  it('a base hint leading outside the storage root is refused (BASE_MISSING)', async () => {
    const r = await getJson(`${gw.url}/v1/archives/escapes/files/big.bin`);
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('BASE_MISSING');
    expect(r.json.error.message).not.toContain(`s3://${BUCKET}/datasets/`);
  });

  it('an object replaced in the bucket is served in its new version after the TTL, never mixed', async () => {
    const url = `${gw.url}/v1/archives/solo/disk`;
    expect(sha256((await get(url)).body)).toBe(sha256(v1Big));
    await fs.writeFile(path.join(tmp.dir, 'solo.bin'), v2Big);
    await pack(path.join(tmp.dir, 'solo.bin'), `s3://${BUCKET}/datasets/solo.hxz`, { storage, threads: 2, overwrite: true });
    let h = '';
    for (let i = 0; i < 100 && h !== sha256(v2Big); i++) {
      const r = await get(url);
      h = sha256(r.body);
      expect([sha256(v1Big), sha256(v2Big)]).toContain(h);
      if (h !== sha256(v2Big)) await sleep(TTL_MS / 2);
    }
    expect(h).toBe(sha256(v2Big));
  });

  it('storage that never answers: 504 TIMEOUT, and the next request opens afresh', async () => {
    const g = await startGateway({ storage: `s3://${BUCKET}/datasets`, storageOptions: storage, port: 0, logLevel: 'silent', requestTimeoutMs: 1_000 }, { processMetrics: false });
    try {
      await s3.setFaults({ hangRequests: 1 });
      const r = await getJson(`${g.url}/v1/archives/ds/v1/files/big.bin`);
      expect(r.status).toBe(504);
      expect(r.json.error.code).toBe('TIMEOUT');
      expect((await s3.setFaults()).hangRequests).toBe(0);
      const ok = await curl(['-r', '0-99', `${g.url}/v1/archives/ds/v1/files/big.bin`]);
      expect(ok.status).toBe(206);
      expect(ok.body.equals(v1Big.subarray(0, 100))).toBe(true);
    } finally {
      await g.close();
    }
  });

  it('metrics count S3 requests', async () => {
    const text = (await get(`${gw.url}/metrics`)).body.toString();
    expect(text).toMatch(/hexz_storage_requests_total\{backend="s3",op="tail",outcome="ok"\} \d+/);
    expect(text).toMatch(/hexz_storage_read_bytes_total\{backend="s3",op="read"\} \d+/);
  });
});
