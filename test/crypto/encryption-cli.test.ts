/**
 * Encrypted archives from the command line, as a user runs them (child processes): a tampered byte in
 * each structure is caught and named with the documented exit code and no plaintext out; chunk ids
 * are keyed (the same data plain and encrypted shares no id); `hexz serve` decrypts with keys from
 * `--key-dir` or the global `--key-file` fallback; key files readable by group or others are refused.
 */
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { readKeyFile } from '@hexz/src/crypto/key-files.js';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { TRAILER_SIZE } from '@hexz/src/format/constants.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { spawnServe } from '../helpers/serve.js';
import { hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const SECRET_NAME = 'secret-plans.txt';
const SECRET_LINE = 'the eagle lands at midnight';
/** Several chunks of text nobody may read without the key. */
const SECRET = Buffer.from(`${SECRET_LINE}\n`.repeat(12_000));
let tmp: { dir: string; cleanup: () => Promise<void> };
let input: string;
let keyFile: string;
let otherKeyFile: string;
/** `hexz pack --encrypt` of `input` with `keyFile`. */
let encrypted: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-crypto-cli-');
  input = path.join(tmp.dir, 'in');
  await writeTree(input, {
    [SECRET_NAME]: SECRET,
    'data/random.bin': randomBytesSeeded(2 * MiB, 41),
    'data/text.txt': textBytes(MiB, 42),
  });
  keyFile = path.join(tmp.dir, 'team.key');
  otherKeyFile = path.join(tmp.dir, 'other.key');
  expect((await hexz(['keygen', keyFile])).code).toBe(0);
  expect((await hexz(['keygen', otherKeyFile])).code).toBe(0);
  encrypted = path.join(tmp.dir, 'enc.hxz');
  const r = await hexzJson(['--key-file', keyFile, 'pack', '--encrypt', input, encrypted]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.json.encrypted).toBe(true);
}, 60_000);

afterAll(async () => {
  await tmp?.cleanup();
});

async function keyOf(file: string) {
  return { kind: 'key' as const, key: await readKeyFile(file) };
}

function noPlaintext(out: Buffer): void {
  expect(out.includes(Buffer.from('eagle'))).toBe(false);
  expect(out.includes(Buffer.from(SECRET_LINE.slice(0, 12)))).toBe(false);
}

