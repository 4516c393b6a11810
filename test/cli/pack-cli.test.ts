/**
 * `hexz pack`, `info`, `ls` and `verify` the way a user runs them: real files, the built CLI as a
 * child process, no mocks.
 *
 * - chunks that do not shrink are stored raw (codec `none`), so incompressible input costs no more than
 *   its size plus the index;
 * - `info` shows the UUID and the per-codec chunk counts, in text and in `--json`;
 * - progress: nothing on a pipe (even without HEXZ_PROGRESS=0), the summary on stdout; on a pty
 *   (util-linux `script`) a bar with bytes and rate;
 * - `--threads 1` and `--threads 4` give the same archive, apart from the random UUID;
 * - every broken fixture through `info`, `ls -r` and `verify`: the exit code from ERROR_TABLE, one
 *   `hexz: error:` line, no stack trace, in bounded time;
 * - an archive whose root is larger than the first suffix read opens in exactly 2 storage requests;
 * - a pack that fails mid-way (the output hits the file size limit, `ulimit -f`) leaves nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockCache } from '@hexz/cache/block-cache.js';
import { meterStorage, newCounters } from '@hexz/cache/metered.js';
import { ERROR_TABLE, type ErrorCode } from '@hexz/src/errors.js';
import { OPEN_TAIL_BYTES, TRAILER_SIZE } from '@hexz/src/format/constants.js';
import { decodeHeader, decodeTrailer, encodeHeader, encodeTrailer } from '@hexz/src/format/header.js';
import { openArchive } from '@hexz/src/reader/archive.js';
import { openStorage } from '@hexz/storage/index.js';
import { CLI, hexz, hexzJson } from '../helpers/cli.js';
import { randomBytesSeeded, sha256, textBytes, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const BROKEN = fileURLToPath(new URL('../fixtures/broken/', import.meta.url));
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[/;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/;

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('hexz-pack-cli-');
});
afterAll(async () => {
  await tmp?.cleanup();
});

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Run a command with the test's environment minus HEXZ_PROGRESS (unlike helpers/cli.ts, which sets
 * it to 0), plus `env`; killed (SIGKILL) after `timeoutMs`, which the caller sees as `signal`.
 */
function spawnWith(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<Spawned> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (!opts.env || !('HEXZ_PROGRESS' in opts.env)) delete env.HEXZ_PROGRESS;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - started }));
  });
}

const cli = (args: string[], opts: Parameters<typeof spawnWith>[2] = {}) => spawnWith(process.execPath, [CLI, ...args], opts);

