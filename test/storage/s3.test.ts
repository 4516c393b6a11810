/**
 * S3 backend behaviour beyond the conformance suite, against a real s3rver: multipart round trips,
 * uploads that fail (server killed, parts refused, interrupted) leaving no object and no pending
 * upload, no silent replacement of an existing object (up front, and conditionally on commit), listing
 * pagination, version pinning when the server ignores If-Match, aborts, and the lazy SDK import.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HexzError } from '@hexz/src/errors.js';
import { createWriter, openStorage, openStorageRoot, type StorageOptions } from '@hexz/storage/index.js';
import { errorOf } from '../helpers/errors.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

const BUCKET = 'hexz-s3';
let s3: S3TestServer;
let sdkClient: S3Client;
let opts: StorageOptions;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  s3 = await startS3Server({ buckets: [BUCKET] });
  Object.assign(process.env, s3.env);
  opts = { s3: { endpoint: s3.endpoint } };
  sdkClient = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});
afterAll(async () => {
  sdkClient?.destroy();
  for (const c of cleanups.reverse()) await c();
  await s3?.stop();
});

/** Keys of the bucket's pending multipart uploads, asked the S3 way (ListMultipartUploads). */
async function listUploads(): Promise<string[]> {
  const out = await sdkClient.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

async function exists(url: string, o: StorageOptions = opts): Promise<boolean> {
  try {
    await (await openStorage(url, o)).readTail(1);
    return true;
  } catch (err) {
    if (err instanceof HexzError && err.code === 'ARCHIVE_NOT_FOUND') return false;
    throw err;
  }
}

describe('s3: multipart upload', () => {
  it('round-trips an object larger than 20 MiB', async () => {
    const url = `s3://${BUCKET}/big/round-trip.bin`;
    const data = randomBytes(21 * 1024 * 1024 + 12345);
    const w = await createWriter(url, opts);
    for (let off = 0; off < data.byteLength; off += 1024 * 1024 + 3) await w.write(data.subarray(off, Math.min(off + 1024 * 1024 + 3, data.byteLength)));
    const st = await w.commit();
    expect(st.size).toBe(data.byteLength);
    expect(s3.pendingUploads(BUCKET)).toEqual([]);
    const s = await openStorage(url, opts);
    const tail = await s.readTail(64 * 1024);
    expect(tail.stat.size).toBe(data.byteLength);
    expect(Buffer.from(tail.bytes).equals(data.subarray(data.byteLength - 64 * 1024))).toBe(true);
    expect(Buffer.from(await s.read(0, data.byteLength)).equals(data)).toBe(true);
    expect(Buffer.from(await s.read(8 * 1024 * 1024 - 10, 20)).equals(data.subarray(8 * 1024 * 1024 - 10, 8 * 1024 * 1024 + 10))).toBe(true);
  });

  it('aborts the upload when parts are refused: clear error, no object, no pending upload', async () => {
    const url = `s3://${BUCKET}/big/refused.bin`;
    const w = await createWriter(url, opts);
    await s3.setFaults({ failUploadParts: 1000 });
    try {
      const piece = randomBytes(4 * 1024 * 1024);
      const err = await errorOf(
        (async () => {
          for (let i = 0; i < 10; i++) await w.write(piece);
          await w.commit();
        })(),
      );
      expect(err.code).toBe('STORAGE_IO');
      expect(err.message).toContain(url);
      expect(err.message).toMatch(/UploadPart/);
    } finally {
      await s3.setFaults({ failUploadParts: 0 });
    }
    expect(await exists(url)).toBe(false);
    expect(s3.pendingUploads(BUCKET)).toEqual([]);
    await w.abort(); // still safe
  });

  it('a server killed mid-upload gives a clear error and never a visible object', async () => {
    const own = await startS3Server({ buckets: [BUCKET] });
    cleanups.push(() => own.stop());
    const ownOpts = { s3: { endpoint: own.endpoint } };
    const url = `s3://${BUCKET}/big/killed.bin`;
    const w = await createWriter(url, ownOpts);
    const piece = randomBytes(8 * 1024 * 1024);
    await w.write(piece);
    await w.write(piece); // two parts under way
    await own.kill();
    const err = await errorOf(
      (async () => {
        for (let i = 0; i < 3; i++) await w.write(piece);
        await w.commit();
      })(),
    );
    expect(err.code).toBe('STORAGE_IO');
    expect(err.message).toContain(url);
    // Same data directory, fresh process: the object must not exist.
    const again = await startS3Server({ buckets: [BUCKET], dir: own.dir });
    cleanups.push(() => again.stop());
    expect(await exists(url, { s3: { endpoint: again.endpoint } })).toBe(false);
    const root = await openStorageRoot(`s3://${BUCKET}/big/`, { s3: { endpoint: again.endpoint } });
    expect((await root.list()).objects.map((o) => o.key)).not.toContain('killed.bin');
  });

  it('aborting mid-upload removes the pending upload', async () => {
    const url = `s3://${BUCKET}/big/aborted.bin`;
    const w = await createWriter(url, opts);
    const piece = randomBytes(8 * 1024 * 1024);
    for (let i = 0; i < 3; i++) await w.write(piece);
    expect(s3.pendingUploads(BUCKET)).toHaveLength(1);
    await w.abort();
    expect(s3.pendingUploads(BUCKET)).toEqual([]);
    expect(await exists(url)).toBe(false);
    expect((await errorOf(w.write(piece))).code).toBe('ABORTED');
    expect((await errorOf(w.commit())).code).toBe('ABORTED');
  });

  it('refuses an existing object without overwrite (EXISTS before any upload), replaces it with overwrite', async () => {
    const url = `s3://${BUCKET}/replace.bin`;
    const first = await createWriter(url, opts);
    await first.write(randomBytes(1000));
    await first.commit();
    const err = await errorOf(createWriter(url, opts));
    expect(err.code).toBe('EXISTS');
    expect(err.message).toMatch(/already exists$/);
    expect(err.context.remedy).toBe('overwrite'); // the CLI words it "(use --force to replace it)": test/cli/pack-output.test.ts
    expect(s3.pendingUploads(BUCKET)).toEqual([]);
    const w = await createWriter(url, { ...opts, overwrite: true });
    await w.write(randomBytes(2000));
    await w.commit();
    expect((await (await openStorage(url, opts)).stat()).size).toBe(2000);
  });

  it.each([
    ['a multipart upload', 9 * 1024 * 1024],
    ['a single PutObject', 1000],
  ])('commits %s with If-None-Match: * so an object created meanwhile is not replaced', async (_what, size) => {
    const url = `s3://${BUCKET}/race-${size}.bin`;
    const w = await createWriter(url, opts); // nothing there yet: HeadObject passes
    await w.write(randomBytes(size));
    // Someone else publishes the key while this upload runs.
    const other = await createWriter(url, opts);
    await other.write(Buffer.from('the other writer'));
    await other.commit();
    const err = await errorOf(w.commit());
    expect(err.code).toBe('EXISTS');
    expect(err.message).toMatch(/was not replaced/);
    const s = await openStorage(url, opts);
    expect(Buffer.from(await s.read(0, (await s.stat()).size)).toString()).toBe('the other writer');
    expect(await listUploads()).toEqual([]);
  });

  it('a part upload that failed in the background aborts the upload when the next write reports it', async () => {
    const url = `s3://${BUCKET}/big/background-failure.bin`;
    const w = await createWriter(url, opts);
    await s3.setFaults({ failUploadParts: 1000 });
    try {
      await w.write(randomBytes(8 * 1024 * 1024)); // one full part: its upload starts in the background
      expect(await listUploads()).toEqual([url.slice(`s3://${BUCKET}/`.length)]);
      // Small writes never send a part, so the failure can only surface through the writer's state.
      let err: HexzError | undefined;
      while (!err) {
        err = await w.write(Buffer.from('x')).then(
          () => undefined,
          (e: HexzError) => e,
        );
        if (!err) await new Promise((r) => setTimeout(r, 20));
      }
      expect(err.code).toBe('STORAGE_IO');
      expect(err.message).toMatch(/UploadPart 1/);
      // Aborted already, before anyone called abort(): nothing pending, no object.
      expect(await listUploads()).toEqual([]);
      expect(await exists(url)).toBe(false);
      expect((await errorOf(w.commit())).code).toBe('STORAGE_IO');
    } finally {
      await s3.setFaults({ failUploadParts: 0 });
    }
  });

  it('an abort signal cancels the upload: no part starts, commit does not happen, nothing is left', async () => {
    const url = `s3://${BUCKET}/big/signalled.bin`;
    const ac = new AbortController();
    const w = await createWriter(url, { ...opts, signal: ac.signal });
    await w.write(randomBytes(9 * 1024 * 1024));
    ac.abort(new Error('Ctrl-C'));
    expect((await errorOf(w.commit())).code).toBe('ABORTED');
    expect(await listUploads()).toEqual([]);
    expect(await exists(url)).toBe(false);
    await w.abort();
  });
});

describe('s3: listing', () => {
  const KEYS = Array.from({ length: 25 }, (_, i) => `list/k${String(i).padStart(3, '0')}.hxz`);

  beforeAll(async () => {
    for (const key of [...KEYS, 'list/sub/deep.hxz', 'other/x.hxz']) {
      await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key) }));
    }
  });

  it('pages through more than one page with continuation tokens', async () => {
    const root = await openStorageRoot(`s3://${BUCKET}/list/`, opts);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await root.list({ cursor, limit: 10 });
      expect(page.objects.length).toBeLessThanOrEqual(10);
      seen.push(...page.objects.map((o) => o.key));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...KEYS.map((k) => k.slice('list/'.length)), 'sub/deep.hxz']);
    const sized = (await root.list({ limit: 1 })).objects[0];
    expect(sized).toMatchObject({ key: 'k000.hxz', size: 'list/k000.hxz'.length });
  });

  it('filters by prefix, checks reachability, and validates keys', async () => {
    const root = await openStorageRoot(`s3://${BUCKET}/list`, opts);
    expect(root.url).toBe(`s3://${BUCKET}/list/`);
    expect((await root.list({ prefix: 'sub/' })).objects.map((o) => o.key)).toEqual(['sub/deep.hxz']);
    await root.check();
    const url = root.urlOf('k001.hxz');
    expect(url).toBe(`s3://${BUCKET}/list/k001.hxz`);
    expect((await (await openStorage(url, opts)).stat()).size).toBe('list/k001.hxz'.length);
    expect(() => root.urlOf('../other/x.hxz')).toThrow(HexzError);
    expect(() => root.urlOf('')).toThrow(HexzError);
    const missing = await openStorageRoot('s3://no-such-bucket/', opts);
    expect((await errorOf(missing.check())).code).toBe('ARCHIVE_NOT_FOUND');
  });

  it('round-trips keys that need escaping', async () => {
    const root = await openStorageRoot(`s3://${BUCKET}/esc/`, opts);
    const url = root.urlOf('a b%c.hxz');
    const w = await createWriter(url, opts);
    await w.write(Buffer.from('hello'));
    await w.commit();
    expect((await root.list()).objects.map((o) => o.key)).toEqual(['a b%c.hxz']);
    expect(Buffer.from(await (await openStorage(url, opts)).read(0, 5)).toString()).toBe('hello');
  });
});

