/**
 * The project's own fuzzing of semantic lies (test/helpers/hostile.ts): archives whose every hash is
 * valid but whose meaning is hostile — allocation bombs, ranges outside the chunk index, overlapping
 * entries, a path repeated across pages, symlink targets no file system holds, base hints that point
 * elsewhere, thousands of bases. Each case goes through every front end — the CLI (ls, cat, extract,
 * verify), the gateway (listing and file) and a FUSE mount — which must refuse with the case's typed
 * error, return no bytes of a refused file, stay under a memory bound, and never contact a base
 * the read did not need (an HTTP server watches the hint).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '@hexz/src/errors.js';
import { hexz, run } from '../helpers/cli.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, startMount } from '../fuse/mount-helper.js';
import { hostileCases, type HostileCase } from '../helpers/hostile.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { spawnServe, stopAllServes, type ServeProcess } from '../helpers/serve.js';
import { makeTempDir } from '../helpers/tmp.js';

/** Peak RSS any one command may reach on any case (the bombs declare 1 GiB). */
const RSS_LIMIT_MIB = 300;
const REPORT_RSS = fileURLToPath(new URL('../helpers/report-rss.mjs', import.meta.url));

let tmp: { dir: string; cleanup: () => Promise<void> };
let watch: TestHttpServer;
let cases: HostileCase[];

beforeAll(async () => {
  tmp = await makeTempDir('hexz-hostile-fuzz-');
  watch = await startHttpServer();
  cases = await hostileCases(tmp.dir, `${watch.url}/base.hxz`);
  await fs.mkdir(path.join(tmp.dir, 'store'));
  for (const c of cases) await fs.writeFile(path.join(tmp.dir, 'store', `${c.name}.hxz`), c.bytes);
}, 120_000);
afterAll(async () => {
  await stopAllServes();
  await watch?.stop();
  await tmp?.cleanup();
});

/** Run the CLI with its peak RSS recorded. */
async function measured(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string; rssMiB: number }> {
  const rssFile = path.join(tmp.dir, `rss-${Math.random().toString(36).slice(2)}`);
  const r = await hexz(['--json', ...args], { env: { NODE_OPTIONS: `--import ${REPORT_RSS}`, HEXZ_TEST_RSS_FILE: rssFile } });
  const kib = Number(await fs.readFile(rssFile, 'utf8').catch(() => 'NaN'));
  await fs.rm(rssFile, { force: true });
  return { ...r, rssMiB: kib / 1024 };
}

/** What each front end must answer for a case: `ok`, or the case's code. */
function expected(c: HostileCase): { list: string; read: string; extract: string; verify: string } {
  const refuse = c.code;
  switch (c.scope) {
    case 'open':
    case 'list':
      return { list: refuse, read: refuse, extract: refuse, verify: refuse };
    case 'content':
      return { list: 'ok', read: refuse, extract: refuse, verify: refuse };
    case 'bases':
      return { list: 'ok', read: 'ok', extract: 'ok', verify: refuse };
    case 'extract':
      return { list: 'ok', read: 'ok', extract: refuse, verify: 'ok' };
  }
}

function outcome(r: { code: number; stdout: Buffer }, json = true): string {
  if (r.code === 0) return 'ok';
  if (!json) return `exit ${r.code}`;
  try {
    return (JSON.parse(r.stdout.toString()) as { error?: { code: string } }).error?.code ?? `exit ${r.code}`;
  } catch {
    return `exit ${r.code}`;
  }
}

