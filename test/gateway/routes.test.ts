/**
 * The gateway's HTTP API through a real listening server on port 0, exercised with fetch and with
 * curl as a child process, the way a user would: listings, info, byte-exact content for whole, single,
 * suffix, open and multi-range requests, conditional requests (304/412/If-Range), 416, HEAD,
 * downloads, nested archive names, single-file archives, hostile names, errors as JSON, metrics and
 * health, CORS and bearer-token authentication.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { curl, datasetFiles, get, getJson, MiB, packArchive, parseMultipart, writeDataset } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let data: string;
let gw: Gateway;
let base: string;
const files = datasetFiles();
const big = files['data/big.bin'] as Buffer;
const csv = files['data/table.csv'] as Buffer;
const disk = randomBytesSeeded(2 * MiB + 777, 21);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-routes-');
  data = path.join(tmp.dir, 'data');
  root = path.join(tmp.dir, 'archives');
  await writeDataset(data);
  await packArchive(data, root, 'demo');
  await packArchive(data, root, 'team/ds/v1', { compression: 'lz4' });
  await fs.writeFile(path.join(tmp.dir, 'disk.img'), disk);
  await packArchive(path.join(tmp.dir, 'disk.img'), root, 'img');
  await fs.writeFile(path.join(root, 'notes.txt'), 'not an archive');
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
  base = `${gw.url}/v1/archives`;
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

describe('listing and info', () => {
  it('lists archives (nested names, other objects skipped), paginated', async () => {
    const all = await getJson(`${base}`);
    expect(all.status).toBe(200);
    expect(all.json.archives.map((a: { name: string }) => a.name)).toEqual(['demo', 'img', 'team/ds/v1']);
    expect(all.json.archives[2]).toMatchObject({ name: 'team/ds/v1', url: '/v1/archives/team/ds/v1' });
    expect(all.json.cursor).toBeUndefined();
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await getJson(`${base}?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.json.archives.length).toBeLessThanOrEqual(1);
      names.push(...page.json.archives.map((a: { name: string }) => a.name));
      cursor = page.json.cursor;
    } while (cursor);
    expect(names).toEqual(['demo', 'img', 'team/ds/v1']);
    expect((await getJson(`${base}?limit=100000`)).status).toBe(400);
  });

  it('info: metadata, sizes, ratios, no server paths', async () => {
    const r = await getJson(`${base}/demo`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ name: 'demo', formatVersion: 2, encrypted: false, source: { type: 'directory' }, bases: [], links: { tree: '/v1/archives/demo/tree' } });
    expect(r.json.fileCount).toBeGreaterThan(5);
    expect(r.json.ratios.logicalToArchive).toBeGreaterThan(0);
    expect(JSON.stringify(r.json)).not.toContain(tmp.dir);
    const nested = await getJson(`${base}/team/ds/v1`);
    expect(nested.json).toMatchObject({ name: 'team/ds/v1', compression: { codec: 'lz4' } });
    const img = await getJson(`${base}/img`);
    expect(img.json).toMatchObject({ source: { type: 'file', name: 'disk.img' }, links: { disk: '/v1/archives/img/disk' } });
  });

  it('tree: entries with type, size, mode, mtime; recursive; cursor pagination', async () => {
    const r = await getJson(`${base}/demo/tree/`);
    expect(r.status).toBe(200);
    const byName = Object.fromEntries(r.json.entries.map((e: { name: string }) => [e.name, e]));
    expect(Object.keys(byName).sort()).toEqual(['data', 'docs', 'empty.txt', 'emptydir', 'link', 'out', 'unicode']);
    expect(byName.link).toMatchObject({ type: 'symlink', target: 'docs/readme.md' });
    expect(byName.data).toMatchObject({ type: 'directory', url: '/v1/archives/demo/tree/data' });
    expect(byName['empty.txt']).toMatchObject({ type: 'file', size: 0, mode: '0644' });
    const docs = await getJson(`${base}/demo/tree/docs`);
    expect(docs.json.entries.find((e: { name: string }) => e.name === 'readme.md')).toMatchObject({
      path: 'docs/readme.md',
      size: Buffer.byteLength(files['docs/readme.md'] as string),
      mtime: '2026-01-02T03:04:05.000Z',
      url: '/v1/archives/demo/files/docs/readme.md',
    });
    const rec = await getJson(`${base}/demo/tree?recursive=1`);
    const all = rec.json.entries.map((e: { path: string }) => e.path);
    expect(all).toContain('docs/deep/a/b/c.txt');
    expect(all).toContain('unicode/naïve café.txt');
    const paged: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const p = await getJson(`${base}/demo/tree/?recursive=true&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(p.status).toBe(200);
      expect(p.json.entries.length).toBeLessThanOrEqual(3);
      paged.push(...p.json.entries.map((e: { path: string }) => e.path));
      cursor = p.json.cursor;
      pages++;
    } while (cursor);
    expect(paged).toEqual(all);
    expect(pages).toBeGreaterThan(3);
  });

  it('tree errors: a file, a missing path, a bad limit', async () => {
    expect((await getJson(`${base}/demo/tree/docs/readme.md`)).json.error.code).toBe('NOT_A_DIRECTORY');
    const missing = await getJson(`${base}/demo/tree/nope`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('PATH_NOT_FOUND');
    expect((await getJson(`${base}/demo/tree?limit=0`)).status).toBe(400);
    expect((await getJson(`${base}/demo/tree?limit=5000`)).status).toBe(400);
  });
});

describe('content', () => {
  const bigUrl = () => `${base}/demo/files/data/big.bin`;

  it('whole file: exact bytes, validators, type', async () => {
    const r = await get(bigUrl());
    expect(r.status).toBe(200);
    expect(r.body.equals(big)).toBe(true);
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(r.headers.get('content-length')).toBe(String(big.length));
    expect(r.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    const csvR = await get(`${base}/demo/files/data/table.csv`);
    expect(csvR.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csvR.body.equals(csv)).toBe(true);
    // Last-Modified: the later of the file's mtime (2026-01-02) and the archive version's time.
    const md = await get(`${base}/demo/files/docs/readme.md`);
    const created = Date.parse((await getJson(`${base}/demo`)).json.created);
    const stored = (await fs.stat(path.join(root, 'demo.hxz'))).mtimeMs;
    const version = Math.max(Date.parse('2026-01-02T03:04:05Z'), created, stored);
    expect(md.headers.get('last-modified')).toBe(new Date(Math.floor(version / 1000) * 1000).toUTCString());
    expect(Date.parse(md.headers.get('last-modified')!)).toBeLessThanOrEqual(Date.parse(md.headers.get('date')!));
  });

  it('curl: single, suffix, open and multi-range requests are byte-exact', async () => {
    const single = await curl(['-r', '1000-70999', bigUrl()]);
    expect(single.status).toBe(206);
    expect(single.headers['content-range']).toBe(`bytes 1000-70999/${big.length}`);
    expect(single.body.equals(big.subarray(1000, 71000))).toBe(true);

    const suffix = await curl(['-r', '-100000', bigUrl()]);
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(big.subarray(big.length - 100000))).toBe(true);

    const open = await curl(['-r', `${big.length - 3 * 65536 - 5}-`, bigUrl()]);
    expect(open.body.equals(big.subarray(big.length - 3 * 65536 - 5))).toBe(true);

    // Inside one chunk, across chunks, large (streamed): all the same bytes.
    for (const [s, e] of [
      [0, 0],
      [5, 99],
      [65000, 200000],
      [100, 2 * MiB],
      [big.length - 1, big.length - 1],
    ]) {
      const r = await curl(['-r', `${s}-${e}`, bigUrl()]);
      expect(r.status, `${s}-${e}`).toBe(206);
      expect(r.body.equals(big.subarray(s, e + 1)), `${s}-${e}`).toBe(true);
    }

    const multi = await curl(['-r', '500000-500099,0-9,3000000-3100000', bigUrl()]);
    expect(multi.status).toBe(206);
    expect(multi.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=/);
    expect(Number(multi.headers['content-length'])).toBe(multi.body.length);
    const parts = parseMultipart(multi.body, multi.headers['content-type']);
    expect(parts.map((p) => p.headers['content-range'])).toEqual([
      `bytes 500000-500099/${big.length}`,
      `bytes 0-9/${big.length}`,
      `bytes 3000000-3100000/${big.length}`,
    ]);
    expect(parts[0].bytes.equals(big.subarray(500000, 500100))).toBe(true);
    expect(parts[1].bytes.equals(big.subarray(0, 10))).toBe(true);
    expect(parts[2].bytes.equals(big.subarray(3000000, 3100001))).toBe(true);
    expect(parts[0].headers['content-type']).toBe('application/octet-stream');
  });

  it('416 with Content-Range bytes */size and a JSON error', async () => {
    const r = await curl(['-r', `${big.length}-`, bigUrl()]);
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${big.length}`);
    expect(JSON.parse(r.body.toString()).error.code).toBe('OUT_OF_RANGE');
  });

  it('conditional requests: 304, 412, If-Range, If-Modified-Since', async () => {
    const first = await get(bigUrl(), { range: 'bytes=0-0' });
    const etag = first.headers.get('etag')!;
    const lastModified = first.headers.get('last-modified')!;
    const nm = await curl(['-H', `If-None-Match: ${etag}`, bigUrl()]);
    expect(nm.status).toBe(304);
    expect(nm.body.length).toBe(0);
    expect(nm.headers.etag).toBe(etag);
    expect((await curl(['-H', `If-None-Match: "other", ${etag}`, bigUrl()])).status).toBe(304);
    expect((await curl(['-H', `If-Modified-Since: ${lastModified}`, bigUrl()])).status).toBe(304);
    // A date in the future is ignored, as if absent (like Apache): the whole body, not a 304.
    const future = await curl(['-H', `If-Modified-Since: ${new Date(Date.now() + 86_400_000).toUTCString()}`, bigUrl()]);
    expect(future.status).toBe(200);
    expect(future.body.equals(big)).toBe(true);
    const pre = await curl(['-H', 'If-Match: "not-it"', bigUrl()]);
    expect(pre.status).toBe(412);
    expect(JSON.parse(pre.body.toString()).error.code).toBe('PRECONDITION_FAILED');
    const ok = await curl(['-H', `If-Match: ${etag}`, '-r', '0-9', bigUrl()]);
    expect(ok.status).toBe(206);
    const stale = await curl(['-H', 'If-Range: "stale"', '-r', '0-9', bigUrl()]);
    expect(stale.status).toBe(200);
    expect(stale.body.equals(big)).toBe(true);
    const fresh = await curl(['-H', `If-Range: ${etag}`, '-r', '0-9', bigUrl()]);
    expect(fresh.status).toBe(206);
    expect(fresh.body.equals(big.subarray(0, 10))).toBe(true);
  });

  it('HEAD: the GET headers, no body', async () => {
    const h = await curl(['-I', bigUrl()]);
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe(String(big.length));
    expect(h.headers['accept-ranges']).toBe('bytes');
    expect(h.headers.etag).toMatch(/^"/);
    expect(h.body.length).toBe(0);
    const hr = await get(bigUrl(), { range: 'bytes=10-19' }, 'HEAD');
    expect(hr.status).toBe(206);
    expect(hr.headers.get('content-range')).toBe(`bytes 10-19/${big.length}`);
    expect(hr.headers.get('content-length')).toBe('10');
    expect(hr.body.length).toBe(0);
    const disk = await get(`${base}/img/disk`, {}, 'HEAD');
    expect(disk.status).toBe(200);
    expect(disk.headers.get('content-length')).toBe(String(2 * MiB + 777));
  });

  it('ETags are derived from content: equal bytes, equal tags, across archives and codecs', async () => {
    const a = (await get(bigUrl(), {}, 'HEAD')).headers.get('etag');
    const b = (await get(`${base}/team/ds/v1/files/data/big.bin`, {}, 'HEAD')).headers.get('etag');
    const c = (await get(`${base}/demo/files/data/table.csv`, {}, 'HEAD')).headers.get('etag');
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  it('empty, sparse, unicode-named and symlinked files', async () => {
    const empty = await get(`${base}/demo/files/empty.txt`, { range: 'bytes=0-' });
    expect(empty.status).toBe(200);
    expect(empty.body.length).toBe(0);
    const sparse = await curl([`${base}/demo/files/data/sparse.img`]);
    expect(sparse.body.equals(files['data/sparse.img'] as Buffer)).toBe(true);
    const mid = await curl(['-r', `${2 * MiB - 2}-${2 * MiB + 5}`, `${base}/demo/files/data/sparse.img`]);
    expect(mid.body.equals(Buffer.from('\0\0hexz\0\0'))).toBe(true);
    const uni = await get(`${base}/demo/files/${encodeURIComponent('unicode')}/${encodeURIComponent('naïve café.txt')}?download=1`);
    expect(uni.body.toString()).toBe('ünïcödé\n');
    expect(uni.headers.get('content-disposition')).toBe(`attachment; filename="na_ve caf_.txt"; filename*=UTF-8''na%C3%AFve%20caf%C3%A9.txt`);
    const link = await get(`${base}/demo/files/link`);
    expect(link.status).toBe(200);
    expect(link.body.toString()).toContain('Hello from the gateway tests.');
    expect(link.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    // Downloaded under the name requested, not the link target's.
    const dl = await curl(['-r', '0-3', `${base}/demo/files/link?download=1`]);
    expect(dl.headers['content-disposition']).toBe(`attachment; filename="link"; filename*=UTF-8''link`);
    const nested = await get(`${base}/demo/files/docs/deep/link.txt?download=1`);
    expect(nested.status).toBe(200);
    expect(nested.body.toString()).toBe('deep\n');
    expect(nested.headers.get('content-disposition')).toBe(`attachment; filename="link.txt"; filename*=UTF-8''link.txt`);
    expect(nested.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const out = await getJson(`${base}/demo/files/out`);
    expect(out.status).toBe(404);
    expect(out.json.error.code).toBe('PATH_NOT_FOUND');
  });

  it('single-file archives: /disk, with the original name', async () => {
    const r = await curl(['-r', '1000000-1099999', `${base}/img/disk`]);
    expect(r.status).toBe(206);
    expect(r.body.equals(disk.subarray(1000000, 1100000))).toBe(true);
    const dl = await get(`${base}/img/disk?download=1`, { range: 'bytes=0-0' });
    expect(dl.headers.get('content-disposition')).toContain('filename="disk.img"');
    const whole = await get(`${base}/img/files/disk`);
    expect(whole.body.equals(disk)).toBe(true);
    const dirDisk = await getJson(`${base}/demo/disk`);
    expect(dirDisk.status).toBe(404);
    expect(dirDisk.json.error.code).toBe('PATH_NOT_FOUND');
  });

  it('nested archive names', async () => {
    const r = await curl(['-r', '0-99', `${base}/team/ds/v1/files/data/table.csv`]);
    expect(r.status).toBe(206);
    expect(r.body.equals(csv.subarray(0, 100))).toBe(true);
  });

  it('errors: directories without their /, unknown archives and paths are 404 JSON with a code; no redirects, no stacks', async () => {
    for (const [url, code] of [
      [`${base}/demo/files/docs`, 'NOT_A_FILE'],
      // Directory URLs ending in / answer the HTML index (test/gateway/autoindex.test.ts); a file's URL with a / is not a directory.
      [`${base}/demo/files/docs/readme.md/`, 'NOT_A_DIRECTORY'],
      [`${base}/demo/files/nope.txt`, 'PATH_NOT_FOUND'],
      [`${base}/nope/files/x`, 'ARCHIVE_NOT_FOUND'],
      [`${base}/nope`, 'ARCHIVE_NOT_FOUND'],
      [`${base}/team/files/x`, 'ARCHIVE_NOT_FOUND'],
      [`${gw.url}/v2/whatever`, 'PATH_NOT_FOUND'],
    ]) {
      const r = await get(url);
      expect(r.status, url).toBe(404);
      expect(r.headers.get('location')).toBeNull();
      const body = JSON.parse(r.body.toString());
      expect(body.error.code, url).toBe(code);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
      expect(r.body.toString()).not.toMatch(/ at .*\.js:\d+/);
      expect(r.body.toString()).not.toContain(tmp.dir);
    }
  });

  it('hostile names are refused with 400', async () => {
    for (const rawPath of [
      '/v1/archives/demo/files/docs%2Freadme.md',
      '/v1/archives/demo%2F..%2Fdemo/files/x',
      '/v1/archives/demo/files/%2e%2e/%2e%2e/etc/passwd',
      '/v1/archives/demo/files/../../../etc/passwd',
      '/v1/archives/../../etc/files/passwd',
      '/v1/archives/demo/files/docs/readme.md%00.txt',
      '/v1/archives/demo/files/a%5Cb',
      '/v1/archives/demo/tree/%2e%2e',
    ]) {
      const r = await curl(['--path-as-is', `${gw.url}${rawPath}`]);
      expect(r.status, rawPath).toBe(400);
      expect(JSON.parse(r.body.toString()).error.code, rawPath).toBe('UNSAFE_PATH');
    }
  });

  it('malformed percent-escapes: 400 UNSAFE_PATH in the gateway error shape, with a request id, logged and counted', async () => {
    const count = async () => Number(/hexz_http_requests_total\{route="unmatched",method="GET",status="400"\} (\d+)/.exec((await get(`${gw.url}/metrics`)).body.toString())?.[1] ?? 0);
    const before = await count();
    const bad = ['/v1/archives/x/files/%zz', '/v1/archives/demo/files/%E0%A4%A', '/v1/archives/demo/files/a%C0%AE', '/v1/archives/%ff/files/x'];
    for (const rawPath of bad) {
      const r = await curl(['--path-as-is', '-H', 'X-Request-Id: bad-url-1', `${gw.url}${rawPath}`]);
      expect(r.status, rawPath).toBe(400);
      expect(r.headers['content-type'], rawPath).toBe('application/json; charset=utf-8');
      expect(r.headers['x-request-id'], rawPath).toBe('bad-url-1');
      const body = JSON.parse(r.body.toString());
      expect(Object.keys(body), rawPath).toEqual(['error']);
      expect(body.error.code, rawPath).toBe('UNSAFE_PATH');
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
    }
    // Counted once each (the response's close is reported asynchronously: poll, bounded).
    let after = 0;
    for (let i = 0; i < 200 && after < before + bad.length; i++) after = await count();
    expect(after).toBe(before + bad.length);
  });

  it('other methods are refused: read-only', async () => {
    const r = await curl(['-X', 'PUT', '--data', 'x', `${base}/demo/files/x`]);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(JSON.parse(r.body.toString()).error.code).toBe('READ_ONLY');
    // Whatever the body: larger than the 1 KiB body limit, JSON, or none; on any URL.
    const big = 'x'.repeat(4096);
    for (const args of [
      ['-X', 'POST', '--data', big, `${base}/demo/files/docs/readme.md`],
      ['-X', 'POST', '-H', 'Content-Type: application/json', '--data', JSON.stringify({ a: big }), `${base}`],
      ['-X', 'PUT', '-H', 'Content-Type: application/x-unknown', '--data-binary', big, `${base}/demo`],
      ['-X', 'DELETE', `${base}/demo`],
      ['-X', 'PATCH', '--data', big, `${gw.url}/nowhere`],
    ]) {
      const x = await curl(args);
      expect(x.status, args.join(' ')).toBe(405);
      expect(x.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(JSON.parse(x.body.toString()).error.code).toBe('READ_ONLY');
    }
  });

  it('request ids: generated, or taken from a sane X-Request-Id', async () => {
    const a = await get(`${gw.url}/healthz`);
    expect(a.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const b = await get(`${gw.url}/healthz`, { 'x-request-id': 'trace-123' });
    expect(b.headers.get('x-request-id')).toBe('trace-123');
    const c = await get(`${gw.url}/healthz`, { 'x-request-id': 'bad id with spaces' });
    expect(c.headers.get('x-request-id')).not.toBe('bad id with spaces');
  });
});

describe('operations', () => {
  it('health and readiness', async () => {
    expect((await getJson(`${gw.url}/healthz`)).json).toEqual({ status: 'ok' });
    expect((await getJson(`${gw.url}/readyz`)).json).toEqual({ status: 'ready' });
  });

  it('metrics: requests, latency, bytes, cache, storage, open archives', async () => {
    await get(`${base}/demo/files/data/big.bin`, { range: 'bytes=0-99' });
    const text = (await get(`${gw.url}/metrics`)).body.toString();
    expect(text).toMatch(/hexz_http_requests_total\{route="files",method="GET",status="206"\} \d+/);
    expect(text).toMatch(/hexz_http_request_duration_seconds_bucket\{le="0\.005",route="files",method="GET"\}/);
    expect(text).toMatch(/hexz_http_response_body_bytes_total\{route="files"\} \d+/);
    for (const name of [
      'hexz_cache_hits_total',
      'hexz_cache_misses_total',
      'hexz_cache_bytes',
      'hexz_cache_evictions_total',
      'hexz_storage_requests_total',
      'hexz_storage_read_bytes_total',
      'hexz_storage_request_duration_seconds_bucket',
      'hexz_open_archives',
      'hexz_archive_opens_total',
    ]) {
      expect(text, name).toContain(name);
    }
    expect(Number(/hexz_open_archives (\d+)/.exec(text)![1])).toBeGreaterThan(0);
  });

  it('process metrics when enabled', async () => {
    const g = await startGateway({ storage: root, port: 0, logLevel: 'silent' });
    try {
      const text = (await get(`${g.url}/metrics`)).body.toString();
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(text).toContain('nodejs_eventloop_lag_seconds');
    } finally {
      await g.close();
    }
  });
});

describe('a storage root that does not exist', () => {
  it('answers 503 STORAGE_UNAVAILABLE everywhere (readiness, listing, archives), then serves once it appears', async () => {
    const missing = path.join(tmp.dir, 'not-yet');
    const g = await startGateway({ storage: missing, port: 0, logLevel: 'silent', archiveTtlMs: 50 }, { processMetrics: false });
    try {
      const ready = await getJson(`${g.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.json.error.code).toBe('STORAGE_UNAVAILABLE');
      for (const url of [`${g.url}/v1/archives`, `${g.url}/v1/archives?limit=1`, `${g.url}/v1/archives/demo`, `${g.url}/v1/archives/demo/files/docs/readme.md`, `${g.url}/v1/archives/demo/tree/`, `${g.url}/v1/archives/img/disk`]) {
        const r = await getJson(url);
        expect(r.status, url).toBe(503);
        expect(r.json.error.code, url).toBe('STORAGE_UNAVAILABLE');
        expect(r.json.error.message, url).not.toContain(tmp.dir);
      }
      // The root appears (a volume mounted late): served without a restart.
      await fs.mkdir(missing);
      await fs.copyFile(path.join(root, 'demo.hxz'), path.join(missing, 'demo.hxz'));
      expect((await getJson(`${g.url}/readyz`)).status).toBe(200);
      expect((await getJson(`${g.url}/v1/archives`)).json.archives.map((a: { name: string }) => a.name)).toEqual(['demo']);
      expect((await get(`${g.url}/v1/archives/demo/files/docs/readme.md`)).status).toBe(200);
      expect((await getJson(`${g.url}/v1/archives/nope`)).json.error.code).toBe('ARCHIVE_NOT_FOUND');
    } finally {
      await g.close();
    }
  });

  it('a root that is a file is unavailable too', async () => {
    const g = await startGateway({ storage: path.join(root, 'notes.txt'), port: 0, logLevel: 'silent' }, { processMetrics: false });
    try {
      for (const url of [`${g.url}/readyz`, `${g.url}/v1/archives`, `${g.url}/v1/archives/demo/files/x`]) {
        const r = await getJson(url);
        expect(r.status, url).toBe(503);
        expect(r.json.error.code, url).toBe('STORAGE_UNAVAILABLE');
      }
    } finally {
      await g.close();
    }
  });
});