describe('a tampered encrypted archive', () => {
  /** Offsets of one byte inside each structure the secret file's read goes through. */
  let targets: Array<{ structure: string; at: number; code: keyof typeof ERROR_TABLE; message: RegExp }>;
  let good: Buffer;
  const tamperedFile = (structure: string) => path.join(tmp.dir, `tampered-${structure.replace(/ /g, '-')}.hxz`);

  beforeAll(async () => {
    good = await fs.readFile(encrypted);
    const a = await openArchive(encrypted, { key: await keyOf(keyFile), cache: new BlockCache() });
    const e = await a.entry(SECRET_NAME);
    const first = (await a.fileRefs(e).next()).value!;
    const pages = a.root.chunkPages;
    // The chunk-index page holding the secret file's first reference, and the file table (one page).
    const page = pages.findIndex((p, i) => p.firstLogical <= e.logical && (i + 1 === pages.length || pages[i + 1].firstLogical > e.logical));
    expect(page).toBeGreaterThanOrEqual(0);
    expect(a.root.filePages).toHaveLength(1);
    const size = a.storageStat.size;
    targets = [
      // A chunk has no parent hash over its sealed bytes: GCM catches it.
      { structure: 'chunk', at: first.offset + 20, code: 'AUTH_FAILED', message: /chunk failed authentication/ },
      // Index structures: the hash their parent holds over the sealed frame catches them first.
      { structure: 'chunk-index page', at: pages[page].offset + 20, code: 'CORRUPT', message: /corrupt chunk-index page: hash mismatch/ },
      { structure: 'file-table page', at: a.root.filePages[0].offset + 20, code: 'CORRUPT', message: /corrupt file-table page: hash mismatch/ },
      { structure: 'root', at: a.trailer.rootOffset + 20, code: 'CORRUPT', message: /corrupt root: hash mismatch/ },
      // The trailer's UUID (past its magic, version and size): its checksum catches it.
      { structure: 'trailer', at: size - TRAILER_SIZE + 20, code: 'CORRUPT', message: /corrupt trailer: checksum mismatch/ },
    ];
    expect(first.offset).toBeGreaterThanOrEqual(64);
    await a.close();
    for (const t of targets) {
      const bad = Buffer.from(good);
      bad[t.at] ^= 0x01;
      await fs.writeFile(tamperedFile(t.structure), bad);
    }
  });

  it('is refused for every structure with exit 4 (CORRUPT / AUTH_FAILED), naming it, with nothing on stdout', async () => {
    expect(ERROR_TABLE.CORRUPT.exit).toBe(4);
    expect(ERROR_TABLE.AUTH_FAILED.exit).toBe(4);
    for (const t of targets) {
      const file = tamperedFile(t.structure);
      const r = await hexz(['--key-file', keyFile, 'cat', file, SECRET_NAME]);
      expect(r.code, `${t.structure}: ${r.stderr}`).toBe(ERROR_TABLE[t.code].exit);
      expect(r.stderr, t.structure).toMatch(t.message);
      expect(r.stderr).toMatch(/^hexz: error: /);
      expect(r.stdout.length, t.structure).toBe(0);
      noPlaintext(r.stdout);
      noPlaintext(Buffer.from(r.stderr));
      // --json: the typed error, naming the structure in its context; still no plaintext.
      const j = await hexzJson(['--key-file', keyFile, 'cat', file, SECRET_NAME]);
      expect(j.code).toBe(ERROR_TABLE[t.code].exit);
      expect(j.json.error.code, t.structure).toBe(t.code);
      expect(String(j.json.error.context.structure), t.structure).toContain(t.structure);
      noPlaintext(Buffer.from(JSON.stringify(j.json)));
    }
  });

  it('the same tampered files fail `hexz verify` (exit 4) too', async () => {
    for (const t of targets) {
      const r = await hexz(['--key-file', keyFile, 'verify', tamperedFile(t.structure)]);
      expect(r.code, `${t.structure}: ${r.stdout}${r.stderr}`).toBe(4);
      expect(r.stdout.toString() + r.stderr, t.structure).toContain(t.structure);
      noPlaintext(r.stdout);
    }
  });

  it('a tampered header is not read by readers (documented) but `hexz verify` reports it', async () => {
    const bad = Buffer.from(good);
    bad[20] ^= 0x01; // inside the header's copy of the UUID
    const file = path.join(tmp.dir, 'tampered-header.hxz');
    await fs.writeFile(file, bad);
    const cat = await hexz(['--key-file', keyFile, 'cat', file, SECRET_NAME]);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout.equals(SECRET)).toBe(true);
    const v = await hexz(['--key-file', keyFile, 'verify', file]);
    expect(v.code).toBe(4);
    expect(v.stdout.toString() + v.stderr).toMatch(/header/);
  });
});

