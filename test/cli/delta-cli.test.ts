/**
 * Thin archives from the command line, the way a user runs them (child processes, real local files, a
 * real HTTPS server with a certificate made for the test, a real S3-compatible server): a delta of two
 * bases, bases behind https:// and s3:// (only their index is read), a different archive in a base's
 * place (another UUID, or the same UUID with another index), and `hexz flatten` of plain and
 * encrypted deltas.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { pack } from '@hexz/src/packer/pack.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, sha256File, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
let tmp: { dir: string; cleanup: () => Promise<void> };
/** Directories: `a` holds one half of the data, `b` the other, `full` both halves plus a new file. */
let dirA: string;
let dirB: string;
let full: string;
let archA: string;
let archB: string;
let uuidA: string;
let uuidB: string;
/** The delta of `full` against both A and B (made by the first test, flattened by the last ones). */
let delta2: string;

/** Extract `archive` into a fresh directory and return its digest (sha256 of every file). */
/** Regular files below `dir` (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const all = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return all.filter((d) => d.isFile()).map((d) => d.name);
}

async function extractDigest(archive: string, name: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<Record<string, string>> {
  const dest = path.join(tmp.dir, 'extracted', name);
  const r = await hexz([...extraArgs, 'extract', archive, dest], { env });
  expect(r.code, r.stderr).toBe(0);
  return treeDigest(dest);
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-delta-cli-');
  dirA = path.join(tmp.dir, 'a');
  dirB = path.join(tmp.dir, 'b');
  full = path.join(tmp.dir, 'full');
  const halfA = randomBytesSeeded(3 * MiB, 11);
  const halfB = randomBytesSeeded(3 * MiB, 12);
  await writeTree(dirA, { 'half-a.bin': halfA });
  await writeTree(dirB, { 'half-b.bin': halfB });
  await writeTree(full, { 'half-a.bin': halfA, 'half-b.bin': halfB, 'notes/new.txt': textBytes(20_000, 13) });
  archA = path.join(tmp.dir, 'bases', 'A.hxz');
  archB = path.join(tmp.dir, 'bases', 'B.hxz');
  await fs.mkdir(path.dirname(archA), { recursive: true });
  const pa = await hexzJson(['pack', dirA, archA]);
  expect(pa.code, pa.stderr).toBe(0);
  const pb = await hexzJson(['pack', dirB, archB]);
  expect(pb.code, pb.stderr).toBe(0);
  uuidA = pa.json.uuid;
  uuidB = pb.json.uuid;
  expect(uuidA).toMatch(UUID);
  expect(uuidB).toMatch(UUID);
}, 60_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe('pack --base A --base B (two bases, each holding half the data)', () => {
  it('stores little, shows both bases in the chain with their logical bytes, and extracts byte-identically', async () => {
    delta2 = path.join(tmp.dir, 'deltas', 'full.hxz');
    await fs.mkdir(path.dirname(delta2), { recursive: true });
    const r = await hexzJson(['pack', full, delta2, '--base', archA, '--base', archB]);
    expect(r.code, r.stderr).toBe(0);
    // Both halves (6 MiB) are found in the bases; only the new 20 KB text is stored (compressed).
    expect(r.json.baseBytes).toBe(6 * MiB);
    expect(r.json.baseChunks).toBeGreaterThan(20);
    expect(r.json.newBytes).toBe(20_000);
    expect(r.json.storedBytes).toBeLessThan(20_000);
    expect(r.json.archiveBytes).toBeLessThan(64 * KiB);
    expect(r.json.bases.map((b: { uuid: string }) => b.uuid)).toEqual([uuidA, uuidB]);
    expect(r.json.bases.every((b: { direct: boolean }) => b.direct)).toBe(true);

    // info --json: the chain, with the logical bytes each archive holds.
    const info = await hexzJson(['info', delta2]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.json.bases).toHaveLength(2);
    expect(info.json.bases[0]).toMatchObject({ uuid: uuidA, hint: '../bases/A.hxz', direct: true, logicalBytes: 3 * MiB });
    expect(info.json.bases[1]).toMatchObject({ uuid: uuidB, hint: '../bases/B.hxz', direct: true, logicalBytes: 3 * MiB });
    expect(info.json.selfLogicalBytes).toBe(20_000);
    expect(info.json.logicalSize).toBe(6 * MiB + 20_000);

    // info (text): one chain row per archive with its location, UUID, size and logical bytes held.
    const text = (await hexz(['info', delta2])).stdout.toString();
    expect(text).toMatch(/^chain:$/m);
    const lines = text.split('\n');
    const row = (who: string, file: string, uuid: string) => {
      const line = lines.find((l) => l.startsWith(who) && l.includes(file) && l.includes(uuid));
      expect(line, `${who} row for ${file} in:\n${text}`).toBeDefined();
      return line!;
    };
    const rowA = row('base', 'A.hxz', uuidA);
    const rowB = row('base', 'B.hxz', uuidB);
    const rowThis = row('this', 'full.hxz', info.json.uuid);
    expect(rowA).toMatch(/ 3 MiB \(49\.\d%\)\s+unsigned$/);
    expect(rowB).toMatch(/ 3 MiB \(49\.\d%\)\s+unsigned$/);
    expect(rowThis).toMatch(/ 19\.5 KiB \(0\.3%\)\s+unsigned$/);

    // Every file reads back byte-identically through the two bases.
    expect(await extractDigest(delta2, 'two-bases')).toEqual(await treeDigest(full));
    expect((await hexz(['verify', delta2])).code).toBe(0);
  });
});

describe('a base behind https://', () => {
  let https: TestHttpServer;
  let certFile: string;
  const trusted = () => ({ NODE_EXTRA_CA_CERTS: certFile });

  beforeAll(async () => {
    certFile = path.join(tmp.dir, 'cert.pem');
    const keyFile = path.join(tmp.dir, 'tls-key.pem');
    // A self-signed certificate for 127.0.0.1, trusted through NODE_EXTRA_CA_CERTS (as https.test.ts).
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=hexz test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyFile, '-out', certFile,
    ]);
    https = await startHttpServer({ tls: { key: await fs.readFile(keyFile), cert: await fs.readFile(certFile) } });
  }, 60_000);
  afterAll(async () => {
    await https?.stop();
  });

  it('pack --base https://… stores only what is new, reads only the base index, and reads back exact', async () => {
    // The base: both halves, published on the HTTPS server.
    const ab = path.join(tmp.dir, 'ab.hxz');
    const pab = await hexzJson(['pack', full, ab]);
    expect(pab.code, pab.stderr).toBe(0);
    const baseUrl = await https.put('ds/v1.hxz', await fs.readFile(ab));
    const baseSize = (await fs.stat(ab)).size;
    // v2: v1 with an edit in the middle of one half and a new file.
    const v2 = path.join(tmp.dir, 'v2-https');
    await fs.cp(full, v2, { recursive: true });
    const half = await fs.readFile(path.join(v2, 'half-a.bin'));
    await fs.writeFile(path.join(v2, 'half-a.bin'), Buffer.concat([half.subarray(0, MiB), Buffer.from('patched over https'), half.subarray(MiB)]));
    await fs.writeFile(path.join(v2, 'added.txt'), textBytes(10_000, 21));

    https.requests.length = 0;
    const out = path.join(tmp.dir, 'deltas', 'v2-https.hxz');
    const r = await hexzJson(['pack', v2, out, '--base', baseUrl], { env: trusted() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.bases).toEqual([{ url: baseUrl, uuid: pab.json.uuid, direct: true }]);
    expect(r.json.baseBytes).toBeGreaterThan(6 * MiB - 512 * KiB);
    // Stored: the chunk around the edit (at most one max chunk on each side) and the new file.
    expect(r.json.storedBytes).toBeLessThan(2 * 256 * KiB + 10_000);
    expect(r.json.archiveBytes).toBeLessThan(baseSize / 5);
    // Only the base's index went over the wire (its tail read), never its chunk data.
    const indexBytes = baseSize - pab.json.storedBytes - 64;
    expect(r.json.baseIndexBytes).toBeGreaterThan(0);
    expect(r.json.baseIndexBytes).toBeLessThanOrEqual(indexBytes + 64 * KiB);
    const served = https.requests.filter((q) => q.method === 'GET');
    expect(served.length).toBeGreaterThan(0);
    for (const q of served) expect(q.range, `unranged GET ${q.path}`).toMatch(/^bytes=/);

    // The delta records the base by its absolute URL: another host than the delta's own (a local
    // file), so readers follow it only when told to (--base-hosts / HEXZ_BASE_HOSTS).
    const refused = await hexz(['cat', out, 'half-a.bin'], { env: trusted() });
    expect(refused.code, refused.stderr).toBe(ERROR_TABLE.BASE_MISSING.exit);
    expect(refused.stderr).toMatch(/not the archive's own.*--base-hosts/s);
    expect((await hexz(['ls', out], { env: trusted() })).code).toBe(0); // a listing needs no base
    const origin = new URL(baseUrl).origin;
    const trustedAndAllowed = () => ({ ...trusted(), HEXZ_BASE_HOSTS: origin });
    // … and reads back exactly (base over TLS).
    const info = await hexzJson(['info', out], { env: trustedAndAllowed() });
    expect(info.json.bases[0]).toMatchObject({ uuid: pab.json.uuid, hint: baseUrl, url: baseUrl });
    expect(await extractDigest(out, 'https-delta', [], trustedAndAllowed())).toEqual(await treeDigest(v2));
    const cat = await hexz(['cat', out, 'half-a.bin', '--offset', String(MiB - 5), '--length', '30', '--base-hosts', origin], { env: trusted() });
    expect(cat.stdout.toString('latin1')).toBe(Buffer.concat([half.subarray(MiB - 5, MiB), Buffer.from('patched over https'), half.subarray(MiB, MiB + 7)]).toString('latin1'));
    // Without the CA the base cannot be reached: a storage error naming how to trust it.
    const untrusted = await hexz(['cat', out, 'half-a.bin'], { env: { NODE_EXTRA_CA_CERTS: '', HEXZ_BASE_HOSTS: origin } });
    expect(untrusted.code).toBe(ERROR_TABLE.STORAGE_IO.exit);
    expect(untrusted.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
  });
});

describe('a base behind s3://', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['datasets'] });
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it('pack --base s3://… reads only the base index (baseIndexBytes ≤ index + 64 KiB, far below its size)', async () => {
    const env = s3.env;
    const baseKey = 's3://datasets/ds/v1.hxz';
    const p1 = await hexzJson(['pack', full, baseKey], { env });
    expect(p1.code, p1.stderr).toBe(0);
    const baseInfo = await hexzJson(['info', baseKey], { env });
    expect(baseInfo.code, baseInfo.stderr).toBe(0);
    const baseSize: number = baseInfo.json.archiveSize;
    const indexBytes = baseSize - baseInfo.json.storedChunkBytes - 64; // all but the header and the chunk data
    expect(baseSize).toBeGreaterThan(6 * MiB);
    expect(indexBytes).toBeLessThan(64 * KiB);

    const v2 = path.join(tmp.dir, 'v2-s3');
    await fs.cp(full, v2, { recursive: true });
    await fs.writeFile(path.join(v2, 'notes/new.txt'), textBytes(30_000, 31));
    // A local delta of the S3 base…
    const local = path.join(tmp.dir, 'deltas', 'v2-s3-local.hxz');
    const r = await hexzJson(['pack', v2, local, '--base', baseKey], { env });
    // Its hint names the bucket: another host than the local delta's, followed when the user says so.
    const localEnv = { ...env, HEXZ_BASE_HOSTS: 's3://datasets' };
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.baseBytes).toBe(6 * MiB);
    expect(r.json.baseIndexBytes).toBeGreaterThan(0);
    expect(r.json.baseIndexBytes).toBeLessThanOrEqual(indexBytes + 64 * KiB);
    expect(r.json.baseIndexBytes).toBeLessThan(baseSize / 50);
    expect(await extractDigest(local, 's3-local-delta', [], localEnv)).toEqual(await treeDigest(v2));
    // …and one written to S3 next to it: the same reads of the base.
    const remote = await hexzJson(['pack', v2, 's3://datasets/ds/v2.hxz', '--base', baseKey], { env });
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.json.baseIndexBytes).toBeLessThanOrEqual(indexBytes + 64 * KiB);
    expect(remote.json.uploadedBytes).toBeLessThan(64 * KiB);
    expect(await extractDigest('s3://datasets/ds/v2.hxz', 's3-remote-delta', [], env)).toEqual(await treeDigest(v2));
  });
});

describe("another archive in a base's place", () => {
  let base: string;
  let delta: string;
  let baseUuid: string;
  let baseRootHash: string;

  beforeAll(async () => {
    base = path.join(tmp.dir, 'mismatch', 'base.hxz');
    delta = path.join(tmp.dir, 'mismatch', 'delta.hxz');
    await fs.mkdir(path.dirname(base), { recursive: true });
    const b = await hexzJson(['pack', dirA, base]);
    expect(b.code, b.stderr).toBe(0);
    baseUuid = b.json.uuid;
    baseRootHash = b.json.rootHash;
    expect((await hexz(['pack', full, delta, '--base', base])).code).toBe(0);
  });

  it('a different archive (another UUID): exit 6, naming the expected UUID and where it looked', async () => {
    const saved = await fs.readFile(base);
    try {
      const other = await hexzJson(['pack', '-f', dirB, base]);
      expect(other.code, other.stderr).toBe(0);
      for (const args of [['info', delta], ['extract', delta, path.join(tmp.dir, 'extracted', 'never')], ['cat', delta, 'half-a.bin']]) {
        const r = await hexz(args);
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(ERROR_TABLE.BASE_MISMATCH.exit);
        expect(r.code).toBe(6);
        expect(r.stderr).toContain(`expected UUID ${baseUuid}`);
        expect(r.stderr).toContain(`found UUID ${other.json.uuid}`);
        expect(r.stderr).toContain(`looked for at file://${base}`);
        expect(r.stdout.length).toBe(0);
      }
      // A read that fails while decode workers still hold jobs exits with its own code, every time
      // (the workers' replies used to unreference them mid-exit: exit 13, "unsettled top-level await").
      for (let i = 0; i < 8; i++) {
        const r = await hexz(['extract', delta, path.join(tmp.dir, 'extracted', `never-${i}`)]);
        expect(r.code, `run ${i}: ${r.stderr}`).toBe(6);
      }
      const json = await hexzJson(['info', delta]);
      expect(json.json.error).toMatchObject({ code: 'BASE_MISMATCH', context: { expected: baseUuid, actual: other.json.uuid, url: `file://${base}` } });
      // Bases are found when their chunks are first read: extract stops there, and leaves no file.
      expect(await filesUnder(path.join(tmp.dir, 'extracted', 'never'))).toEqual([]);
    } finally {
      await fs.writeFile(base, saved);
    }
    expect((await hexz(['verify', delta])).code).toBe(0);
  });

  it('the same UUID with another index (packed again with a fixed UUID, other content): exit 6, naming the index hash', async () => {
    // The CLI always draws a fresh UUID, so the impostor is made with the library's `uuid` option: a
    // forged or accidentally reused UUID over different content.
    const saved = await fs.readFile(base);
    try {
      const impostor = await pack(dirB, base, { uuid: baseUuid, overwrite: true, threads: 2 });
      expect(impostor.uuid).toBe(baseUuid);
      expect(impostor.rootHash).not.toBe(baseRootHash);
      const r = await hexz(['cat', delta, 'half-a.bin']);
      expect(r.code).toBe(ERROR_TABLE.BASE_MISMATCH.exit);
      expect(r.stderr).toContain(`looked for at file://${base}`);
      expect(r.stderr).toContain(`found index hash ${impostor.rootHash.slice(0, 16)}…`);
      expect(r.stderr).toContain(`expected UUID ${baseUuid}, index hash ${baseRootHash.slice(0, 16)}…`);
      expect(r.stderr).not.toMatch(/found UUID/);
      expect(r.stdout.length).toBe(0);
      // --base-dir pointing at the real base makes it open again.
      const elsewhere = path.join(tmp.dir, 'mismatch-real');
      await fs.mkdir(elsewhere, { recursive: true });
      await fs.writeFile(path.join(elsewhere, 'base.hxz'), saved);
      const ok = await hexz(['--base-dir', elsewhere, 'cat', delta, 'notes/new.txt']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.equals(textBytes(20_000, 13))).toBe(true);
    } finally {
      await fs.writeFile(base, saved);
    }
  });
});

describe('hexz flatten', () => {
  it('makes a self-contained archive: no bases, no difference, byte-identical extract', async () => {
    const flat = path.join(tmp.dir, 'flat', 'full-flat.hxz');
    await fs.mkdir(path.dirname(flat), { recursive: true });
    const r = await hexzJson(['flatten', delta2, flat]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ files: 3, logicalBytes: 6 * MiB + 20_000 });
    const info = await hexzJson(['info', flat]);
    expect(info.json.bases).toEqual([]);
    expect(info.json.logicalSize).toBe(6 * MiB + 20_000);
    expect(info.json.selfLogicalBytes).toBe(6 * MiB + 20_000);
    expect((await hexz(['info', flat])).stdout.toString()).not.toMatch(/^chain:$/m);

    const diff = await hexzJson(['diff', delta2, flat]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json).toMatchObject({ added: [], removed: [], modified: [], renamed: [], comparison: { method: 'chunk-ids' } });
    expect(diff.json.unchanged).toBeGreaterThanOrEqual(3);
    expect(diff.json.chunks).toMatchObject({ comparable: true, onlyABytes: 0, onlyBBytes: 0 });
    const diffText = (await hexz(['diff', delta2, flat])).stdout.toString();
    expect(diffText).toMatch(/^0 added, 0 removed, 0 modified, 0 renamed, \d+ unchanged$/m);
    expect(diffText).not.toMatch(/^[ADMR] /m);

    // Alone in another directory (no base next to it) it still reads everything.
    const alone = path.join(tmp.dir, 'alone', 'flat.hxz');
    await fs.mkdir(path.dirname(alone), { recursive: true });
    await fs.copyFile(flat, alone);
    expect(await extractDigest(alone, 'flat')).toEqual(await treeDigest(full));
    expect(await sha256File(path.join(tmp.dir, 'extracted', 'flat', 'half-b.bin'))).toBe(await sha256File(path.join(full, 'half-b.bin')));
    expect((await hexz(['verify', alone])).code).toBe(0);
  });

  it('flattens an encrypted delta with the key: still encrypted, no bases, same content; refused without the key', async () => {
    const keyFile = path.join(tmp.dir, 'flat.key');
    expect((await hexz(['keygen', keyFile])).code).toBe(0);
    const k = ['--key-file', keyFile];
    const encBase = path.join(tmp.dir, 'enc', 'A.hxz');
    const encDelta = path.join(tmp.dir, 'enc', 'full.hxz');
    const encFlat = path.join(tmp.dir, 'enc-flat', 'full.hxz');
    await fs.mkdir(path.dirname(encBase), { recursive: true });
    expect((await hexz([...k, 'pack', '--encrypt', dirA, encBase])).code).toBe(0);
    const d = await hexzJson([...k, 'pack', full, encDelta, '--base', encBase]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.json).toMatchObject({ encrypted: true, baseBytes: 3 * MiB });

    const noKey = await hexz(['flatten', encDelta, encFlat]);
    expect(noKey.code).toBe(ERROR_TABLE.KEY_REQUIRED.exit);
    expect(noKey.stderr).toMatch(/is encrypted: give --key-file/);
    await expect(fs.stat(encFlat)).rejects.toThrow();

    const f = await hexzJson([...k, 'flatten', encDelta, encFlat]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.logicalBytes).toBe(6 * MiB + 20_000);
    const bytes = await fs.readFile(encFlat);
    expect(bytes.includes(Buffer.from('notes/new.txt'))).toBe(false);
    expect(bytes.includes(textBytes(20_000, 13).subarray(0, 64))).toBe(false);
    const info = await hexzJson([...k, 'info', encFlat]);
    expect(info.json).toMatchObject({ encrypted: true, keyDerivation: 'key', bases: [], logicalSize: 6 * MiB + 20_000 });
    expect((await hexz(['ls', encFlat])).code).toBe(ERROR_TABLE.KEY_REQUIRED.exit);

    const diff = await hexzJson([...k, 'diff', encDelta, encFlat]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json).toMatchObject({ added: [], removed: [], modified: [], renamed: [], comparison: { method: 'chunk-ids' }, chunks: { comparable: true, onlyABytes: 0, onlyBBytes: 0 } });
    expect(await extractDigest(encFlat, 'enc-flat', k)).toEqual(await treeDigest(full));
    expect((await hexz([...k, 'verify', encFlat])).code).toBe(0);
  });
});
