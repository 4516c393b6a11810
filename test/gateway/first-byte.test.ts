/**
 * O(1) first byte (issue 15): the first range request for any byte of a file of more than 50,000
 * chunks costs at most 3 storage reads beyond the archive's open — its file-table page, one
 * chunk-index page, the chunk — whatever the file's size, and carries a strong ETag at once (the
 * content digest the packer stored in the file table, not a walk of the file's whole chunk index).
 * Counted at the gateway's metered storage, through a real server on port 0.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkingForAverage } from '@hexz/src/chunker/fastcdc.js';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, getJson, MiB, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
/** 20 MiB in chunks of ~256 bytes: ~80,000 references, more than one chunk-index page (65,536). */
const data = randomBytesSeeded(20 * MiB, 8);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-first-');
  await writeTree(path.join(tmp.dir, 'in'), { 'small.txt': 'hello\n', 'big.bin': data });
  const root = path.join(tmp.dir, 'archives');
  await packArchive(path.join(tmp.dir, 'in'), root, 'a', { chunking: chunkingForAverage(256) });
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

describe('the first request of a file of many chunks', () => {
  it('costs at most 3 storage reads beyond the open, with a strong ETag', async () => {
    const info = await getJson(`${gw.url}/v1/archives/a`); // the open: trailer and root
    expect(info.status).toBe(200);
    expect(info.json.chunkRefs ?? info.json.info?.chunkRefs).toBeGreaterThan(65_536);
    const before = gw.storageCounters.requests;
    const at = 13 * MiB + 12_345;
    const r = await get(`${gw.url}/v1/archives/a/files/big.bin`, { Range: `bytes=${at}-${at + 999}` });
    expect(r.status).toBe(206);
    expect(r.body.equals(data.subarray(at, at + 1000))).toBe(true);
    expect(r.headers.get('etag')).toMatch(/^"[0-9a-f]+"$/);
    expect(gw.storageCounters.requests - before).toBeLessThanOrEqual(3);
    // A byte elsewhere in the file: at most one more index page and its chunk.
    const mid = gw.storageCounters.requests;
    const r2 = await get(`${gw.url}/v1/archives/a/files/big.bin`, { Range: `bytes=${MiB}-${MiB}` });
    expect(r2.status).toBe(206);
    expect(r2.headers.get('etag')).toBe(r.headers.get('etag'));
    expect(gw.storageCounters.requests - mid).toBeLessThanOrEqual(2);
  });
});
