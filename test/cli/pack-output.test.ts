/**
 * Where `hexz pack` writes, run as a child process against real files and a real S3-compatible server:
 * it never overwrites an archive the new one depends on (a base or an ancestor, however spelled),
 * never silently replaces an existing S3 object, and says "uploaded" for remote outputs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, sha256File, textBytes, writeTree } from '../helpers/data.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const BUCKET = 'out';
let tmp: { dir: string; cleanup: () => Promise<void> };
let s3: S3TestServer;
let client: S3Client;
let v1: string;
let v2: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-pack-out-');
  s3 = await startS3Server({ buckets: [BUCKET] });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  v1 = path.join(tmp.dir, 'v1');
  await writeTree(v1, { 'a.bin': randomBytesSeeded(3 * MiB, 1), 'notes.txt': textBytes(200_000, 2) });
  v2 = path.join(tmp.dir, 'v2');
  await writeTree(v2, { 'a.bin': randomBytesSeeded(3 * MiB, 1), 'notes.txt': textBytes(210_000, 3), 'new.txt': 'new\n' });
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await tmp?.cleanup();
});

async function etagOf(key: string): Promise<string | undefined> {
  return (await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ETag;
}

async function pendingUploads(): Promise<string[]> {
  return ((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.Key ?? '');
}

describe('pack never overwrites what the new archive depends on', () => {
  it('refuses a local output that is its own base, an alias of it, or an ancestor of a base; the archives stay intact', async () => {
    const self = path.join(tmp.dir, 'self.hxz');
    expect((await hexz(['pack', v1, self])).code).toBe(0);
    const before = await sha256File(self);

    const same = await hexz(['pack', v2, self, '--base', self, '--force']);
    expect(same.code, same.stderr).toBe(2);
    expect(same.stderr).toMatch(/the output .*self\.hxz is the base .*self\.hxz: packing would overwrite an archive the new one depends on/);

    // Other spellings of the same file: a relative path, a symlink, a hard link.
    await fs.symlink(self, path.join(tmp.dir, 'alias.hxz'));
    await fs.link(self, path.join(tmp.dir, 'hard.hxz'));
    for (const [out, base] of [
      ['self.hxz', `${tmp.dir}/./self.hxz`],
      ['alias.hxz', 'self.hxz'],
      ['self.hxz', 'hard.hxz'],
    ]) {
      const r = await hexz(['pack', v2, out, '--base', base, '--force'], { cwd: tmp.dir });
      expect(r.code, `${out} over ${base}: ${r.stderr}`).toBe(2);
    }

    // An ancestor: v2 is a delta of self; packing v3 over self with base v2 would break v2 and v3.
    const d2 = path.join(tmp.dir, 'd2.hxz');
    expect((await hexz(['pack', v2, d2, '--base', self])).code).toBe(0);
    const anc = await hexz(['pack', v2, self, '--base', d2, '--force']);
    expect(anc.code).toBe(2);
    expect(anc.stderr).toMatch(/self\.hxz is an ancestor of the base .*d2\.hxz \(part of its chain\)/);

    expect(await sha256File(self)).toBe(before);
    expect((await hexz(['verify', d2])).code).toBe(0);
    expect((await fs.readdir(tmp.dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses the same for s3:// outputs (the base, or an ancestor), leaving the objects untouched', async () => {
    const env = s3.env;
    const base = `s3://${BUCKET}/ds/v1.hxz`;
    expect((await hexz(['pack', v1, base], { env })).code).toBe(0);
    const delta = `s3://${BUCKET}/ds/v2.hxz`;
    expect((await hexz(['pack', v2, delta, '--base', base], { env })).code).toBe(0);
    const [etag1, etag2] = [await etagOf('ds/v1.hxz'), await etagOf('ds/v2.hxz')];

    const same = await hexz(['pack', v2, base, '--base', base, '--force'], { env });
    expect(same.code, same.stderr).toBe(2);
    expect(same.stderr).toMatch(/is the base/);
    // The same key spelled with escapes is the same object.
    const escaped = await hexz(['pack', v2, `s3://${BUCKET}/ds/v%31.hxz`, '--base', base, '--force'], { env });
    expect(escaped.code, escaped.stderr).toBe(2);
    const anc = await hexz(['pack', v2, base, '--base', delta, '--force'], { env });
    expect(anc.code).toBe(2);
    expect(anc.stderr).toMatch(/is an ancestor/);

    expect([await etagOf('ds/v1.hxz'), await etagOf('ds/v2.hxz')]).toEqual([etag1, etag2]);
    expect((await hexz(['verify', delta], { env })).code).toBe(0);
    expect(await pendingUploads()).toEqual([]);
  });
});

describe('pack to s3://', () => {
  it('refuses an existing object without --force (EXISTS, exit 20) like a local file, and replaces it with --force', async () => {
    const env = s3.env;
    const url = `s3://${BUCKET}/ok.hxz`;
    const first = await hexzJson(['pack', v1, url], { env });
    expect(first.code, first.stderr).toBe(0);
    const etag = await etagOf('ok.hxz');

    const again = await hexz(['pack', v2, url], { env });
    expect(again.code).toBe(20);
    expect(again.stderr).toMatch(/s3:\/\/out\/ok\.hxz already exists \(use --force to replace it\)/);
    expect(await etagOf('ok.hxz')).toBe(etag);
    expect(await pendingUploads()).toEqual([]);

    const forced = await hexzJson(['pack', v2, url, '--force'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.json.uuid).not.toBe(first.json.uuid);
    expect((await hexzJson(['info', url], { env })).json.uuid).toBe(forced.json.uuid);

    // The local behaviour it now matches.
    const local = path.join(tmp.dir, 'ok.hxz');
    expect((await hexz(['pack', v1, local])).code).toBe(0);
    expect((await hexz(['pack', v1, local])).code).toBe(20);
  });

  it('the summary says "uploaded" for remote outputs (uploadedBytes in --json), "written"/"archive" for local ones', async () => {
    const env = s3.env;
    const base = path.join(tmp.dir, 'sum-v1.hxz');
    expect((await hexz(['pack', v1, base])).code).toBe(0);

    const remote = await hexz(['pack', v2, `s3://${BUCKET}/sum/v2.hxz`, '--base', base], { env });
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout.toString()).toMatch(/^uploaded: +\S+ \S+ \(bases' indexes read: /m);
    expect(remote.stdout.toString()).not.toMatch(/^written:/m);
    const remoteJson = await hexzJson(['pack', v1, `s3://${BUCKET}/sum/v1.hxz`], { env });
    expect(remoteJson.json.uploadedBytes).toBe(remoteJson.json.archiveBytes);
    expect(remoteJson.json.uploadedBytes).toBeGreaterThan(3 * MiB);

    const local = await hexz(['pack', v2, path.join(tmp.dir, 'sum-v2.hxz'), '--base', base]);
    expect(local.stdout.toString()).toMatch(/^written: /m);
    expect(local.stdout.toString()).not.toMatch(/uploaded/);
    const localJson = await hexzJson(['pack', v1, path.join(tmp.dir, 'sum-local.hxz')]);
    expect(localJson.json.uploadedBytes).toBeUndefined();
    expect((await hexz(['pack', v1, path.join(tmp.dir, 'sum-plain.hxz')])).stdout.toString()).toMatch(/^archive: /m);
  });
});