describe('the CLI refuses every hostile case with its typed error, within bounded memory', () => {
  it.each([0, 1, 2])('cases, part %i', async (part) => {
    for (const c of cases.filter((_, i) => i % 3 === part)) {
      const f = path.join(tmp.dir, 'store', `${c.name}.hxz`);
      const want = expected(c);
      const file = c.file ?? 'a.txt';
      const before = watch.requests.length;

      const ls = await measured(['ls', '-r', f]);
      expect(outcome(ls), `${c.name}: ls ${ls.stderr}`).toBe(want.list);
      // cat without --json: its stdout is the file, which must be empty when refused.
      const cat = await hexz(['cat', f, file], { env: { NODE_OPTIONS: `--import ${REPORT_RSS}` } });
      expect(cat.code, `${c.name}: cat ${cat.stderr}`).toBe(want.read === 'ok' ? 0 : ERROR_TABLE[want.read as keyof typeof ERROR_TABLE].exit);
      if (want.read !== 'ok') expect(cat.stdout.length, `${c.name}: cat printed bytes of a refused file`).toBe(0);
      const dest = path.join(tmp.dir, 'out', c.name);
      const ex = await measured(['extract', f, dest]);
      expect(outcome(ex), `${c.name}: extract ${ex.stderr}`).toBe(want.extract);
      const ver = await measured(['verify', f]);
      expect(ver.code === 0 ? 'ok' : ver.code, `${c.name}: verify ${ver.stderr}`).toBe(want.verify === 'ok' ? 'ok' : ERROR_TABLE[want.verify as keyof typeof ERROR_TABLE].exit);
      for (const [what, r] of [['ls', ls], ['extract', ex], ['verify', ver]] as const) {
        expect(r.stderr, `${c.name}: ${what} failed untyped`).not.toMatch(/INTERNAL|internal error/);
        // One prefix, naming the structure that is corrupt (never "corrupt chunk: corrupt chunk").
        expect(r.stderr, `${c.name}: ${what}`).not.toMatch(/corrupt [^:]+: corrupt /);
        if (c.name.startsWith('root-') && r.code !== 0) expect(r.stderr, `${c.name}: ${what}`).toMatch(/corrupt root: /);
        expect(r.rssMiB, `${c.name}: ${what} peak RSS`).toBeLessThan(RSS_LIMIT_MIB);
      }
      // No command followed a hint off the archive's host (the watched server is another origin).
      expect(watch.requests.length - before, `${c.name}: a base hint was contacted`).toBe(0);
    }
  }, 240_000);
});

describe('the gateway answers every hostile case with its typed status, within bounded memory', () => {
  let gw: ServeProcess;
  beforeAll(async () => {
    gw = await spawnServe(['--port', '0', '--storage', path.join(tmp.dir, 'store'), '--workers', '1'], { env: { NODE_OPTIONS: '' } });
  }, 60_000);

  it('lists and reads every case, three at a time, with the error table status and no bytes of a refused file', async () => {
    const one = async (c: HostileCase) => {
      // The gateway checks a thin archive's whole chain when it opens it (inside its storage root):
      // an archive whose bases are missing is refused on every route, and no hint is followed outside.
      const want = c.scope === 'bases' ? { list: c.code, read: c.code } : c.scope === 'extract' ? { list: 'ok', read: 'ok' } : expected(c);
      const status = (code: string) => (code === 'ok' ? [200] : [ERROR_TABLE[code as keyof typeof ERROR_TABLE].http]);
      const tree = await fetch(`${gw.url}/v1/archives/${c.name}/tree/?recursive=1`);
      const treeBody = await tree.text();
      expect(status(want.list), `${c.name}: tree ${tree.status} ${treeBody.slice(0, 300)}`).toContain(tree.status);
      const file = await fetch(`${gw.url}/v1/archives/${c.name}/files/${c.file ?? 'a.txt'}`);
      const body = Buffer.from(await file.arrayBuffer());
      expect(status(want.read), `${c.name}: file ${file.status} ${body.subarray(0, 300).toString()}`).toContain(file.status);
      if (want.read !== 'ok') expect(JSON.parse(body.toString()).error.code, c.name).toBe(want.read);
    };
    const before = watch.requests.length;
    for (let i = 0; i < cases.length; i += 3) await Promise.all(cases.slice(i, i + 3).map(one));
    expect(watch.requests.length - before, 'the gateway contacted a base hint').toBe(0);
    const status = await fs.readFile(`/proc/${gw.child.pid}/status`, 'utf8');
    const hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
    expect(hwmKiB / 1024, 'gateway peak RSS').toBeLessThan(RSS_LIMIT_MIB);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  }, 240_000);

  it('opening 5,000 corrupt archives leaves the descriptor count flat', async () => {
    const store = path.join(tmp.dir, 'many');
    await fs.mkdir(store);
    const bad = ['file-page-declares-1GiB', 'chunk-page-declares-1GiB', 'entry-past-chunk-index', 'symlink-target-nul'];
    const N = 5000;
    for (let i = 0; i < N; i++) await fs.link(path.join(tmp.dir, 'store', `${bad[i % bad.length]}.hxz`), path.join(store, `a${i}.hxz`));
    // Archives that open stay in the registry's LRU (64 here): beyond it, every descriptor is given back.
    const many = await spawnServe(['--port', '0', '--storage', store, '--workers', '1'], { env: { NODE_OPTIONS: '', HEXZ_MAX_OPEN_ARCHIVES: '64' } });
    const fds = async () => (await fs.readdir(`/proc/${many.child.pid}/fd`)).length;
    const get = async (i: number) => {
      const r = await fetch(`${many.url}/v1/archives/a${i}/files/a.txt`);
      await r.arrayBuffer();
      expect(r.status, `a${i}`).toBe(500);
    };
    for (let i = 0; i < 200; i++) await get(i);
    const warm = await fds();
    for (let i = 200; i < N; i += 4) await Promise.all([i, i + 1, i + 2, i + 3].filter((k) => k < N).map(get));
    // A few descriptors of slack (sockets, a lazily opened log), not one per archive.
    expect(await fds()).toBeLessThan(warm + 16);
    many.child.kill('SIGTERM');
  }, 240_000);
});

