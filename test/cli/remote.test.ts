/**
 * Every command on s3:// and https:// archives, against a real S3-compatible server (s3rver) and a real
 * HTTP server, run as child processes the way a user runs them — plus the CI scenario of issue 4: v2
 * packed straight to S3 against an S3 base uploads only the new chunks.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson, run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let s3: S3TestServer;
let http: TestHttpServer;
let v1: string;
let v2: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-remote-');
  s3 = await startS3Server({ buckets: ['datasets'] });
  http = await startHttpServer();
  v1 = path.join(tmp.dir, 'v1');
  await writeTree(v1, {
    'model/weights.bin': randomBytesSeeded(24 * MiB, 1),
    'model/config.json': '{"layers": 12}\n',
    'corpus/text.txt': textBytes(2 * MiB, 2),
  });
  await fs.symlink('model/config.json', path.join(v1, 'config'));
  v2 = path.join(tmp.dir, 'v2');
  await fs.cp(v1, v2, { recursive: true, verbatimSymlinks: true });
  const w = await fs.readFile(path.join(v2, 'model/weights.bin'));
  await fs.writeFile(path.join(v2, 'model/weights.bin'), Buffer.concat([w.subarray(0, 5 * MiB), Buffer.from('patched!'), w.subarray(5 * MiB)]));
  await fs.writeFile(path.join(v2, 'corpus/new.txt'), textBytes(100_000, 9));
}, 60_000);

afterAll(async () => {
  await http?.stop();
  await s3?.stop();
  await tmp?.cleanup();
});

const env = () => s3.env;

describe('commands on s3:// archives', () => {
  it('pack streams a directory into a multipart upload; ls, cat, info, verify and extract read it back', async () => {
    const packed = await hexzJson(['pack', v1, 's3://datasets/ds/v1.hxz'], { env: env() });
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.json.archiveBytes).toBeGreaterThan(20 * MiB);

    const ls = await hexz(['ls', '-r', 's3://datasets/ds/v1.hxz'], { env: env() });
    expect(ls.stdout.toString().trim().split('\n')).toEqual(['config', 'corpus/', 'model/', 'corpus/text.txt', 'model/config.json', 'model/weights.bin']);
    const cat = await hexz(['cat', 's3://datasets/ds/v1.hxz', 'model/weights.bin', '--offset', String(3 * MiB), '--length', '100000'], { env: env() });
    expect(cat.stdout.equals(randomBytesSeeded(24 * MiB, 1).subarray(3 * MiB, 3 * MiB + 100_000))).toBe(true);
    const info = await hexzJson(['info', 's3://datasets/ds/v1.hxz'], { env: env() });
    expect(info.json).toMatchObject({ url: 's3://datasets/ds/v1.hxz', fileCount: 6 });
    expect((await hexz(['verify', 's3://datasets/ds/v1.hxz'], { env: env() })).code).toBe(0);
    const dest = path.join(tmp.dir, 'from-s3');
    expect((await hexz(['extract', 's3://datasets/ds/v1.hxz', dest], { env: env() })).code).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(v1));
  });

  it('CI scenario: v2 packed to S3 against the S3 v1 uploads only the new chunks plus the index', async () => {
    const r = await hexzJson(['pack', v2, 's3://datasets/ds/v2.hxz', '--base', 's3://datasets/ds/v1.hxz'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    // Bytes uploaded (the whole v2 object) ≈ the new chunks: a few chunks around the edit, the new
    // file, and the index — nowhere near the 26 MiB dataset.
    expect(r.json.archiveBytes).toBeLessThan(r.json.storedBytes + 64 * 1024);
    expect(r.json.archiveBytes).toBeLessThan(1 * MiB);
    expect(r.json.baseBytes).toBeGreaterThan(23 * MiB);
    expect(r.json.bases[0].url).toBe('s3://datasets/ds/v1.hxz');
    // The delta finds its base next to itself in the bucket, and verifies (bases included).
    const verify = await hexz(['verify', 's3://datasets/ds/v2.hxz'], { env: env() });
    expect(verify.code, verify.stdout.toString()).toBe(0);
    const dest = path.join(tmp.dir, 'v2-from-s3');
    expect((await hexz(['extract', 's3://datasets/ds/v2.hxz', dest], { env: env() })).code).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(v2));
    const info = (await hexz(['info', 's3://datasets/ds/v2.hxz'], { env: env() })).stdout.toString();
    expect(info).toMatch(/^base +s3:\/\/datasets\/ds\/v1\.hxz/m);
  });

  it('the objects are visible to a standard S3 client', async () => {
    const which = await run('bash', ['-c', 'command -v aws']);
    if (which.code !== 0) return; // aws-cli is optional on the machine; the SDK-based checks above stand
    const ls = await run('aws', ['--endpoint-url', s3.endpoint, 's3', 'ls', 's3://datasets/ds/'], { env: { ...env(), AWS_EC2_METADATA_DISABLED: 'true' } });
    expect(ls.stdout.toString()).toMatch(/v1\.hxz/);
    expect(ls.stdout.toString()).toMatch(/v2\.hxz/);
  });

  it('a missing object and a missing base give clear errors', async () => {
    const missing = await hexz(['info', 's3://datasets/ds/nope.hxz'], { env: env() });
    expect(missing.code).toBe(8);
    const local = path.join(tmp.dir, 'v2-local.hxz');
    const pulled = await run('node', [path.resolve('dist/src/cli/main.js'), 'cat', 's3://datasets/ds/v2.hxz', 'config'], { env: env() });
    expect(pulled.stdout.toString()).toBe('{"layers": 12}\n');
    // Download the delta alone (as `aws s3 cp` would): its base is then not next to it.
    const { openStorage } = await import('@hexz/storage/index.js');
    const saved = { ...process.env };
    Object.assign(process.env, env());
    try {
      const obj = await openStorage('s3://datasets/ds/v2.hxz', { s3: { endpoint: s3.endpoint, forcePathStyle: true } });
      await fs.writeFile(local, await obj.read(0, (await obj.stat()).size));
      await obj.close();
    } finally {
      process.env = saved;
    }
    // Listing needs no base; reading the base's chunks does.
    expect((await hexz(['ls', local])).code).toBe(0);
    const err = await hexz(['verify', local]);
    expect(err.code).toBe(6);
    expect(err.stderr).toMatch(/is missing: looked at .*v1\.hxz/);
    expect((await hexz(['--base-map', `${(await hexzJson(['info', 's3://datasets/ds/v1.hxz'], { env: env() })).json.uuid}=s3://datasets/ds/v1.hxz`, 'verify', local], { env: env() })).code).toBe(0);
  });
});

describe('commands on https:// archives', () => {
  it('info, ls, cat, verify and extract over HTTP range requests', async () => {
    const local = path.join(tmp.dir, 'http.hxz');
    expect((await hexz(['pack', v1, local])).code).toBe(0);
    const url = await http.put('ds/v1.hxz', await fs.readFile(local));
    expect((await hexzJson(['info', url])).json).toMatchObject({ fileCount: 6 });
    expect((await hexz(['ls', url, 'model'])).stdout.toString().trim().split('\n')).toEqual(['config.json', 'weights.bin']);
    const cat = await hexz(['cat', url, 'corpus/text.txt']);
    expect(cat.stdout.equals(await fs.readFile(path.join(v1, 'corpus/text.txt')))).toBe(true);
    expect((await hexz(['verify', url])).code).toBe(0);
    const dest = path.join(tmp.dir, 'from-http');
    expect((await hexz(['extract', url, dest])).code).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(v1));
  });

  it('a thin archive over HTTP finds its base next to it', async () => {
    const base = path.join(tmp.dir, 'h1.hxz');
    const delta = path.join(tmp.dir, 'h2.hxz');
    expect((await hexz(['pack', v1, base])).code).toBe(0);
    expect((await hexz(['pack', v2, delta, '--base', base])).code).toBe(0);
    await http.put('thin/h1.hxz', await fs.readFile(base));
    const url = await http.put('thin/h2.hxz', await fs.readFile(delta));
    const dest = path.join(tmp.dir, 'thin-from-http');
    const r = await hexz(['extract', url, dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(v2));
  });
});