describe('keyed chunk ids', () => {
  it('the same data packed plain and encrypted shares no chunk id; diff says the ids are not comparable', async () => {
    const plain = path.join(tmp.dir, 'plain.hxz');
    expect((await hexz(['pack', input, plain])).code).toBe(0);
    const otherEnc = path.join(tmp.dir, 'enc-other-key.hxz');
    expect((await hexz(['--key-file', otherKeyFile, 'pack', '--encrypt', input, otherEnc])).code).toBe(0);
    const again = path.join(tmp.dir, 'enc-again.hxz');
    expect((await hexz(['--key-file', keyFile, 'pack', '--encrypt', input, again])).code).toBe(0);

    const ids = async (file: string, keyPath?: string): Promise<string[]> => {
      const a = await openArchive(file, { key: keyPath ? await keyOf(keyPath) : undefined, cache: new BlockCache() });
      const out: string[] = [];
      for await (const r of a.refsIn(0, a.root.logicalSize)) if (!r.hole) out.push(Buffer.from(r.id).toString('hex'));
      await a.close();
      return out;
    };
    const plainIds = await ids(plain);
    const encIds = await ids(encrypted, keyFile);
    const otherIds = await ids(otherEnc, otherKeyFile);
    const againIds = await ids(again, keyFile);
    // Same chunking, so the same number of references and the same boundaries…
    expect(plainIds.length).toBeGreaterThan(30);
    expect(encIds).toHaveLength(plainIds.length);
    expect(otherIds).toHaveLength(plainIds.length);
    // …but no id in common: ids of an encrypted archive are keyed hashes, not plaintext hashes.
    const plainSet = new Set(plainIds);
    expect(encIds.filter((id) => plainSet.has(id))).toEqual([]);
    expect(otherIds.filter((id) => plainSet.has(id))).toEqual([]);
    expect(otherIds.filter((id) => new Set(encIds).has(id))).toEqual([]);
    // The same key gives the same ids (what makes deltas of encrypted bases small).
    expect(againIds).toEqual(encIds);

    // diff (CLI): no path changed, but chunk ids cannot be compared, so files were compared by content.
    const d = await hexzJson(['--key-file', keyFile, 'diff', plain, encrypted]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.json).toMatchObject({ added: [], removed: [], modified: [], renamed: [], comparison: { method: 'content' } });
    expect(d.json.chunks).toMatchObject({ comparable: false, sharedBytes: null, onlyAChunks: new Set(plainIds).size, onlyBChunks: new Set(encIds).size });
    const same = await hexzJson(['--key-file', keyFile, 'diff', encrypted, again]);
    expect(same.json.chunks).toMatchObject({ comparable: true, onlyABytes: 0, onlyBBytes: 0 });
  });
});