describe('a base that an HTTP server does not have', () => {
  it('is BASE_MISSING (exit 6), not "archive not found", for every command that needs it', async () => {
    const src = path.join(tmp.dir, 'hostile-source.hxz');
    const deltaDir = path.join(tmp.dir, 'http-delta-in');
    await fs.mkdir(deltaDir, { recursive: true });
    await fs.writeFile(path.join(deltaDir, 'new.txt'), 'only in the delta');
    const delta = path.join(tmp.dir, 'http-delta.hxz');
    expect((await hexz(['pack', deltaDir, delta, '--base', src])).code).toBe(0);
    // Only the delta is published: its base's hint resolves on the server, which answers 404.
    const url = await watch.put('published/delta.hxz', await fs.readFile(delta));
    expect((await hexz(['ls', url])).code).toBe(0);
    const ver = await hexz(['verify', url]);
    expect(ver.code, ver.stderr).toBe(ERROR_TABLE.BASE_MISSING.exit);
    expect(ver.stderr).toMatch(/is missing: looked at http:\/\/.*hostile-source\.hxz/);
  }, 60_000);
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('a mount refuses what the CLI refuses: EIO, never bytes', () => {
  it('mounts every case that opens, and reads its file through the kernel', async () => {
    for (const c of cases.filter((x) => x.scope !== 'open')) {
      const mountpoint = path.join(tmp.dir, 'mnt', c.name);
      await fs.mkdir(mountpoint, { recursive: true });
      let m: Awaited<ReturnType<typeof startMount>> | undefined;
      try {
        m = await startMount(path.join(tmp.dir, 'store', `${c.name}.hxz`), mountpoint);
      } catch (err) {
        // A mount that refuses to start must do so with the typed message (listing refused up front).
        expect(expected(c).list, `${c.name}: ${(err as Error).message}`).not.toBe('ok');
        expect((err as Error).message, c.name).toMatch(/corrupt|CORRUPT/);
        continue;
      }
      try {
        const want = expected(c);
        const r = await run('cat', [path.join(mountpoint, c.file ?? 'a.txt')]);
        if (want.read === 'ok') expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
        else {
          expect(r.code, `${c.name}: read through the mount succeeded`).not.toBe(0);
          expect(r.stderr, c.name).toMatch(/Input\/output error|No such file/);
          expect(r.stdout.length, `${c.name}: bytes of a refused file`).toBe(0);
        }
      } finally {
        await m.stop();
        await forceUnmount(mountpoint);
      }
    }
  }, 240_000);
});
