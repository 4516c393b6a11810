/**
 * A long-lived mount of a remote archive whose object is replaced (re-uploaded at the same URL), on a
 * real HTTP server that swaps the file: the mount reopens the archive once, new opens see the new
 * version, a file handle opened on the old version gets ESTALE instead of bytes of another version,
 * and nothing answers EAGAIN forever. Also: credentials and a presigned-style query string in the
 * URL stay out of the mount table, the log and the ready file. Every access to the mount is made by
 * child processes (the HTTP server runs in this process, which therefore only ever waits
 * asynchronously).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '@hexz/src/packer/pack.js';
import { run } from '../helpers/cli.js';
import { randomBytesSeeded, writeTree } from '../helpers/data.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, startMount, waitFor, type RunningMount } from './mount-helper.js';

const HELD_READER = fileURLToPath(new URL('./held-reader.mjs', import.meta.url));
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A child process holding a file open on the mount; `next()` asks for one more read and resolves with its answer. */
function holdOpen(file: string, offset: number, length: number): Promise<{ child: ChildProcessWithoutNullStreams; next(): Promise<string> }> {
  const child = spawn(process.execPath, [HELD_READER, file, String(offset), String(length)]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const line = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`held-reader ended: ${stderr}`);
    return r.value;
  };
  return line().then((first) => {
    if (first !== 'opened') throw new Error(`held-reader: ${first} ${stderr}`);
    return {
      child,
      next: async () => {
        child.stdin.write('\n');
        return line();
      },
    };
  });
}