describe('s3: reads', () => {
  it('pins the first ETag: an object replaced while open is ARCHIVE_CHANGED (s3rver ignores If-Match)', async () => {
    const key = 'pin/a.bin';
    const A = randomBytes(100_000);
    await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: A }));
    const s = await openStorage(`s3://${BUCKET}/${key}`, opts);
    expect(Buffer.from((await s.readTail(100)).bytes).equals(A.subarray(A.byteLength - 100))).toBe(true);
    await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(100_000) }));
    expect((await errorOf(s.read(0, 100))).code).toBe('ARCHIVE_CHANGED');
  });

  it('aborts a GetObject in flight', async () => {
    const key = 'abort/a.bin';
    await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(1000) }));
    const s = await openStorage(`s3://${BUCKET}/${key}`, opts);
    await s.stat();
    await s3.setFaults({ hangRequests: 1 });
    const ac = new AbortController();
    const pending = s.read(0, 100, { signal: ac.signal });
    while ((await s3.setFaults()).hangRequests > 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    expect((await errorOf(pending)).code).toBe('ABORTED');
  });

  it('maps a missing bucket to ARCHIVE_NOT_FOUND and rejects malformed URLs', async () => {
    expect((await errorOf((await openStorage('s3://no-such-bucket/a.hxz', opts)).readTail(10))).code).toBe('ARCHIVE_NOT_FOUND');
    expect((await errorOf(openStorage('s3://bucket-only', opts))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(openStorage(`s3://${BUCKET}/dir/`, opts))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('s3: child processes', () => {
  it('loads @aws-sdk only when an s3:// URL is used', async () => {
    const dist = fileURLToPath(new URL('../../dist/storage/index.js', import.meta.url));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hexz-lazy-'));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, 'a.bin'), 'hello');
    // A resolve hook that fails the process as soon as anything from @aws-sdk is imported.
    const hook = `export async function resolve(s, c, next) { if (s.includes('@aws-sdk/')) throw new Error('SDK LOADED ' + s); return next(s, c); }`;
    const script = (body: string) => `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      const { openStorage } = await import(${JSON.stringify(pathToFileURL(dist).href)});
      ${body}`;
    const run = (body: string) =>
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', script(body)]).then(
        (r) => r.stdout,
        (e: { stderr: string }) => `FAILED ${e.stderr}`,
      );
    const local = await run(`const s = await openStorage(${JSON.stringify(path.join(dir, 'a.bin'))}); console.log(Buffer.from(await s.read(0, 5)).toString());`);
    expect(local.trim()).toBe('hello');
    const remote = await run(`await openStorage('s3://b/k.hxz', { s3: { region: 'us-east-1' } }); console.log('no SDK?');`);
    expect(remote).toMatch(/SDK LOADED/);
  });

  it('maps wrong credentials to STORAGE_DENIED', async () => {
    const dist = pathToFileURL(fileURLToPath(new URL('../../dist/storage/index.js', import.meta.url))).href;
    await sdkClient.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'denied.bin', Body: Buffer.from('x') }));
    const script = `
      const { openStorage } = await import(${JSON.stringify(dist)});
      try { await (await openStorage('s3://${BUCKET}/denied.bin', { s3: { endpoint: ${JSON.stringify(s3.endpoint)} } })).readTail(1); console.log('OK'); }
      catch (e) { console.log(e.code, e.message); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      // s3rver does not verify SigV4 signatures, but it does check the access key id.
      env: { ...process.env, ...s3.env, AWS_ACCESS_KEY_ID: 'NOT-A-KEY' },
    });
    expect(stdout).toMatch(/^STORAGE_DENIED /);
  });
});
