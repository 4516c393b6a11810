import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache, sharedCache } from '@hexz/cache/block-cache.js';
import { diffArchives } from '@hexz/src/diff.js';
import { flattenArchive } from '@hexz/src/packer/flatten.js';
import { pack, type PackSummary } from '@hexz/src/packer/pack.js';
import { openArchive, type Archive } from '@hexz/src/reader/archive.js';
import { verifyArchive } from '@hexz/src/reader/verify.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, sha256, textBytes, writeTree } from '../helpers/data.js';
import { openChain } from '../helpers/open-chain.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const MAX_CHUNK = 256 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };

/** Read every file of `archive` and compare with the files under `dir`. */
async function expectSameContent(archive: Archive, dir: string): Promise<void> {
  let files = 0;
  for await (const e of archive.walk()) {
    if (e.type !== 'file') continue;
    const want = await fs.readFile(path.join(dir, e.path));
    const got = e.size ? await archive.read(e, 0, e.size) : new Uint8Array(0);
    expect(sha256(got), e.path).toBe(sha256(want));
    files++;
  }
  expect(files).toBeGreaterThan(0);
}

interface Version {
  dir: string;
  changedBytes: number;
  edits: number;
}

let v1: Version;
let v2: Version;
const big1 = randomBytesSeeded(256 * MiB, 1);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-delta-');
  const files: Record<string, string | Uint8Array | null> = { 'big.bin': big1, 'empty-dir': null };
  for (let i = 0; i < 20; i++) files[`docs/doc${i}.txt`] = textBytes(20_000 + i * 1000, 100 + i);
  for (let i = 0; i < 5; i++) files[`bin/blob${i}.bin`] = randomBytesSeeded(300_000, 200 + i);
  v1 = { dir: path.join(tmp.dir, 'v1'), changedBytes: 0, edits: 0 };
  await writeTree(v1.dir, files);

  // v2: small inserts and deletes that shift offsets, a modified text, files added, removed, renamed.
  v2 = { dir: path.join(tmp.dir, 'v2'), changedBytes: 0, edits: 0 };
  await fs.cp(v1.dir, v2.dir, { recursive: true });
  let big = big1;
  for (let k = 0; k < 10; k++) {
    const at = Math.floor(((k + 0.5) / 10) * big.length) + k * 997;
    const n = 1 + ((k * 7) % 16);
    if (k % 2 === 0) {
      big = Buffer.concat([big.subarray(0, at), randomBytesSeeded(n, 900 + k), big.subarray(at)]);
      v2.changedBytes += n;
    } else big = Buffer.concat([big.subarray(0, at), big.subarray(at + n)]);
    v2.edits++;
  }
  await fs.writeFile(path.join(v2.dir, 'big.bin'), big);
  const doc = await fs.readFile(path.join(v2.dir, 'docs/doc3.txt'));
  await fs.writeFile(path.join(v2.dir, 'docs/doc3.txt'), Buffer.concat([doc.subarray(0, 5000), Buffer.from('an inserted line\n'), doc.subarray(5000)]));
  v2.changedBytes += 17;
  v2.edits++;
  for (let i = 0; i < 3; i++) {
    await fs.writeFile(path.join(v2.dir, `added${i}.bin`), randomBytesSeeded(5000, 300 + i));
    v2.changedBytes += 5000;
    v2.edits++;
  }
  await fs.rm(path.join(v2.dir, 'docs/doc7.txt'));
  await fs.rm(path.join(v2.dir, 'bin/blob4.bin'));
  await fs.rename(path.join(v2.dir, 'bin/blob0.bin'), path.join(v2.dir, 'bin/renamed.bin'));
}, 120_000);

afterAll(async () => {
  await tmp.cleanup();
});

