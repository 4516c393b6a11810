/**
 * Concurrency: 200 parallel range requests over several archives return exact bytes, while the block
 * cache, much smaller than the data, stays within its budget (and evicts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@hexz/src/gateway/server.js';
import { randomBytesSeeded, textBytes } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { get, MiB, packArchive } from './fixture.js';

const ARCHIVES = 4;
const REQUESTS = 200;
const CACHE_BYTES = 8 * MiB;

let tmp: { dir: string; cleanup: () => Promise<void> };
let gw: Gateway;
const contents: Array<{ name: string; file: string; bytes: Buffer }> = [];

beforeAll(async () => {
  tmp = await makeTempDir('hexz-gw-conc-');
  const root = path.join(tmp.dir, 'archives');
  for (let i = 0; i < ARCHIVES; i++) {
    const dir = path.join(tmp.dir, `src${i}`);
    await fs.mkdir(dir, { recursive: true });
    // Half random, half text: both codec paths, 6 MiB per archive, 24 MiB in all (3x the cache).
    const bytes = Buffer.concat([randomBytesSeeded(3 * MiB, 100 + i), textBytes(3 * MiB, 200 + i)]);
    await fs.writeFile(path.join(dir, 'blob.bin'), bytes);
    const name = i % 2 ? `group/a${i}` : `a${i}`;
    await packArchive(dir, root, name);
    contents.push({ name, file: 'blob.bin', bytes });
  }
  gw = await startGateway({ storage: root, port: 0, logLevel: 'silent', cacheBytes: CACHE_BYTES }, { processMetrics: false });
});
afterAll(async () => {
  await gw?.close();
  await tmp?.cleanup();
});

describe('concurrency', () => {
  it(`${REQUESTS} parallel range requests over ${ARCHIVES} archives: exact bytes, cache within budget`, async () => {
    let maxSeen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxSeen = Math.max(maxSeen, gw.cache.stats().bytes);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const jobs = Array.from({ length: REQUESTS }, (_, k) => {
      const c = contents[k % ARCHIVES];
      // Deterministic spread of offsets and lengths: inside a chunk, across chunks, up to 1.5 MiB.
      const len = [1, 100, 65536, 300_000, 1_500_000][k % 5];
      const start = (k * 1_234_567) % (c.bytes.length - len);
      return { c, start, end: start + len - 1 };
    });
    const results = await Promise.all(
      jobs.map(async (j) => {
        const r = await get(`${gw.url}/v1/archives/${j.c.name}/files/${j.c.file}`, { range: `bytes=${j.start}-${j.end}` });
        return { j, r };
      }),
    );
    sampling = false;
    await sampler;
    for (const { j, r } of results) {
      expect(r.status).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${j.start}-${j.end}/${j.c.bytes.length}`);
      expect(r.body.equals(j.c.bytes.subarray(j.start, j.end + 1)), `${j.c.name} ${j.start}-${j.end}`).toBe(true);
    }
    const stats = gw.cache.stats();
    expect(stats.maxBytes).toBe(CACHE_BYTES);
    expect(stats.bytes).toBeLessThanOrEqual(CACHE_BYTES);
    expect(maxSeen).toBeLessThanOrEqual(CACHE_BYTES);
    expect(stats.evictions).toBeGreaterThan(0);
    const text = (await get(`${gw.url}/metrics`)).body.toString();
    expect(Number(/hexz_cache_bytes (\d+)/.exec(text)![1])).toBeLessThanOrEqual(CACHE_BYTES);
    expect(Number(/hexz_open_archives (\d+)/.exec(text)![1])).toBe(ARCHIVES);
  });

  it('whole files in parallel, several times over (streamed, evicting as they go)', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 3 * ARCHIVES }, async (_, k) => {
        const c = contents[k % ARCHIVES];
        const r = await get(`${gw.url}/v1/archives/${c.name}/files/${c.file}`);
        return r.body.equals(c.bytes);
      }),
    );
    expect(rounds.every(Boolean)).toBe(true);
    expect(gw.cache.stats().bytes).toBeLessThanOrEqual(CACHE_BYTES);
  });
});