describe('CORS', () => {
  let g: Gateway;
  beforeAll(async () => {
    g = await startGateway({ storage: root, port: 0, logLevel: 'silent', corsOrigins: ['https://app.example'] }, { processMetrics: false });
  });
  afterAll(() => g.close());

  it('allowed origins get the headers, others do not', async () => {
    const ok = await get(`${g.url}/v1/archives/demo/files/data/big.bin`, { origin: 'https://app.example', range: 'bytes=0-9' });
    expect(ok.status).toBe(206);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const exposed = (ok.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const h of ['content-range', 'etag', 'accept-ranges']) expect(exposed).toContain(h);
    // Across chunks (sent as several views in one write) and streamed: the same headers.
    for (const range of ['bytes=65000-200000', 'bytes=0-']) {
      const r = await get(`${g.url}/v1/archives/demo/files/data/big.bin`, { origin: 'https://app.example', range });
      expect(r.headers.get('access-control-allow-origin'), range).toBe('https://app.example');
      expect(r.headers.get('access-control-expose-headers'), range).toContain('Content-Range');
    }
    const other = await get(`${g.url}/v1/archives/demo/files/data/big.bin`, { origin: 'https://evil.example', range: 'bytes=0-9' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const post = await curl(['-X', 'POST', '-H', 'Origin: https://app.example', '--data', 'x'.repeat(2048), `${g.url}/v1/archives/demo/files/x`]);
    expect(post.status).toBe(405);
    expect(post.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('errors Fastify raises before routing (a malformed URL) carry the same CORS headers as other errors', async () => {
    const normal = await curl(['-H', 'Origin: https://app.example', `${g.url}/v1/archives/demo/files/nope`]);
    const bad = await curl(['--path-as-is', '-H', 'Origin: https://app.example', `${g.url}/v1/archives/demo/files/%zz`]);
    expect(normal.status).toBe(404);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body.toString()).error.code).toBe('UNSAFE_PATH');
    for (const h of ['access-control-allow-origin', 'access-control-expose-headers', 'vary']) expect(bad.headers[h], h).toBe(normal.headers[h]);
    expect(bad.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await curl(['--path-as-is', '-H', 'Origin: https://evil.example', `${g.url}/v1/archives/demo/files/%zz`]);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('preflight', async () => {
    const r = await curl([
      '-X',
      'OPTIONS',
      '-H',
      'Origin: https://app.example',
      '-H',
      'Access-Control-Request-Method: GET',
      '-H',
      'Access-Control-Request-Headers: range, if-none-match',
      `${g.url}/v1/archives/demo/files/data/big.bin`,
    ]);
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(r.headers['access-control-allow-methods']).toContain('GET');
    expect((r.headers['access-control-allow-headers'] ?? '').toLowerCase()).toContain('range');
  });
});

describe('bearer-token authentication', () => {
  let g: Gateway;
  beforeAll(async () => {
    const tokens = path.join(tmp.dir, 'tokens');
    await fs.writeFile(tokens, '# gateway tokens\nalpha-token\n\nbeta-token\n');
    const cors = path.join(tmp.dir, 'cors-tokens');
    await fs.writeFile(cors, 'gamma-token\n');
    g = await startGateway({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [tokens, cors], corsOrigins: ['https://app.example'] }, { processMetrics: false });
  });
  afterAll(() => g.close());

  it('requires a valid token on the API, accepts any of several', async () => {
    const url = `${g.url}/v1/archives/demo/files/docs/readme.md`;
    const none = await get(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="hexz"');
    expect(JSON.parse(none.body.toString()).error.code).toBe('UNAUTHORIZED');
    expect((await get(url, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(url, { authorization: 'Basic YWxwaGE6eA==' })).status).toBe(401);
    expect((await get(url, { authorization: 'Bearer alpha-token-and-more' })).status).toBe(401);
    for (const t of ['alpha-token', 'beta-token', 'gamma-token']) expect((await get(url, { authorization: `Bearer ${t}` })).status).toBe(200);
    expect((await curl(['-H', 'Authorization: Bearer beta-token', `${g.url}/v1/archives`])).status).toBe(200);
    expect((await get(`${g.url}/metrics`)).status).toBe(401);
    expect((await get(`${g.url}/nope`)).status).toBe(401);
  });

  it('health endpoints and CORS preflights stay open', async () => {
    expect((await get(`${g.url}/healthz`)).status).toBe(200);
    expect((await get(`${g.url}/readyz`)).status).toBe(200);
    const pre = await curl(['-X', 'OPTIONS', '-H', 'Origin: https://app.example', '-H', 'Access-Control-Request-Method: GET', `${g.url}/v1/archives/demo/files/docs/readme.md`]);
    expect(pre.status).toBe(204);
  });

  it('an empty token file is refused at start (fail closed)', async () => {
    const empty = path.join(tmp.dir, 'empty-tokens');
    await fs.writeFile(empty, '# nothing\n\n');
    await expect(startGateway({ storage: root, port: 0, logLevel: 'silent', authTokenFiles: [empty] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('thin archives in local storage', () => {
  let g: Gateway;
  let thinRoot: string;
  const v2Big = Buffer.concat([big.subarray(0, MiB), Buffer.from('an insert'), big.subarray(MiB)]);
  beforeAll(async () => {
    thinRoot = path.join(tmp.dir, 'thin-root');
    const v2 = path.join(tmp.dir, 'thin-v2');
    await fs.mkdir(v2, { recursive: true });
    await fs.writeFile(path.join(v2, 'big.bin'), v2Big);
    const v1Archive = await packArchive(data, thinRoot, 'ds/v1');
    await packArchive(v2, thinRoot, 'ds/later/v2', { bases: [v1Archive] });
    const outside = await packArchive(data, tmp.dir, 'outside');
    await packArchive(v2, thinRoot, 'escape', { bases: [outside] });
    g = await startGateway({ storage: thinRoot, port: 0, logLevel: 'silent' }, { processMetrics: false });
  });
  afterAll(() => g.close());

  it('a base elsewhere in the root is found; content is exact', async () => {
    const info = await getJson(`${g.url}/v1/archives/ds/later/v2`);
    expect(info.json.bases).toMatchObject([{ name: 'ds/v1', hint: '../v1.hxz' }]);
    const r = await curl(['-r', `${MiB - 10}-${MiB + 20}`, `${g.url}/v1/archives/ds/later/v2/files/big.bin`]);
    expect(r.body.equals(v2Big.subarray(MiB - 10, MiB + 21))).toBe(true);
    expect((await get(`${g.url}/v1/archives/ds/later/v2/files/big.bin`)).body.equals(v2Big)).toBe(true);
  });

  it('a base outside the root is refused: 502 BASE_MISSING, no server path in the message', async () => {
    const r = await getJson(`${g.url}/v1/archives/escape/files/big.bin`);
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('BASE_MISSING');
    expect(r.json.error.message).not.toContain(thinRoot);
    expect(r.json.error.message).toMatch(/archive "escape" is a thin archive whose base [0-9a-f-]{36} \(recorded as "\.\.\/outside\.hxz"\) is not in the gateway's storage/);
  });
});