describe('thin archives', () => {
  let s1: PackSummary;
  let s2: PackSummary;
  const a1 = () => path.join(tmp.dir, 'out', 'v1.hxz');
  const a2 = () => path.join(tmp.dir, 'out', 'v2.hxz');

  it('a delta stores about what changed (≤ 1.2 × changed bytes + one max chunk per edit)', async () => {
    s1 = await pack(v1.dir, a1());
    s2 = await pack(v2.dir, a2(), { bases: [a1()] });
    const bound = 1.2 * v2.changedBytes + v2.edits * MAX_CHUNK;
    expect(s2.storedBytes).toBeLessThanOrEqual(bound);
    expect(s2.baseBytes).toBeGreaterThan(250 * MiB);
    expect(s2.archiveBytes).toBeLessThan(s1.archiveBytes / 20);
    expect(s2.bases).toHaveLength(1);
  });

  it('reads only the base index, never its chunk data', async () => {
    const base = await openArchive(a1());
    const indexBytes = base.storageStat.size - base.root.storedChunkBytes - 64;
    await base.close();
    expect(s2.baseIndexBytes).toBeGreaterThan(0);
    expect(s2.baseIndexBytes).toBeLessThanOrEqual(indexBytes + 64 * 1024);
  });

  it("reads the base's index through the process's one cache (one memory budget), not a private one", async () => {
    // A given cache is the one charged: the base's index pages went through it, within its budget.
    const cache = new BlockCache({ maxBytes: 4 * MiB });
    const s = await pack(v2.dir, path.join(tmp.dir, 'out', 'v2-own-cache.hxz'), { bases: [a1()], cache });
    expect(s.baseBytes).toBe(s2.baseBytes);
    const st = cache.stats();
    expect(st.misses).toBeGreaterThan(0);
    expect(st.loadedBytes).toBeGreaterThan(0);
    expect(st.bytes).toBeLessThanOrEqual(st.maxBytes);
    // By default, the process's shared cache is used (earlier packs of this file may have filled it).
    const lookups = () => sharedCache().stats().hits + sharedCache().stats().misses;
    const before = lookups();
    await pack(v2.dir, path.join(tmp.dir, 'out', 'v2-shared-cache.hxz'), { bases: [a1()] });
    expect(lookups()).toBeGreaterThan(before);
  });

  it('every file of v2 reads back byte-identically through the delta, and verify passes', async () => {
    const archive = await openArchive(a2(), { cache: new BlockCache() });
    await expectSameContent(archive, v2.dir);
    const report = await verifyArchive(archive);
    expect(report.problems).toEqual([]);
    expect(report.baseChunks).toBeGreaterThan(1000);
    const info = archive.info();
    expect(info.bases[0]).toMatchObject({ direct: true, hint: 'v1.hxz' });
    expect(info.bases[0].logicalBytes).toBeGreaterThan(250 * MiB);
    await archive.close();
  });

  it('a chain of 4 resolves every chunk in one hop to the archive that holds it', async () => {
    const dirs = [v1.dir, v2.dir];
    for (let k = 3; k <= 4; k++) {
      const d = path.join(tmp.dir, `v${k}`);
      await fs.cp(dirs[dirs.length - 1], d, { recursive: true });
      await fs.writeFile(path.join(d, `docs/v${k}.txt`), textBytes(50_000, k * 11));
      const big = await fs.readFile(path.join(d, 'big.bin'));
      await fs.writeFile(path.join(d, 'big.bin'), Buffer.concat([big.subarray(0, 1000 * k), Buffer.from(`v${k}`), big.subarray(1000 * k)]));
      dirs.push(d);
      await pack(d, path.join(tmp.dir, 'out', `v${k}.hxz`), { bases: [path.join(tmp.dir, 'out', `v${k - 1}.hxz`)] });
    }
    const v4 = await openArchive(path.join(tmp.dir, 'out', 'v4.hxz'), { cache: new BlockCache() });
    const info = v4.info();
    expect(info.bases.map((b) => b.hint)).toEqual(['v3.hxz', 'v2.hxz', 'v1.hxz']);
    expect(info.bases.map((b) => b.direct)).toEqual([true, false, false]);
    // The grandparent's grandparent holds most of the bytes, and they read back right (not as zeros).
    expect(info.bases[2].logicalBytes).toBeGreaterThan(200 * MiB);
    const owners = new Set<number>();
    for await (const r of v4.refsIn(0, v4.root.logicalSize)) if (!r.hole) owners.add(r.owner);
    expect([...owners].sort()).toEqual([0, 1, 2, 3]);
    await expectSameContent(v4, dirs[3]);
    expect((await verifyArchive(v4)).problems).toEqual([]);
    await v4.close();
  });

  it('a moved base gives a clear error naming it, then works with --base-dir', async () => {
    const moved = path.join(tmp.dir, 'moved');
    await fs.mkdir(moved);
    for (const k of [1, 2, 3]) await fs.rename(path.join(tmp.dir, 'out', `v${k}.hxz`), path.join(moved, `v${k}.hxz`));
    try {
      const err = await openChain(path.join(tmp.dir, 'out', 'v4.hxz')).catch((e) => e);
      expect(err.code).toBe('BASE_MISSING');
      expect(err.message).toMatch(/base [0-9a-f-]{36} of .*v4\.hxz is missing: looked at .*out\/v3\.hxz/);
      const cli = await hexz(['info', path.join(tmp.dir, 'out', 'v4.hxz')]);
      expect(cli.code).toBe(6);
      expect(cli.stderr).toMatch(/--base-dir/);
      const ok = await openArchive(path.join(tmp.dir, 'out', 'v4.hxz'), { baseDir: moved, cache: new BlockCache() });
      await expectSameContent(ok, path.join(tmp.dir, 'v4'));
      await ok.close();
      const viaCli = await hexz(['--base-dir', moved, 'cat', path.join(tmp.dir, 'out', 'v4.hxz'), 'docs/v4.txt']);
      expect(viaCli.code).toBe(0);
      expect(viaCli.stdout.equals(await fs.readFile(path.join(tmp.dir, 'v4', 'docs/v4.txt')))).toBe(true);
    } finally {
      for (const k of [1, 2, 3]) await fs.rename(path.join(moved, `v${k}.hxz`), path.join(tmp.dir, 'out', `v${k}.hxz`));
    }
  });

  it("a different archive in the base's place is refused (UUID/index hash mismatch)", async () => {
    const impostorDir = path.join(tmp.dir, 'impostor');
    await fs.mkdir(impostorDir);
    await pack(path.join(v1.dir, 'docs'), path.join(impostorDir, 'v1.hxz'));
    const err = await openChain(path.join(tmp.dir, 'out', 'v2.hxz'), { baseDir: impostorDir }).catch((e) => e);
    expect(err.code).toBe('BASE_MISMATCH');
    expect(err.message).toMatch(/is not it \(found UUID .*expected UUID/);
  });

  it('diff reports added, removed, modified (with shared bytes), renamed, and chunk totals', async () => {
    const a = await openArchive(a1());
    const b = await openArchive(a2());
    const d = await diffArchives(a, b);
    expect(d.added.map((e) => e.path).sort()).toEqual(['added0.bin', 'added1.bin', 'added2.bin']);
    expect(d.removed.map((e) => e.path).sort()).toEqual(['bin/blob4.bin', 'docs/doc7.txt']);
    expect(d.renamed).toEqual([{ from: 'bin/blob0.bin', to: 'bin/renamed.bin', size: 300_000 }]);
    const big = d.modified.find((m) => m.path === 'big.bin')!;
    expect(big.sharedBytes).toBeGreaterThan(250 * MiB);
    expect(d.modified.map((m) => m.path).sort()).toEqual(['big.bin', 'docs/doc3.txt']);
    expect(d.chunks.sharedBytes).toBeGreaterThan(250 * MiB);
    expect(d.chunks.onlyBBytes).toBeLessThan(v2.edits * MAX_CHUNK);
    await a.close();
    await b.close();
    const cli = await hexz(['diff', a1(), a2()]);
    expect(cli.stdout.toString()).toMatch(/^R bin\/blob0\.bin → bin\/renamed\.bin$/m);
    expect(cli.stdout.toString()).toMatch(/^M big\.bin \(.*shared\)$/m);
  });

  it('flatten makes a self-contained archive with the same content', async () => {
    const src = await openArchive(path.join(tmp.dir, 'out', 'v4.hxz'));
    const out = path.join(tmp.dir, 'flat', 'v4-flat.hxz');
    const s = await flattenArchive(src, out);
    await src.close();
    expect(s.logicalBytes).toBeGreaterThan(256 * MiB);
    const flat = await openArchive(out, { cache: new BlockCache() });
    expect(flat.root.bases).toEqual([]);
    await expectSameContent(flat, path.join(tmp.dir, 'v4'));
    expect((await verifyArchive(flat)).problems).toEqual([]);
    const v4 = await openArchive(path.join(tmp.dir, 'out', 'v4.hxz'));
    const d = await diffArchives(flat, v4);
    expect(d.added.length + d.removed.length + d.modified.length).toBe(0);
    await flat.close();
    await v4.close();
  });

  it('flatten refuses to replace an archive of the chain, even with --force', async () => {
    const v1Before = await fs.readFile(a1());
    const r = await hexz(['flatten', '-f', path.join(tmp.dir, 'out', 'v4.hxz'), a1()]);
    expect(r.code).toBe(2);
    expect(r.stderr.toString()).toMatch(/is a base of .*v4\.hxz/);
    expect((await fs.readFile(a1())).equals(v1Before)).toBe(true);
  });

  it('the CLI packs a delta with --base and shows the chain in info', async () => {
    const out = path.join(tmp.dir, 'out', 'v2-cli.hxz');
    const r = await hexzJson(['pack', '--base', a1(), v2.dir, out]);
    expect(r.code).toBe(0);
    expect(r.json.baseBytes).toBeGreaterThan(250 * MiB);
    const info = (await hexz(['info', out])).stdout.toString();
    expect(info).toMatch(/^chain:$/m);
    expect(info).toMatch(/^base +.*v1\.hxz/m);
    const summary = (await hexz(['pack', '-f', '--base', a1(), v2.dir, out])).stdout.toString();
    expect(summary).toMatch(/in bases/);
  });

  it('inherits chunking parameters from the base', async () => {
    const small = path.join(tmp.dir, 'out', 'small-chunks.hxz');
    await pack(path.join(v1.dir, 'docs'), small, { chunking: { algorithm: 1, normalization: 2, min: 4096, avg: 16384, max: 65536, seed: '00000000000000aa' } });
    const warnings: string[] = [];
    const delta = path.join(tmp.dir, 'out', 'small-delta.hxz');
    await pack(path.join(v2.dir, 'docs'), delta, { bases: [small], onWarning: (w) => warnings.push(w) });
    const d = await openArchive(delta);
    expect(d.root.chunking).toMatchObject({ avg: 16384, seed: '00000000000000aa' });
    await d.close();
  });
});
