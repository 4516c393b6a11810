/**
 * An archive replaced under a running command (a new version uploaded to the same URL): the CLI, like
 * the gateway, reopens it once and reads the new version — unless `cat`/`extract` have already written
 * bytes of the old one, in which case the typed error stands (exit 9). Never mixed bytes.
 *
 * A real HTTP server serves the archives; its request hook replaces the object at a precise point
 * (right after the client opened it, or once the client is deep into a file), the way an upload would.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hexz } from '../helpers/cli.js';
import { randomBytesSeeded, treeDigest, writeTree } from '../helpers/data.js';
import { startHttpServer, type LoggedRequest, type TestHttpServer } from '../helpers/http-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let http: TestHttpServer;
/** Directory trees v1/v2 whose file table is larger than the 64 KiB read at open (so listing reads pages). */
let treeV1: string;
let treeV2: string;
let dirV1: Buffer;
let dirV2: Buffer;
/** Single-file archives of 48 MiB (many range requests to stream). */
const bigV1 = randomBytesSeeded(48 * MiB, 1);
let fileV1: Buffer;
let fileV2: Buffer;

/** File names that do not compress (the file table is stored compressed), so the table outgrows the open read. */
const NAME = (i: number) => `${i}-${randomBytesSeeded(24, 1000 + i).toString('hex')}.txt`;
const FILES = 4000;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-reopen-');
  http = await startHttpServer();
  const v1: Record<string, string> = {};
  const v2: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) {
    v1[NAME(i)] = `version 1 of ${i}\n`;
    v2[NAME(i)] = `version 2 of ${i}\n`;
  }
  v2['added-in-v2.txt'] = 'new\n';
  treeV1 = path.join(tmp.dir, 'tree-v1');
  treeV2 = path.join(tmp.dir, 'tree-v2');
  await writeTree(treeV1, v1);
  await writeTree(treeV2, v2);
  const pack = async (input: string, name: string) => {
    const out = path.join(tmp.dir, name);
    const r = await hexz(['pack', input, out]);
    expect(r.code, r.stderr).toBe(0);
    return fs.readFile(out);
  };
  dirV1 = await pack(treeV1, 'dir-v1.hxz');
  dirV2 = await pack(treeV2, 'dir-v2.hxz');
  await fs.writeFile(path.join(tmp.dir, 'big-v1.bin'), bigV1);
  await fs.writeFile(path.join(tmp.dir, 'big-v2.bin'), randomBytesSeeded(48 * MiB, 2));
  fileV1 = await pack(path.join(tmp.dir, 'big-v1.bin'), 'big-v1.hxz');
  fileV2 = await pack(path.join(tmp.dir, 'big-v2.bin'), 'big-v2.hxz');
}, 120_000);

afterEach(() => http.reset());
afterAll(async () => {
  await http?.stop();
  await tmp?.cleanup();
});

/** Serve `first` under `name`; replace it with `second` (once) just before the first request `when` matches. */
async function serveThenReplace(name: string, first: Buffer, second: Buffer, when: (r: LoggedRequest) => boolean): Promise<{ url: string; replaced: () => boolean }> {
  const url = await http.put(name, first);
  let replaced = false;
  http.onRequest = async (r) => {
    if (!replaced && r.path === `/${name}` && when(r)) {
      replaced = true;
      await http.put(name, second);
    }
  };
  return { url, replaced: () => replaced };
}

/** Any read after the suffix read that opens the archive. */
const afterOpen = (r: LoggedRequest) => r.method === 'GET' && r.range !== undefined && !r.range.startsWith('bytes=-');

describe('the CLI reopens an archive replaced while it reads it', () => {
  it('ls: replaced right after the open → reopened once, lists the new version', async () => {
    const { url, replaced } = await serveThenReplace('ls.hxz', dirV1, dirV2, afterOpen);
    const r = await hexz(['ls', url]);
    expect(replaced()).toBe(true);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/changed while it was being read; reopening it/);
    const names = r.stdout.toString().trim().split('\n');
    expect(names).toHaveLength(FILES + 1);
    expect(names).toContain('added-in-v2.txt');
  });

  it('cat: replaced before the first byte went out → reopened, prints the new version', async () => {
    const { url, replaced } = await serveThenReplace('cat.hxz', dirV1, dirV2, afterOpen);
    const r = await hexz(['cat', url, NAME(7)]);
    expect(replaced()).toBe(true);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe('version 2 of 7\n');
  });

  it('cat: replaced after bytes went out → ARCHIVE_CHANGED (exit 9), stdout holds only bytes of the old version', async () => {
    // Deep into the file: its first megabytes have been written to stdout by then.
    const deep = (r: LoggedRequest) => afterOpen(r) && Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1]) >= 16 * MiB;
    const { url, replaced } = await serveThenReplace('cat-late.hxz', fileV1, fileV2, deep);
    const r = await hexz(['cat', url, 'disk']);
    expect(replaced()).toBe(true);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/changed while it was being read/);
    expect(r.stderr).not.toMatch(/reopening/);
    expect(r.stdout.byteLength).toBeGreaterThan(0);
    expect(r.stdout.byteLength).toBeLessThan(bigV1.byteLength);
    expect(r.stdout.equals(bigV1.subarray(0, r.stdout.byteLength))).toBe(true);
  });

  it('extract: replaced before any file was written → reopened, extracts the new version', async () => {
    const { url, replaced } = await serveThenReplace('extract.hxz', dirV1, dirV2, afterOpen);
    const dest = path.join(tmp.dir, 'extracted');
    const r = await hexz(['extract', url, dest]);
    expect(replaced()).toBe(true);
    expect(r.code, r.stderr).toBe(0);
    expect(await treeDigest(dest)).toEqual(await treeDigest(treeV2));
  });

  it('verify: a replaced archive is reopened and verified, never reported as corrupt', async () => {
    const { url, replaced } = await serveThenReplace('verify.hxz', dirV1, dirV2, afterOpen);
    const r = await hexz(['verify', url]);
    expect(replaced()).toBe(true);
    expect(r.code, r.stdout.toString() + r.stderr).toBe(0);
    expect(r.stdout.toString()).toMatch(new RegExp(`^OK: ${FILES + 1} files`));
  });

  it('a second replacement while reading the reopened version is the typed error (exit 9)', async () => {
    const url = await http.put('twice.hxz', dirV1);
    let n = 0;
    http.onRequest = async (r) => {
      if (r.path === '/twice.hxz' && afterOpen(r) && n < 2) await http.put('twice.hxz', n++ % 2 ? dirV1 : dirV2);
    };
    const r = await hexz(['ls', url]);
    expect(n).toBe(2);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/reopening it/);
    expect(r.stderr).toMatch(/hexz: error: .*changed while it was being read/);
  });
});
