/**
 * An archive replaced in storage while it is being served: responses already under way finish with
 * the old bytes, new requests get the new version once the TTL has passed, and no response ever
 * mixes the two. Also: a deleted archive disappears, a new one appears, and a change detected in the
 * middle of a read (`ARCHIVE_CHANGED`, here from memory storage) is answered from a fresh open.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { deleteMemoryObject } from '@hexz/storage/memory.js';
import { randomBytesSeeded, sha256 } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB } from './fixture.js';

const TTL_MS = 150;
/** Upper bound on polling for the new version (generous for a loaded CI machine; not a timing assertion). */
const POLL_LIMIT = 200;

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
const A = randomBytesSeeded(16 * MiB + 1001, 31);
const B = randomBytesSeeded(16 * MiB + 2002, 32);

/** Pack `bytes` as a single-file archive and move it over `root/NAME.hxz` atomically (like `hexz pack` does). */
async function publish(name: string, bytes: Buffer): Promise<void> {
  const src = path.join(tmp.dir, `src-${name}-${sha256(bytes).slice(0, 8)}.bin`);
  await fs.writeFile(src, bytes);
  const staged = path.join(tmp.dir, `staged-${Date.now()}-${Math.random()}.hxz`);
  await pack(src, staged, { compression: 'none', threads: 2 });
  await fs.rename(staged, path.join(root, `${name}.hxz`));
}

/** Poll `url` until its body hash is `want`; every body seen must be one of `allowed`. */
async function until(url: string, want: string, allowed: string[]): Promise<number> {
  for (let i = 0; i < POLL_LIMIT; i++) {
    const r = await get(url);
    const h = sha256(r.body);
    expect(allowed, `request ${i}: a body that is neither version (status ${r.status}: ${r.body.subarray(0, 300).toString()})`).toContain(h);
    if (h === want) return i;
    await sleep(TTL_MS / 3);
  }
  throw new Error(`never saw the expected version of ${url}`);
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-replace-');
  root = path.join(tmp.dir, 'archives');
  await fs.mkdir(root);
});
afterAll(() => tmp.cleanup());

describe('replacing an archive while serving it (local storage)', () => {
  let gw: Gateway;
  beforeAll(async () => {
    await publish('live', A);
    gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', archiveTtlMs: TTL_MS }, { processMetrics: false });
  });
  afterAll(() => gw.close());

  it('a response under way finishes with the old bytes; new requests get the new ones after the TTL', async () => {
    const url = `${gw.url}/v1/archives/live/disk`;
    const first = await get(url);
    expect(sha256(first.body)).toBe(sha256(A));
    const oldEtag = first.headers.get('etag')!;

    // A slow client: read a little, then stop reading (backpressure holds the response open).
    const chunks: Buffer[] = [];
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));
    const done = new Promise<void>((resolve, reject) => {
      res.on('end', resolve);
      res.on('error', reject);
    });
    res.on('data', (c: Buffer) => chunks.push(c));
    await new Promise((r) => res.once('data', r));
    res.pause();

    await publish('live', B);
    await until(url, sha256(B), [sha256(A), sha256(B)]);
    const now = await get(url, { 'if-range': oldEtag, range: 'bytes=0-9' });
    expect(now.status).toBe(200); // the old ETag no longer matches: the whole new body
    expect(now.headers.get('etag')).not.toBe(oldEtag);
    expect(now.body.equals(B)).toBe(true);

    res.resume();
    await done;
    const slow = Buffer.concat(chunks);
    expect(slow.length).toBe(A.length);
    expect(slow.equals(A)).toBe(true);
  });

  it('concurrent requests across a replacement: every body is exactly one version', async () => {
    const url = `${gw.url}/v1/archives/live/disk`;
    const versions = [sha256(A), sha256(B)];
    let stop = false;
    const seen = new Set<string>();
    const worker = async () => {
      while (!stop) {
        const r = await get(url, { range: 'bytes=0-' });
        const h = sha256(r.body);
        expect(versions, `status ${r.status}: ${r.body.subarray(0, 300).toString()}`).toContain(h);
        seen.add(h);
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    await sleep(TTL_MS);
    await publish('live', A);
    await until(url, sha256(A), versions);
    await publish('live', B);
    await until(url, sha256(B), versions);
    stop = true;
    await Promise.all(workers);
    expect(seen.size).toBe(2);
  });

  it('a deleted archive disappears and a new one appears, each within a TTL', async () => {
    await publish('later', A);
    expect((await get(`${gw.url}/v1/archives/later`)).status).toBe(200);
    await fs.rm(path.join(root, 'later.hxz'));
    let status = 0;
    for (let i = 0; i < POLL_LIMIT && status !== 404; i++) {
      status = (await get(`${gw.url}/v1/archives/later/disk`, { range: 'bytes=0-0' })).status;
      if (status !== 404) {
        expect(status).toBe(206);
        await sleep(TTL_MS / 3);
      }
    }
    expect(status).toBe(404);
    expect((await get(`${gw.url}/v1/archives/newcomer`)).status).toBe(404);
    await publish('newcomer', B);
    let found = 404;
    for (let i = 0; i < POLL_LIMIT && found === 404; i++) {
      found = (await get(`${gw.url}/v1/archives/newcomer`)).status;
      if (found === 404) await sleep(TTL_MS / 3);
    }
    expect(found).toBe(200);
  });
});