describe.skipIf(!FUSE_DEVICE_PRESENT)('hexz mount of a remote archive that is replaced while mounted', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let server: TestHttpServer;
  let v1: { dir: string; bytes: Buffer };
  let v2: { dir: string; bytes: Buffer };
  const mounts: RunningMount[] = [];
  const mountpoints: string[] = [];

  async function mountpoint(name: string): Promise<string> {
    const mp = path.join(tmp.dir, name);
    await fs.mkdir(mp);
    mountpoints.push(mp);
    return mp;
  }

  beforeAll(async () => {
    tmp = await makeTempDir('hexz-fuse-replaced-');
    const held = randomBytesSeeded(4 * MiB, 31);
    const dir1 = path.join(tmp.dir, 'v1');
    const dir2 = path.join(tmp.dir, 'v2');
    await writeTree(dir1, { 'same.txt': 'unchanged\n', 'held.bin': held, 'fresh.bin': randomBytesSeeded(2 * MiB, 32), 'gone.txt': 'only in v1\n' });
    // fresh.bin keeps its size (so the kernel's cached size stays right) but not its bytes or mtime.
    await writeTree(dir2, { 'same.txt': 'unchanged\n', 'held.bin': held, 'fresh.bin': randomBytesSeeded(2 * MiB, 42), 'added.txt': 'new in v2\n' });
    await fs.utimes(path.join(dir1, 'fresh.bin'), 1_600_000_000, 1_600_000_000);
    await fs.utimes(path.join(dir2, 'fresh.bin'), 1_700_000_000, 1_700_000_000);
    await pack(dir1, path.join(tmp.dir, 'v1.hxz'), { threads: 1 });
    await pack(dir2, path.join(tmp.dir, 'v2.hxz'), { threads: 1 });
    v1 = { dir: dir1, bytes: await fs.readFile(path.join(tmp.dir, 'v1.hxz')) };
    v2 = { dir: dir2, bytes: await fs.readFile(path.join(tmp.dir, 'v2.hxz')) };
    server = await startHttpServer();
  });

  afterAll(async () => {
    await Promise.all(mounts.map((m) => m.stop()));
    for (const mp of mountpoints) await forceUnmount(mp);
    await server?.stop();
    await tmp?.cleanup();
  });

  it('reopens once: new opens see the new version, a handle opened on the old one gets ESTALE', async () => {
    const url = await server.put('ds.hxz', v1.bytes);
    const mp = await mountpoint('replaced');
    const m = await startMount(url, mp);
    mounts.push(m);
    const before = await run('cat', [path.join(mp, 'same.txt'), path.join(mp, 'gone.txt')]);
    expect(before.stdout.toString()).toBe('unchanged\nonly in v1\n');

    // A reader keeps held.bin open across the replacement; its next read is at 3 MiB.
    const held = await holdOpen(path.join(mp, 'held.bin'), 3 * MiB, 64 * 1024);
    try {
      await server.put('ds.hxz', v2.bytes);

      // The first read that misses the caches finds the object replaced and the mount reopens it; the
      // reader that found out may get an error (its file was opened on the old version), later ones
      // read the new bytes.
      const want = sha256(await fs.readFile(path.join(v2.dir, 'fresh.bin')));
      let last = '';
      await waitFor(async () => {
        const r = await run('sha256sum', [path.join(mp, 'fresh.bin')]);
        last = `${r.code} ${r.stdout.toString()} ${r.stderr}`;
        return r.code === 0 && r.stdout.toString().startsWith(want);
      }, 'fresh.bin to show the new version').catch((err: Error) => {
        throw new Error(`${err.message}; last attempt: ${last}; mount log: ${m.stderr()}`);
      });

      const added = await run('cat', [path.join(mp, 'added.txt')]);
      expect(added.stdout.toString(), added.stderr).toBe('new in v2\n');
      const gone = await run('cat', [path.join(mp, 'gone.txt')]);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toContain('No such file or directory');
      const ls = await run('ls', ['-A', mp]);
      expect(ls.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['added.txt', 'fresh.bin', 'held.bin', 'same.txt']);
      // A new open of held.bin reads it whole and right (from the new version).
      const cmp = await run('cmp', [path.join(mp, 'held.bin'), path.join(v2.dir, 'held.bin')]);
      expect(cmp.code, cmp.stdout.toString() + cmp.stderr).toBe(0);

      // The descriptor opened on the old version: ESTALE, not bytes of another version, not EAGAIN.
      expect(await held.next()).toBe('error ESTALE');
      expect(await held.next()).toBe('error ESTALE');
    } finally {
      held.child.stdin.end();
    }

    const log = m.stderr();
    expect(log.match(/reopened it/g)).toHaveLength(1);
    expect(log).toContain('Files opened before now answer ESTALE');
    const exit = await m.stop('SIGTERM');
    expect(exit.code).toBe(0);
  });

  it('keeps user:password@ and a presigned query string out of the mount table, the log and the ready file', async () => {
    await server.put('secret.hxz', v1.bytes);
    server.faults.requireAuth = `Basic ${Buffer.from('alice:hunter2').toString('base64')}`;
    try {
      const base = new URL(server.url);
      const url = `http://alice:hunter2@${base.host}/secret.hxz?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=topsecretsignature`;
      const mp = await mountpoint('secret');
      const m = await startMount(url, mp);
      mounts.push(m);
      const cat = await run('cat', [path.join(mp, 'same.txt')]);
      expect(cat.stdout.toString()).toBe('unchanged\n');
      const table = await fs.readFile('/proc/self/mounts', 'utf8');
      const line = table.split('\n').find((l) => l.split(' ')[1] === mp)!;
      expect(line).toContain(`hexz:http://${base.host}/secret.hxz ${mp} fuse.hexz`);
      const ready = await fs.readFile(m.readyFile, 'utf8');
      expect(JSON.parse(ready).archive).toBe(`http://${base.host}/secret.hxz`);
      expect(m.stderr()).toContain(`hexz: mounted http://${base.host}/secret.hxz at ${mp}`);
      for (const text of [line, ready, m.stderr()]) expect(text).not.toMatch(/hunter2|alice|AKIAEXAMPLE|topsecret|X-Amz/);
      expect((await m.stop('SIGTERM')).code).toBe(0);
    } finally {
      server.faults.requireAuth = undefined;
    }
  });
});
