/**
 * `GET /v1/diff`: what changed between two archives through a real gateway, against the same
 * comparison as `hexz diff` (diffArchives): the default base, an explicit `from`, cut lists with whole
 * counts, chunk totals, archives chunked differently (compared by content), errors, the info link,
 * and a repeated diff served from the per-version cache without storage reads.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkingForAverage } from '@hexz/src/chunker/fastcdc.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { getJson, MiB, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
const big = randomBytesSeeded(2 * MiB, 3);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-diff-');
  const v1 = path.join(tmp.dir, 'v1');
  const v2 = path.join(tmp.dir, 'v2');
  const root = path.join(tmp.dir, 'archives');
  const same = { 'keep.txt': 'unchanged\n', 'dir/x.txt': 'x\n' };
  await writeTree(v1, { ...same, 'big.bin': big, 'old.txt': 'renamed later\n'.repeat(100), 'gone.txt': 'bye\n', 'mode.txt': 'm\n' });
  // big.bin: 1 MiB in the middle replaced, so most of its chunks are still shared.
  const big2 = Buffer.from(big);
  randomBytesSeeded(64 * 1024, 4).copy(big2, MiB);
  await writeTree(v2, { ...same, 'big.bin': big2, 'new.txt': 'renamed later\n'.repeat(100), 'added.txt': 'hello\n', 'mode.txt': 'm\n' });
  const { chmod } = await import('node:fs/promises');
  await chmod(path.join(v2, 'mode.txt'), 0o600);
  await packArchive(v1, root, 'ds/v1');
  await packArchive(v2, root, 'ds/v2', { bases: [path.join(root, 'ds/v1.hxz')] });
  await packArchive(v2, root, 'other', { chunking: chunkingForAverage(16 * 1024) });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

describe('GET /v1/diff', () => {
  it('compares an archive with its base by default, by chunk ids', async () => {
    const r = await getJson(`${gw.url}/v1/diff?to=ds/v2`);
    expect(r.status).toBe(200);
    const d = r.json;
    expect(d).toMatchObject({ from: 'ds/v1', to: 'ds/v2', comparison: { method: 'chunk-ids' }, truncated: false, links: { from: '/v1/archives/ds/v1', to: '/v1/archives/ds/v2' } });
    expect(d.summary).toMatchObject({ added: 1, removed: 1, modified: 2, renamed: 1, unchanged: 3, addedBytes: 6, removedBytes: 4 });
    expect(d.added).toEqual([{ path: 'added.txt', type: 'file', size: 6 }]);
    expect(d.removed).toEqual([{ path: 'gone.txt', type: 'file', size: 4 }]);
    expect(d.renamed).toEqual([{ from: 'old.txt', to: 'new.txt', size: 1400 }]);
    const bigChange = d.modified.find((m: { path: string }) => m.path === 'big.bin');
    expect(bigChange).toMatchObject({ typeFrom: 'file', typeTo: 'file', sizeFrom: 2 * MiB, sizeTo: 2 * MiB, sizeDelta: 0, metadataOnly: false });
    expect(bigChange.sharedBytes).toBeGreaterThan(MiB);
    expect(bigChange.sharedBytes).toBeLessThan(2 * MiB);
    expect(d.modified.find((m: { path: string }) => m.path === 'mode.txt')).toMatchObject({ metadataOnly: true, sizeDelta: 0, sharedBytes: 2 });
    expect(d.chunks.comparable).toBe(true);
    expect(d.chunks.sharedBytes).toBeGreaterThan(MiB);
    expect(d.chunks.onlyToBytes).toBeGreaterThan(0);
    expect(d.summary.logicalSizeTo - d.summary.logicalSizeFrom).toBe(6 - 4);
  });

  it('cuts the lists at limit and keeps the counts whole', async () => {
    const d = (await getJson(`${gw.url}/v1/diff?from=ds/v1&to=ds/v2&limit=1`)).json;
    expect(d.modified.length).toBe(1);
    expect(d.summary.modified).toBe(2);
    expect(d.truncated).toBe(true);
  });

  it('compares archives chunked differently by reading file contents', async () => {
    const d = (await getJson(`${gw.url}/v1/diff?from=ds/v2&to=other`)).json;
    expect(d.comparison.method).toBe('content');
    expect(d.comparison.reason).toMatch(/chunking/);
    expect(d.summary).toMatchObject({ added: 0, removed: 0, modified: 0, renamed: 0 });
    expect(d.chunks.sharedBytes === null || d.chunks.sharedBytes >= 0).toBe(true);
  });

  it('serves a repeated diff of the same versions from its cache, without storage reads', async () => {
    await getJson(`${gw.url}/v1/diff?to=ds/v2`);
    const before = gw.storageCounters.requests;
    const again = await getJson(`${gw.url}/v1/diff?to=ds/v2`);
    expect(again.status).toBe(200);
    expect(gw.storageCounters.requests).toBe(before);
  });

  it('errors: no base, unknown archives, bad names, a missing `to`', async () => {
    for (const [q, status, code] of [
      ['to=ds/v1', 400, 'INVALID_ARGUMENT'],
      ['to=nope', 404, 'ARCHIVE_NOT_FOUND'],
      ['to=ds/v2&from=nope', 404, 'ARCHIVE_NOT_FOUND'],
      ['to=../x', 400, 'UNSAFE_PATH'],
      ['from=ds/v1', 400, 'INVALID_ARGUMENT'],
      ['to=ds/v2&limit=0', 400, 'INVALID_ARGUMENT'],
    ] as const) {
      const r = await getJson(`${gw.url}/v1/diff?${q}`);
      expect(r.status, q).toBe(status);
      expect(r.json.error.code, q).toBe(code);
    }
  });

  it('is linked from the info of an archive that has a base', async () => {
    expect((await getJson(`${gw.url}/v1/archives/ds/v2`)).json.links.diff).toBe('/v1/diff?to=ds%2Fv2');
    expect((await getJson(`${gw.url}/v1/archives/ds/v1`)).json.links.diff).toBeUndefined();
  });
});