describe('a change noticed in the middle of a read', () => {
  it('ARCHIVE_CHANGED from storage: the gateway reopens once and answers from the new version', async () => {
    const src = path.join(tmp.dir, 'mem-src');
    await fs.mkdir(src);
    await fs.writeFile(path.join(src, 'a.bin'), A);
    await fs.writeFile(path.join(src, 'b.bin'), A.subarray(0, 4 * MiB));
    await pack(src, 'memory://gw-replace/mem.hxz', { compression: 'none', threads: 2 });
    // A TTL far longer than the test: only the storage's own version check can notice the change.
    const gw = await startGateway({ storage: 'memory://gw-replace/', port: 0, logLevel: 'silent', archiveTtlMs: 3_600_000 }, { processMetrics: false });
    try {
      const first = await get(`${gw.url}/v1/archives/mem/files/b.bin`);
      expect(first.body.equals(A.subarray(0, 4 * MiB))).toBe(true);
      // Replace the object: a.bin now holds B; its chunks were never read, so reading them hits storage.
      await fs.writeFile(path.join(src, 'a.bin'), B);
      await pack(src, 'memory://gw-replace/mem.hxz', { compression: 'none', threads: 2 });
      const r = await get(`${gw.url}/v1/archives/mem/files/a.bin`, { range: `bytes=${8 * MiB}-${9 * MiB - 1}` });
      expect(r.status).toBe(206);
      expect(r.body.equals(B.subarray(8 * MiB, 9 * MiB))).toBe(true);
      const metrics = (await get(`${gw.url}/metrics`)).body.toString();
      expect(metrics).toMatch(/hexz_archive_opens_total\{outcome="opened"\} 2/);
    } finally {
      await gw.close();
      deleteMemoryObject('memory://gw-replace/mem.hxz');
    }
  });
});

