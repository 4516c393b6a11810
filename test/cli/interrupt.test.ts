/**
 * Ctrl-C during `hexz pack`, the way a user presses it: the CLI runs as a child process packing a
 * 300 MiB file (one file, so only the per-slot check inside the file can stop it), to a local path
 * and to s3:// on a real S3-compatible server, and gets SIGINT once or twice mid-pack.
 *
 * Expected every time: exit 130, no output object, no temporary file, no pending multipart upload
 * (asked with ListMultipartUploads), and the pack stops within a few job slots of the signal instead of
 * reading the rest of the input. No timing is asserted beyond the test timeout: "stops within a few
 * slots" is measured in bytes (the temp file or the parts uploaded), not in seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, hexz } from '../helpers/cli.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const INPUT_BYTES = 300 * MiB;
const BUCKET = 'int';
/**
 * zstd level 19 on one thread packs random data at ~20 MiB/s: the pack is certainly still running
 * when the test signals it (at level 3 the whole file takes about a second), and a pack that ignored
 * the signal would write all 300 MiB before stopping.
 */
const SLOW = ['-j', '1', '-l', '19'];
/** Far more than the job slots and staging buffers in flight at the signal (~30 MiB), far less than the input. */
const STOP_BOUND = 100 * MiB;

let tmp: { dir: string; cleanup: () => Promise<void> };
let s3: S3TestServer;
let client: S3Client;
let input: string;

beforeAll(async () => {
  tmp = await makeTempDir('hexz-int-');
  s3 = await startS3Server({ buckets: [BUCKET] });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  // Random (incompressible, no holes, no repeats), and cheap: the kernel's CSPRNG fills 16 MiB at a time.
  input = path.join(tmp.dir, 'big.bin');
  const fh = await fs.open(input, 'w');
  const buf = Buffer.allocUnsafe(16 * MiB);
  for (let done = 0; done < INPUT_BYTES; done += buf.byteLength) await fh.write(randomFillSync(buf));
  await fh.close();
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await tmp?.cleanup();
});

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HEXZ_PROGRESS: '0', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, exited };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

/** Poll `probe` until it returns true; fails if the child exits first (it finished before the signal). */
async function until(run: Run, probe: () => Promise<boolean> | boolean): Promise<void> {
  let done = false;
  void run.exited.then(() => (done = true));
  while (!(await probe())) {
    if (done) throw new Error(`the pack ended before it could be interrupted: ${run.stderr()}`);
    await tick();
  }
}

/** Wait for the exit while sampling `measure`; returns the exit and the largest value seen. */
async function exitWhileMeasuring(run: Run, measure: () => Promise<number> | number): Promise<{ code: number | null; max: number }> {
  let max = 0;
  let exit: { code: number | null } | undefined;
  void run.exited.then((e) => (exit = e));
  while (!exit) {
    max = Math.max(max, await measure());
    await tick();
  }
  return { code: exit.code, max };
}

async function tempFiles(dir: string): Promise<Array<{ name: string; size: number }>> {
  const out = [];
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.tmp')) continue;
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (st) out.push({ name, size: st.size });
  }
  return out;
}

async function pendingUploads(): Promise<string[]> {
  return ((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.Key ?? '');
}

async function objectExists(key: string): Promise<boolean> {
  return client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
    () => true,
    (err: { $metadata?: { httpStatusCode?: number } }) => {
      if (err.$metadata?.httpStatusCode === 404) return false;
      throw err;
    },
  );
}

describe('Ctrl-C during pack', () => {
  it.each([1, 2])('to a local path, %i SIGINT(s): exit 130, no output, no temp file', async (signals) => {
    const dir = path.join(tmp.dir, `local-${signals}`);
    await fs.mkdir(dir);
    const out = path.join(dir, 'out.hxz');
    const run = start(['pack', ...SLOW, input, out]);
    // Mid-pack: the temporary file has received its first 8 MiB flush.
    await until(run, async () => (await tempFiles(dir)).some((t) => t.size >= 8 * MiB));
    run.child.kill('SIGINT');
    if (signals === 2) {
      await tick();
      run.child.kill('SIGINT'); // impatient: the second one exits after a bounded cleanup
    }
    const { code, max } = await exitWhileMeasuring(run, async () => Math.max(0, ...(await tempFiles(dir)).map((t) => t.size)));
    expect(code, run.stderr()).toBe(130);
    expect(run.stderr()).toMatch(/interrupted/);
    expect(await fs.readdir(dir)).toEqual([]); // neither out.hxz nor .out.hxz.*.tmp
    if (signals === 1) expect(max).toBeLessThan(STOP_BOUND);
  });

  it('kill -9 leaves a temporary file, which the next pack of the same output removes', async () => {
    const dir = path.join(tmp.dir, 'killed');
    await fs.mkdir(dir);
    const out = path.join(dir, 'out.hxz');
    // Another output's temp in the same folder, and a live writer's, must survive.
    await fs.writeFile(path.join(dir, 'other.hxz'), 'not ours');
    const run = start(['pack', ...SLOW, input, out]);
    await until(run, async () => (await tempFiles(dir)).some((t) => t.size >= 8 * MiB));
    run.child.kill('SIGKILL');
    await run.exited;
    const left = await tempFiles(dir);
    expect(left).toHaveLength(1); // SIGKILL runs no cleanup: the leftover the issue saw
    const small = path.join(tmp.dir, 'killed-small-in');
    await fs.mkdir(small, { recursive: true });
    await fs.writeFile(path.join(small, 'f.txt'), 'small');
    const again = await hexz(['pack', '-f', small, out]);
    expect(again.code, again.stderr).toBe(0);
    expect((await fs.readdir(dir)).sort()).toEqual(['other.hxz', 'out.hxz']);
  });

  it.each([1, 2])('to s3://, %i SIGINT(s): exit 130, no object, no pending multipart upload', async (signals) => {
    const key = `pack-${signals}.hxz`;
    const run = start(['pack', ...SLOW, input, `s3://${BUCKET}/${key}`], s3.env);
    // Mid-pack: the multipart upload exists and its first part is on its way.
    await until(run, async () => (await pendingUploads()).includes(key));
    run.child.kill('SIGINT');
    if (signals === 2) {
      await tick();
      run.child.kill('SIGINT');
    }
    const { code, max } = await exitWhileMeasuring(run, () => s3.pendingParts(BUCKET));
    expect(code, run.stderr()).toBe(130);
    expect(run.stderr()).toMatch(/interrupted/);
    expect(await objectExists(key)).toBe(false);
    expect(await pendingUploads()).toEqual([]);
    if (signals === 1) expect(max * 8 * MiB).toBeLessThan(STOP_BOUND);
  });
});