describe('hexz serve with keys (child process)', () => {
  let root: string;
  let keyDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    root = path.join(tmp.dir, 'archives');
    await fs.mkdir(path.join(root, 'team'), { recursive: true });
    await fs.copyFile(encrypted, path.join(root, 'team', 'ds.hxz'));
    expect((await hexz(['--key-file', otherKeyFile, 'pack', '--encrypt', input, path.join(root, 'other.hxz')])).code).toBe(0);
    keyDir = path.join(tmp.dir, 'keys');
    await fs.mkdir(keyDir);
    await fs.writeFile(path.join(keyDir, 'team.key'), await fs.readFile(keyFile), { mode: 0o600 });
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
    }
  });

  /** `hexz [GLOBAL…] serve --storage ROOT --port 0 ARGS…`; resolves with its URL once it listens. */
  async function serve(args: string[], globals: string[] = []): Promise<string> {
    const s = await spawnServe(['--storage', root, '--port', '0', ...args], { globals, env: { HEXZ_KEY_FILE: '', HEXZ_KEY_DIR: '' } });
    children.push(s.child);
    return s.url;
  }

  async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
    const res = await fetch(url, { headers });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  }

  it('--key-dir: the archive its key covers is served decrypted, byte-exact (whole and ranged); another is 403', async () => {
    const url = await serve(['--key-dir', keyDir]);
    const whole = await get(`${url}/v1/archives/team/ds/files/${SECRET_NAME}`);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(SECRET)).toBe(true);
    const ranged = await get(`${url}/v1/archives/team/ds/files/data/random.bin`, { range: 'bytes=1000000-1300000' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1000000-1300000/${2 * MiB}`);
    expect(ranged.body.equals(randomBytesSeeded(2 * MiB, 41).subarray(1_000_000, 1_300_001))).toBe(true);
    const info = await get(`${url}/v1/archives/team/ds`);
    expect(JSON.parse(info.body.toString())).toMatchObject({ encrypted: true, keyDerivation: 'key' });
    // No key for `other`: 403 KEY_REQUIRED, and no plaintext.
    const other = await get(`${url}/v1/archives/other/files/${SECRET_NAME}`);
    expect(other.status).toBe(ERROR_TABLE.KEY_REQUIRED.http);
    expect(JSON.parse(other.body.toString()).error.code).toBe('KEY_REQUIRED');
    noPlaintext(other.body);
  });

  it('the global --key-file is the fallback for archives the key directory does not cover (docs/gateway.md)', async () => {
    const url = await serve(['--key-dir', keyDir], ['--key-file', otherKeyFile]);
    const other = await get(`${url}/v1/archives/other/files/${SECRET_NAME}`);
    expect(other.status).toBe(200);
    expect(other.body.equals(SECRET)).toBe(true);
    // The directory's key still wins for the names it covers.
    const team = await get(`${url}/v1/archives/team/ds/files/${SECRET_NAME}`);
    expect(team.status).toBe(200);
    expect(team.body.equals(SECRET)).toBe(true);
    // Only the global key (no directory): it opens what it fits; the other archive is a wrong key (403).
    const onlyGlobal = await serve([], ['--key-file', keyFile]);
    const ok = await get(`${onlyGlobal}/v1/archives/team/ds/files/data/text.txt`);
    expect(ok.status).toBe(200);
    expect(ok.body.equals(textBytes(MiB, 42))).toBe(true);
    const wrong = await get(`${onlyGlobal}/v1/archives/other/files/${SECRET_NAME}`);
    expect(wrong.status).toBe(ERROR_TABLE.WRONG_KEY.http);
    expect(JSON.parse(wrong.body.toString()).error.code).toBe('WRONG_KEY');
    noPlaintext(wrong.body);
  });

  it('a key file in --key-dir readable by group or others stops the gateway at start (exit 22, naming it)', async () => {
    const looseDir = path.join(tmp.dir, 'loose-keys');
    await fs.mkdir(looseDir);
    const loose = path.join(looseDir, 'team.key');
    await fs.writeFile(loose, await fs.readFile(keyFile));
    await fs.chmod(loose, 0o644);
    const r = await hexz(['serve', '--storage', root, '--port', '0', '--key-dir', looseDir]);
    expect(r.code).toBe(ERROR_TABLE.PERMISSION.exit);
    expect(r.stderr).toContain(loose);
    expect(r.stderr).toMatch(/chmod 600/);
  });
});

describe('key files readable by group or others', () => {
  it.each(['644', '640', '604'])('mode %s is refused with exit 22 and a message naming the file, before anything is read or written', async (octal) => {
    const mode = parseInt(octal, 8);
    expect(ERROR_TABLE.PERMISSION.exit).toBe(22);
    const loose = path.join(tmp.dir, `loose-${mode.toString(8)}.key`);
    await fs.writeFile(loose, await fs.readFile(keyFile));
    await fs.chmod(loose, mode);
    for (const args of [
      ['ls', encrypted],
      ['cat', encrypted, SECRET_NAME],
      ['pack', '--encrypt', input, path.join(tmp.dir, `never-${mode.toString(8)}.hxz`)],
    ]) {
      const r = await hexz(['--key-file', loose, ...args]);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(22);
      expect(r.stderr).toContain(`key file ${loose} is accessible by group or others (mode ${mode.toString(8)})`);
      expect(r.stderr).toContain(`chmod 600 ${loose}`);
      noPlaintext(r.stdout);
    }
    await expect(fs.stat(path.join(tmp.dir, `never-${mode.toString(8)}.hxz`))).rejects.toThrow();
    // Through the environment the same.
    const viaEnv = await hexz(['ls', encrypted], { env: { HEXZ_KEY_FILE: loose } });
    expect(viaEnv.code).toBe(22);
    expect(viaEnv.stderr).toContain(loose);
    // --json: the typed error with the file in its context.
    const j = await hexzJson(['--key-file', loose, 'ls', encrypted]);
    expect(j.json.error).toMatchObject({ code: 'PERMISSION', context: { path: loose } });
    // chmod 600 (or stricter) and it works.
    await fs.chmod(loose, 0o400);
    const ok = await hexz(['--key-file', loose, 'cat', encrypted, SECRET_NAME]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.equals(SECRET)).toBe(true);
  });
});