async function listOrEmpty(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

describe('codecs: a chunk that does not shrink is stored raw', () => {
  it('packs random bytes with zstd as codec none, at input size plus a small index', async () => {
    const input = path.join(tmp.dir, 'random.bin');
    const data = randomBytesSeeded(4 * MiB, 101);
    await fs.writeFile(input, data);
    const out = path.join(tmp.dir, 'random.hxz');
    const p = await hexz(['pack', '-c', 'zstd', input, out]);
    expect(p.code, p.stderr).toBe(0);

    const { code, json } = await hexzJson(['info', out]);
    expect(code).toBe(0);
    expect(json.compression.codec).toBe('zstd');
    // Every stored chunk is raw: counted under `none`, none under `zstd`.
    expect(json.codecs.none.chunks).toBe(json.storedChunks);
    expect(json.codecs.none.chunks).toBeGreaterThan(16); // 4 MiB of ~64 KiB chunks
    expect(json.codecs.none.rawBytes).toBe(data.byteLength);
    expect(json.codecs.none.storedBytes).toBe(data.byteLength);
    expect(json.codecs.zstd?.chunks ?? 0).toBe(0);
    expect(json.storedChunkBytes).toBe(data.byteLength);

    // The archive is the data plus header, trailer and index: far under 1% overhead here.
    const size = (await fs.stat(out)).size;
    expect(json.archiveSize).toBe(size);
    expect(size).toBeGreaterThan(data.byteLength);
    expect(size - data.byteLength).toBeLessThan(16 * 1024);

    // And it reads back exactly.
    const cat = await hexz(['cat', out, 'disk']);
    expect(cat.code, cat.stderr).toBe(0);
    expect(sha256(cat.stdout)).toBe(sha256(data));
  });
});

describe('hexz info', () => {
  it('shows the UUID and the codec mix in text and in --json', async () => {
    const input = path.join(tmp.dir, 'mixed');
    await writeTree(input, { 'random.bin': randomBytesSeeded(2 * MiB, 202), 'text.txt': textBytes(2 * MiB, 203), 'sub/small.txt': 'hello\n' });
    const out = path.join(tmp.dir, 'mixed.hxz');
    const packed = await hexzJson(['pack', input, out]);
    expect(packed.code, packed.stderr).toBe(0);
    const uuid: string = packed.json.uuid;
    expect(uuid).toMatch(UUID);

    const { code, json } = await hexzJson(['info', out]);
    expect(code).toBe(0);
    expect(json.uuid).toBe(uuid);
    const zstd = json.codecs.zstd.chunks as number;
    const none = json.codecs.none.chunks as number;
    expect(zstd).toBeGreaterThan(0); // the text shrinks
    expect(none).toBeGreaterThan(0); // the random bytes do not
    expect(zstd + none).toBe(json.storedChunks);

    const text = await hexz(['info', out]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.toString().split('\n');
    expect(lines.find((l) => /^uuid:/.test(l))).toMatch(new RegExp(`^uuid:\\s+${uuid}$`));
    const compression = lines.find((l) => /^compression:/.test(l));
    expect(compression).toBeDefined();
    expect(compression).toContain(`zstd ${zstd} chunks`);
    expect(compression).toContain(`none ${none} chunks`);
  });
});

describe('progress output', () => {
  let input: string;
  beforeAll(async () => {
    input = path.join(tmp.dir, 'progress-in');
    await writeTree(input, { 'a.bin': randomBytesSeeded(8 * MiB, 301), 'b.txt': textBytes(MiB, 302) });
  });

  it('draws nothing on a pipe even without HEXZ_PROGRESS=0, and prints the summary on stdout', async () => {
    const out = path.join(tmp.dir, 'progress-pipe.hxz');
    const r = await cli(['pack', input, out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(ANSI);
    expect(r.stderr).not.toMatch(/packing|%|\r/);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(ANSI);
    expect(r.stdout).toMatch(/^packed:\s+file:\/\/.*progress-pipe\.hxz \(directory, uuid [0-9a-f-]{36}\)$/m);
    expect(r.stdout).toMatch(/^archive:\s+\d/m);
    expect(r.stdout).toMatch(/^time:\s+.*\/s\)$/m);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)('draws a bar with bytes and rate on a terminal (util-linux script gives a pty)', async () => {
    const out = path.join(tmp.dir, 'progress-tty.hxz');
    const command = [process.execPath, CLI, 'pack', input, out].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // script -q: no start/done lines; -e: its exit code is the command's; -c: the command; /dev/null: no typescript file.
    const r = await spawnWith('script', ['-qec', command, '/dev/null'], { env: { TERM: 'xterm', COLUMNS: '120' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // stdout of `script` is the terminal: the bar and the summary together.
    expect(r.stdout).toMatch(ANSI);
    // The final frame (cli-progress renders once more on stop): all bytes, and a rate.
    expect(r.stdout).toMatch(/packing .* 100% \| ([\d.]+ MiB) \/ \1 \| [\d.]+ (B|KiB|MiB|GiB)\/s/);
    expect(r.stdout).toMatch(/packed:\s+file:\/\/.*progress-tty\.hxz/);
    // The bar is cleared before the summary is written.
    const summaryAt = r.stdout.indexOf('packed:');
    expect(r.stdout.lastIndexOf('packing', summaryAt)).toBeGreaterThanOrEqual(0);
    expect(r.stdout.slice(summaryAt)).not.toMatch(/packing/);
  });
});

describe('determinism across thread counts', () => {
  /** The archive with the header's and trailer's UUID replaced by `uuid` (checksums recomputed). */
  function withUuid(bytes: Buffer, uuid: Uint8Array): Buffer {
    const out = Buffer.from(bytes);
    const header = decodeHeader(out.subarray(0, 64));
    out.set(encodeHeader({ ...header, uuid }), 0);
    const trailer = decodeTrailer(out, out.byteLength);
    out.set(encodeTrailer({ ...trailer, uuid }), out.byteLength - TRAILER_SIZE);
    return out;
  }

  it('--threads 1 and --threads 4 give the same bytes apart from the random UUID (SOURCE_DATE_EPOCH fixed)', async () => {
    const input = path.join(tmp.dir, 'det-in');
    await writeTree(input, {
      'r.bin': randomBytesSeeded(6 * MiB, 401),
      't.txt': textBytes(2 * MiB, 402),
      'z/zeros': Buffer.alloc(MiB),
      'z/dup.bin': randomBytesSeeded(6 * MiB, 401),
      'z/deeper/small': 'x',
    });
    const env = { SOURCE_DATE_EPOCH: '1767225600' };
    const a = path.join(tmp.dir, 'det-1.hxz');
    const b = path.join(tmp.dir, 'det-4.hxz');
    const ra = await hexz(['pack', '--threads', '1', input, a], { env });
    const rb = await hexz(['pack', '--threads', '4', input, b], { env });
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const ba = await fs.readFile(a);
    const bb = await fs.readFile(b);
    expect(bb.byteLength).toBe(ba.byteLength);
    const ua = decodeTrailer(ba, ba.byteLength).uuid;
    const ub = decodeTrailer(bb, bb.byteLength).uuid;
    expect(Buffer.from(ua).equals(Buffer.from(ub))).toBe(false); // no CLI option fixes the UUID
    // Outside the header and trailer the files are identical; with one UUID, entirely identical.
    expect(ba.subarray(64, ba.byteLength - TRAILER_SIZE).equals(bb.subarray(64, bb.byteLength - TRAILER_SIZE))).toBe(true);
    expect(sha256(withUuid(bb, ua))).toBe(sha256(ba));

    const ia = await hexzJson(['info', a]);
    expect(ia.json.created).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('broken fixtures through the CLI', () => {
  /**
   * What each command meets. Opening reads only the trailer and the root, `info` and `ls` the file
   * table too, and the header is checked by `verify` only (docs/format.md §2): so a damaged chunk,
   * chunk-index page or header is invisible to `info` and `ls -r` (exit 0) and reported by `verify`
   * as problems on stdout (exit 4). Anything the open or the listing needs fails every command with
   * a `hexz: error:` line.
   */
  type Outcome = ErrorCode | 'ok' | 'problems';
  const cases: Array<[string, { info: Outcome; ls: Outcome; verify: Outcome }]> = [
    ['empty.hxz', { info: 'NOT_AN_ARCHIVE', ls: 'NOT_AN_ARCHIVE', verify: 'NOT_AN_ARCHIVE' }],
    ['not-an-archive.hxz', { info: 'NOT_AN_ARCHIVE', ls: 'NOT_AN_ARCHIVE', verify: 'NOT_AN_ARCHIVE' }],
    ['truncated-header-only.hxz', { info: 'TRUNCATED', ls: 'TRUNCATED', verify: 'TRUNCATED' }],
    ['truncated-mid-chunks.hxz', { info: 'TRUNCATED', ls: 'TRUNCATED', verify: 'TRUNCATED' }],
    ['truncated-before-trailer.hxz', { info: 'TRUNCATED', ls: 'TRUNCATED', verify: 'TRUNCATED' }],
    ['truncated-mid-trailer.hxz', { info: 'TRUNCATED', ls: 'TRUNCATED', verify: 'TRUNCATED' }],
    ['future-version.hxz', { info: 'UNSUPPORTED_VERSION', ls: 'UNSUPPORTED_VERSION', verify: 'UNSUPPORTED_VERSION' }],
    ['flipped-trailer.hxz', { info: 'CORRUPT', ls: 'CORRUPT', verify: 'CORRUPT' }],
    ['flipped-root.hxz', { info: 'CORRUPT', ls: 'CORRUPT', verify: 'CORRUPT' }],
    ['flipped-file-page.hxz', { info: 'CORRUPT', ls: 'CORRUPT', verify: 'problems' }],
    ['flipped-chunk-page.hxz', { info: 'ok', ls: 'ok', verify: 'problems' }],
    ['flipped-chunk-data.hxz', { info: 'ok', ls: 'ok', verify: 'problems' }],
    ['flipped-header.hxz', { info: 'ok', ls: 'ok', verify: 'problems' }],
  ];
  const BOUND_MS = 20_000;

  it('covers every fixture in test/fixtures/broken', async () => {
    expect((await fs.readdir(BROKEN)).sort()).toEqual(cases.map(([f]) => f).sort());
  });

  describe.each(cases)('%s', (file, expected) => {
    const commands: Array<[keyof typeof expected, string[]]> = [
      ['info', ['info']],
      ['ls', ['ls', '-r']],
      ['verify', ['verify']],
    ];
    it.each(commands)('%s', async (which, args) => {
      const archive = path.join(BROKEN, file);
      const outcome = expected[which];
      const [text, json] = await Promise.all([
        cli([...args, archive], { env: { HEXZ_PROGRESS: '0' }, timeoutMs: BOUND_MS }),
        cli(['--json', ...args, archive], { env: { HEXZ_PROGRESS: '0' }, timeoutMs: BOUND_MS }),
      ]);
      for (const r of [text, json]) {
        expect(r.signal, `${args.join(' ')} ${file} did not finish within ${BOUND_MS} ms`).toBeNull();
        expect(r.stderr).not.toMatch(/^\s+at |TypeError|RangeError|ReferenceError|internal error/m);
      }
      if (outcome === 'ok') {
        expect(text.code, text.stderr).toBe(0);
        expect(json.code, json.stderr).toBe(0);
        expect(text.stderr).toBe('');
        return;
      }
      if (outcome === 'problems') {
        // verify ran to the end and reports what it found: exit 4 (CORRUPT), problems on stdout.
        expect(text.code, text.stderr).toBe(ERROR_TABLE.CORRUPT.exit);
        expect(text.stdout).toMatch(/^FAILED: \d+ problem\(s\) in /m);
        expect(text.stdout).toMatch(/^ {2}CORRUPT\b/m);
        expect(json.code).toBe(ERROR_TABLE.CORRUPT.exit);
        const report = JSON.parse(json.stdout);
        expect(report.ok).toBe(false);
        expect(report.problems.length).toBeGreaterThan(0);
        for (const p of report.problems) expect(p.code).toBe('CORRUPT');
        return;
      }
      const exit = ERROR_TABLE[outcome].exit;
      expect(exit).toBeGreaterThan(1);
      expect(text.code, text.stderr).toBe(exit);
      expect(text.stdout).toBe('');
      const lines = text.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^hexz: error: \S.{8,}/);
      expect(json.code).toBe(exit);
      expect(JSON.parse(json.stdout).error).toMatchObject({ code: outcome, message: expect.any(String) });
      expect(json.stderr.trimEnd().split('\n')).toEqual([lines[0]]);
    });
  });
});

describe('opening an archive whose root is larger than the first suffix read', () => {
  it('costs exactly 2 storage requests: the suffix, then exactly the root', async () => {
    const input = path.join(tmp.dir, 'open-in');
    await writeTree(input, { 'a.bin': randomBytesSeeded(3 * MiB, 601), 'b.txt': textBytes(300_000, 602), 'dir/c.txt': 'c\n' });
    // The root holds the metadata: three incompressible --meta values (each under Linux's 128 KiB
    // limit for one argument) make it several times the 64 KiB suffix read.
    const meta = ['one', 'two', 'three'].flatMap((k) => ['-m', `${k}=${randomBytes(75_000).toString('base64')}`]);
    const big = path.join(tmp.dir, 'big-root.hxz');
    const small = path.join(tmp.dir, 'small-root.hxz');
    const pb = await hexz(['pack', ...meta, input, big]);
    const ps = await hexz(['pack', input, small]);
    expect(pb.code, pb.stderr).toBe(0);
    expect(ps.code, ps.stderr).toBe(0);

    // Premise: the big root starts before the suffix read, the small one inside it.
    const bigBytes = await fs.readFile(big);
    const bigTrailer = decodeTrailer(bigBytes, bigBytes.byteLength);
    expect(bigTrailer.rootOffset).toBeLessThan(bigBytes.byteLength - OPEN_TAIL_BYTES);
    expect(bigTrailer.rootLength).toBeGreaterThan(2 * OPEN_TAIL_BYTES);
    const smallBytes = await fs.readFile(small);
    expect(decodeTrailer(smallBytes, smallBytes.byteLength).rootOffset).toBeGreaterThanOrEqual(smallBytes.byteLength - OPEN_TAIL_BYTES);

    const open = async (file: string) => {
      const counters = newCounters();
      const storage = meterStorage(await openStorage(file), counters);
      const archive = await openArchive(storage, { cache: new BlockCache() });
      return { counters, storage, archive, opened: { ...counters } };
    };

    const s = await open(small);
    try {
      expect(s.opened.requests).toBe(1);
      expect(s.opened.bytes).toBe(OPEN_TAIL_BYTES);
    } finally {
      await s.archive.close();
      await s.storage.close();
    }

    const b = await open(big);
    try {
      expect(b.opened.requests).toBe(2);
      expect(b.opened.bytes).toBe(OPEN_TAIL_BYTES + bigTrailer.rootLength);
      // The archive is usable, and the root read was the whole root (the metadata is all there).
      expect(Object.keys(b.archive.info().user).sort()).toEqual(['one', 'three', 'two']);
      expect(b.counters.requests).toBe(2);
      expect(Buffer.from(await b.archive.read('dir/c.txt', 0, 2)).toString()).toBe('c\n');
    } finally {
      await b.archive.close();
      await b.storage.close();
    }

    // The CLI opens it as well.
    const info = await hexzJson(['info', big]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.json.user.two).toHaveLength(100_000);
  });
});

describe('a pack that fails mid-way leaves nothing behind', () => {
  /**
   * The failure: the output file hits the process's file size limit (`ulimit -f`, RLIMIT_FSIZE) after
   * 2 MiB of an 8 MiB archive. Node ignores SIGXFSZ, so the write fails with EFBIG — the same path as
   * a disk filling up or a quota running out, but deterministic and without privileges (running as
   * root defeats read-only directories and unreadable inputs).
   */
  it('a write failing with EFBIG: typed error, exit from the table, no output, no temporary file', async () => {
    const input = path.join(tmp.dir, 'fail-in');
    await writeTree(input, { 'a.bin': randomBytesSeeded(6 * MiB, 701), 'b.bin': randomBytesSeeded(2 * MiB, 702) });
    const outDir = path.join(tmp.dir, 'fail-out');
    const out = path.join(outDir, 'x.hxz');
    const limited = (args: string[]) =>
      spawnWith('sh', ['-c', 'ulimit -f 2048 && exec "$@"', 'sh', process.execPath, CLI, ...args], { env: { HEXZ_PROGRESS: '0' } });

    const r = await limited(['pack', '-j', '1', input, out]);
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^hexz: error: .*EFBIG/);
    expect(lines[0]).toContain(out);
    expect(r.stdout).toBe('');
    expect(await listOrEmpty(outDir)).toEqual([]);

    const j = await limited(['--json', 'pack', '-j', '1', input, out]);
    const err = JSON.parse(j.stdout).error as { code: ErrorCode };
    expect(ERROR_TABLE[err.code].exit).toBe(j.code);
    expect(j.code).toBe(r.code);
    expect(await listOrEmpty(outDir)).toEqual([]);

    // Without the limit the same command succeeds (nothing left behind blocks it: no EXISTS).
    const ok = await hexz(['pack', '-j', '1', input, out]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await listOrEmpty(outDir)).toEqual(['x.hxz']);
    expect((await fs.stat(out)).size).toBeGreaterThan(8 * MiB);
  });
});