describe('an archive swapped for one whose file has the same mtime but other bytes (date validators)', () => {
  const FILE_MTIME = new Date('2026-01-02T03:04:05Z');
  const T1 = new Date('2026-03-01T00:00:00Z');
  const T2 = new Date('2026-03-01T00:01:00Z');
  const T3 = new Date('2026-03-01T00:02:00Z');
  const X = randomBytesSeeded(300_000, 33);
  const Y = randomBytesSeeded(300_000, 34);
  let gw: Gateway;

  /** A directory archive holding `data.bin` (mtime FILE_MTIME), packed as of `created`, its object's mtime set to `stored`. */
  async function publishDir(name: string, bytes: Buffer, created: Date, stored: Date): Promise<void> {
    const src = path.join(tmp.dir, `dir-${name}-${Math.random()}`);
    await fs.mkdir(src);
    await fs.writeFile(path.join(src, 'data.bin'), bytes);
    await fs.utimes(path.join(src, 'data.bin'), FILE_MTIME, FILE_MTIME);
    const staged = path.join(tmp.dir, `staged-${Date.now()}-${Math.random()}.hxz`);
    await pack(src, staged, { compression: 'none', threads: 2, created });
    await fs.utimes(staged, stored, stored);
    await fs.rename(staged, path.join(root, `${name}.hxz`));
  }

  /** Poll until the ETag of `url` is no longer `old`; returns the new one. */
  async function newEtag(url: string, old: string): Promise<string> {
    for (let i = 0; i < POLL_LIMIT; i++) {
      const tag = (await get(url, {}, 'HEAD')).headers.get('etag')!;
      if (tag !== old) return tag;
      await sleep(TTL_MS / 3);
    }
    throw new Error('the replacement was never noticed');
  }

  beforeAll(async () => {
    await publishDir('dated', X, T1, T1);
    gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', archiveTtlMs: TTL_MS }, { processMetrics: false });
  });
  afterAll(() => gw.close());

  it('resuming with If-Range: <old date> gets the whole new body (no splice); If-Modified-Since gets no stale 304', async () => {
    const url = `${gw.url}/v1/archives/dated/files/data.bin`;
    const first = await get(url, { range: 'bytes=0-99' });
    expect(first.status).toBe(206);
    const etagX = first.headers.get('etag')!;
    const lmX = first.headers.get('last-modified')!;
    // Later than the file's own mtime: the archive version's time counts.
    expect(lmX).toBe(T1.toUTCString());
    // Before the swap the date is a strong validator: a resume is honoured.
    const resumeX = await get(url, { range: 'bytes=100-', 'if-range': lmX });
    expect(resumeX.status).toBe(206);

    // Same path, same size, same file mtime, same object mtime: only the bytes (and the pack time) differ.
    await publishDir('dated', Y, T2, T1);
    const etagY = await newEtag(url, etagX);
    const resume = await get(url, { range: 'bytes=100-', 'if-range': lmX });
    expect(resume.status).toBe(200);
    expect(resume.body.equals(Y)).toBe(true);
    const lmY = resume.headers.get('last-modified')!;
    expect(lmY).not.toBe(lmX);
    const ims = await get(url, { 'if-modified-since': lmX });
    expect(ims.status).toBe(200);
    expect(ims.body.equals(Y)).toBe(true);
    expect((await get(url, { range: 'bytes=100-', 'if-range': etagX })).status).toBe(200);
    // The new date validates the new version.
    const resumeY = await get(url, { range: 'bytes=100-', 'if-range': lmY });
    expect(resumeY.status).toBe(206);
    expect(resumeY.body.equals(Y.subarray(100))).toBe(true);

    // Same created time, but the object was written later (an upload): its time moves the date.
    await publishDir('dated', X, T2, T3);
    await newEtag(url, etagY);
    const again = await get(url, { range: 'bytes=100-', 'if-range': lmY });
    expect(again.status).toBe(200);
    expect(again.body.equals(X)).toBe(true);
    expect(again.headers.get('last-modified')).toBe(T3.toUTCString());
  });

  it('a Last-Modified less than a second old is weak: a date in If-Range never matches it', async () => {
    // An object time in the future (clock skew) is clamped to the response's Date, hence always weak.
    await publishDir('fresh', X, T1, new Date(Date.now() + 3_600_000));
    const url = `${gw.url}/v1/archives/fresh/files/data.bin`;
    const first = await get(url, { range: 'bytes=0-99' });
    const lm = first.headers.get('last-modified')!;
    expect(Date.parse(lm)).toBeLessThanOrEqual(Date.parse(first.headers.get('date')!));
    const r = await get(url, { range: 'bytes=100-', 'if-range': lm });
    expect(r.status).toBe(200);
    expect(r.body.equals(X)).toBe(true);
  });
});
