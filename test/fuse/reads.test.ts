/**
 * Reading through a real mount: a 1 GiB file end to end, several readers at once, random 4 KiB
 * reads. Correctness only (no timing assertions; `make bench` measures speed). Every read is made by
 * a child process.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { run } from '../helpers/cli.js';
import { randomBytesSeeded } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, startMount, type RunningMount } from './mount-helper.js';

const RANDOM_READER = fileURLToPath(new URL('./random-reader.mjs', import.meta.url));
const MIB = 1024 * 1024;
const BIG_MIB = 1024;

/**
 * Write a 1 GiB file quickly: a pseudo-random 1 MiB block repeated with the block number stamped into
 * it (so most chunks dedup, a few per MiB differ), and every 64th MiB entirely unique. Returns its sha256.
 */
async function writeBigFile(file: string): Promise<string> {
  const base = randomBytesSeeded(MIB, 11);
  const hash = createHash('sha256');
  const fh = await fs.open(file, 'w');
  try {
    for (let i = 0; i < BIG_MIB; i++) {
      const block = i % 64 === 63 ? randomBytesSeeded(MIB, 1000 + i) : Buffer.from(base);
      block.writeUInt32LE(i, 0);
      block.writeUInt32LE(i, MIB / 2);
      hash.update(block);
      await fh.write(block);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function sha256sum(file: string): Promise<string> {
  const r = await run('sha256sum', [file]);
  if (r.code !== 0) throw new Error(`sha256sum ${file}: ${r.stderr}`);
  return r.stdout.toString().split(' ')[0];
}

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount: reading', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let src: string;
  let mp: string;
  let mount: RunningMount;
  let bigSha: string;
  const mediumSha: Record<string, string> = {};

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-reads-');
    src = path.join(tmp.dir, 'src');
    mp = path.join(tmp.dir, 'mnt');
    await fs.mkdir(src);
    await fs.mkdir(mp);
    bigSha = await writeBigFile(path.join(src, 'big.bin'));
    for (let i = 0; i < 4; i++) {
      const bytes = randomBytesSeeded(12 * MIB + i * 4099, 50 + i);
      await fs.writeFile(path.join(src, `medium-${i}.bin`), bytes);
      mediumSha[`medium-${i}.bin`] = createHash('sha256').update(bytes).digest('hex');
    }
    const archive = path.join(tmp.dir, 'reads.hxz');
    await pack(src, archive, { threads: 2, compression: 'lz4' });
    // A cache smaller than the data: sequential reads must stream through it, not fill it.
    mount = await startMount(archive, mp, { globalArgs: ['--cache-size', '128M'] });
  }, 300_000);

  afterAll(async () => {
    await mount?.stop();
    await forceUnmount(mp);
    await tmp?.cleanup();
  });

  it('reads a 1 GiB file sequentially, byte for byte', async () => {
    const size = await run('stat', ['-c', '%s', path.join(mp, 'big.bin')]);
    expect(Number(size.stdout.toString())).toBe(BIG_MIB * MIB);
    expect(await sha256sum(path.join(mp, 'big.bin'))).toBe(bigSha);
    // And with large blocks, as dd users do (the kernel still splits it into 128 KiB requests).
    const dd = await run('bash', ['-c', 'dd if="$1" bs=1M skip=500 count=100 status=none | sha256sum', 'dd', path.join(mp, 'big.bin')]);
    const expected = await run('bash', ['-c', 'dd if="$1" bs=1M skip=500 count=100 status=none | sha256sum', 'dd', path.join(src, 'big.bin')]);
    expect(dd.stdout.toString()).toBe(expected.stdout.toString());
  }, 300_000);

  it('serves several readers at once: whole files, a big range and random reads together', async () => {
    const readers = [
      ...Object.keys(mediumSha).map(async (name) => ({ name, sha: await sha256sum(path.join(mp, name)) })),
      (async () => {
        const r = await run('bash', ['-c', 'dd if="$1" bs=128K skip=2000 count=1600 status=none | sha256sum', 'dd', path.join(mp, 'big.bin')]);
        return { name: 'big-range', sha: r.stdout.toString().split(' ')[0] };
      })(),
      ...[1, 2].map(async (seed) => {
        const r = await run(process.execPath, [RANDOM_READER, path.join(mp, `medium-${seed}.bin`), path.join(src, `medium-${seed}.bin`), '500', String(seed)]);
        return { name: `random-${seed}`, result: JSON.parse(r.stdout.toString() || '{}'), stderr: r.stderr };
      }),
    ];
    const results = await Promise.all(readers);
    const range = await run('bash', ['-c', 'dd if="$1" bs=128K skip=2000 count=1600 status=none | sha256sum', 'dd', path.join(src, 'big.bin')]);
    for (const r of results) {
      if ('sha' in r && r.name.startsWith('medium')) expect(r.sha, r.name).toBe(mediumSha[r.name]);
      else if ('sha' in r) expect(r.sha).toBe(range.stdout.toString().split(' ')[0]);
      else {
        expect(r.result.reads, r.stderr).toBe(500);
        expect(r.result.mismatches).toEqual([]);
      }
    }
  }, 300_000);

  it('answers random 4 KiB reads (aligned, unaligned, past the end) exactly', async () => {
    const r = await run(process.execPath, [RANDOM_READER, path.join(mp, 'big.bin'), path.join(src, 'big.bin'), '3000', '42', '4096']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.toString());
    expect(result.reads).toBe(3000);
    expect(result.mismatches).toEqual([]);
    const odd = await run(process.execPath, [RANDOM_READER, path.join(mp, 'medium-3.bin'), path.join(src, 'medium-3.bin'), '1000', '7', '1000']);
    expect(JSON.parse(odd.stdout.toString()).mismatches).toEqual([]);
  }, 300_000);

  it('logged no errors while serving', () => {
    expect(mount.stderr()).not.toContain('hexz: error');
  });
});
