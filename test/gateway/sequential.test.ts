/**
 * Sequential readers across requests (src/gateway/sequential.ts): a client reading a file in
 * consecutive ranges gets what comes next prefetched, so most of its ranges cost no storage request
 * of their own and no stored byte is read twice; a client reading the same ranges in a random order
 * prefetches nothing. Counted at the gateway's metered storage, through a real server on port 0.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB, packArchive } from './fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
/** Incompressible, so stored bytes ≈ file bytes and a chunk read twice shows in the byte count. */
const data = randomBytesSeeded(32 * MiB, 91);
const RANGES = 32;
const URL_PATH = '/v1/archives/a/files/big.bin';

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-seq-');
  await writeTree(path.join(tmp.dir, 'in'), { 'big.bin': data });
  root = path.join(tmp.dir, 'archives');
  await packArchive(path.join(tmp.dir, 'in'), root, 'a');
});
afterAll(async () => {
  await tmp?.cleanup();
});

/** Read the 1 MiB ranges in `order` one after another from a fresh gateway; storage requests and bytes after the open. */
async function readRanges(order: number[]): Promise<{ requests: number; bytes: number }> {
  const gw: Gateway = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
  try {
    // Open the archive and load the file's index pages (the last byte: not part of the pass).
    const tail = await get(`${gw.url}${URL_PATH}`, { Range: `bytes=${data.length - 1}-` });
    expect(tail.status).toBe(206);
    const requests = gw.storageCounters.requests;
    const bytes = gw.storageCounters.bytes;
    for (const i of order) {
      const r = await get(`${gw.url}${URL_PATH}`, { Range: `bytes=${i * MiB}-${(i + 1) * MiB - 1}` });
      expect(r.status).toBe(206);
      expect(r.body.equals(data.subarray(i * MiB, (i + 1) * MiB))).toBe(true);
    }
    return { requests: gw.storageCounters.requests - requests, bytes: gw.storageCounters.bytes - bytes };
  } finally {
    await gw.close();
  }
}

describe('sequential ranges across requests', () => {
  it('prefetch what comes next: fewer storage requests than ranges, every stored byte read once', async () => {
    const seq = await readRanges(Array.from({ length: RANGES }, (_, i) => i));
    // Without readahead each 1 MiB range is (at least) one request of its own: 32.
    expect(seq.requests).toBeLessThan(RANGES / 2);
    expect(seq.bytes).toBeLessThan(data.length * 1.1);
  });

  it('a client jumping around prefetches nothing', async () => {
    // A fixed shuffle with no two consecutive ranges next to each other.
    const order = Array.from({ length: RANGES }, (_, i) => (i * 13) % RANGES);
    const random = await readRanges(order);
    expect(random.requests).toBeGreaterThanOrEqual(RANGES);
    expect(random.bytes).toBeLessThan(data.length * 1.1);
  });
});

describe('each request is observed once', () => {
  it('two cold consecutive ranges (each falling through the warm path) do not count as four', async () => {
    const gw: Gateway = await startGateway({ storage: root, port: 0, logLevel: 'silent' }, { processMetrics: false });
    try {
      const tail = await get(`${gw.url}${URL_PATH}`, { Range: `bytes=${data.length - 1}-` });
      expect(tail.status).toBe(206);
      const bytes = gw.storageCounters.bytes;
      for (const i of [4, 5]) {
        const r = await get(`${gw.url}${URL_PATH}`, { Range: `bytes=${i * MiB}-${(i + 1) * MiB - 1}` });
        expect(r.status).toBe(206);
      }
      await new Promise((resolve) => setTimeout(resolve, 500)); // any prefetch lands meanwhile
      // Two 1 MiB reads give the detector a 1 MiB window, below one PREFETCH_STEP: nothing prefetched.
      // Observed twice each (warm path, then async path), they looked like four and prefetched 6 MiB.
      expect(gw.storageCounters.bytes - bytes).toBeLessThan(3 * MiB);
    } finally {
      await gw.close();
    }
  });
});
