/**
 * kill -9 of a workspace's server at the crash-sensitive steps, with real FUSE mounts, stopped there
 * deterministically by the test-only pause (src/workspace/overlay/pause.ts) rather than raced with a
 * timer: during a whole-file copy-up, during an extent copy-up of a large file (a write filling part
 * of an extent), and during a commit before and after its commit point (docs/workspaces.md). After
 * each, `hexz checkout --resume` mounts the same state again and the test checks that nothing fsync'd
 * is lost, that the interrupted file holds either HEAD's bytes or the new ones (sha256, byte for
 * byte), that status and further commits work, and that an extract of the committed delta equals the
 * same edits applied to a plain copy. Also Ctrl-C of `hexz commit` while the server writes the
 * archive, and kill -9 after the journal was compacted. No timing assertions.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, hexz, hexzJson, run } from '../helpers/cli.js';
import { randomBytesSeeded, sha256File, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, waitFor } from '../fuse/mount-helper.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let home: string;
let src: string;
let v1: string;
const mounted: string[] = [];
const env = () => ({ HEXZ_HOME: home });
const sh = (cwd: string, script: string) => run('sh', ['-c', script], { cwd });

interface Listing {
  id: string;
  pid?: number;
  state: string;
  generation: number;
  head: { url: string };
}
const workspaceOf = async (ws: string): Promise<Listing> => (await hexzJson(['workspaces'], { env: env() })).json.workspaces.find((w: { mountpoint: string }) => w.mountpoint === ws);
const changes = async (ws: string): Promise<string[]> => {
  const st = await hexzJson(['status', ws], { env: env() });
  expect(st.code, st.stderr).toBe(0);
  return st.json.changes.map((c: { kind: string; path: string; from?: string }) => `${c.kind} ${c.from ? `${c.from} -> ` : ''}${c.path}`);
};

/** Check out v1 with its server set to stop at `point`; returns the workspace and the pause's marker file. */
async function pausedCheckout(name: string, point: string): Promise<{ ws: string; marker: string }> {
  const ws = path.join(tmp.dir, name);
  const marker = path.join(tmp.dir, `${name}.paused`);
  const r = await hexz(['checkout', v1, ws], { env: { ...env(), HEXZ_TEST_PAUSE_AT: point, HEXZ_TEST_PAUSE_MARKER: marker } });
  expect(r.code, r.stderr).toBe(0);
  mounted.push(ws);
  return { ws, marker };
}

/** Wait until the server stopped at its pause point, then kill -9 it and wait until it is dead. */
async function killAtPause(ws: string, marker: string): Promise<void> {
  await waitFor(async () => existsSync(marker), `the server of ${ws} to reach its pause point`, 60_000);
  const { pid } = await workspaceOf(ws);
  expect(Number((await fs.readFile(marker, 'utf8')).trim())).toBe(pid);
  process.kill(pid!, 'SIGKILL');
  await waitFor(async () => !(await workspaceOf(ws)).pid, `the server of ${ws} to die after kill -9`);
}

/** Mount the same state again, with no pause this time. */
async function resume(ws: string): Promise<void> {
  const r = await hexz(['checkout', '--resume', ws], { env: env() });
  expect(r.code, r.stderr).toBe(0);
}

/** A plain copy of v1's tree with `script` applied: what the workspace must equal. */
async function reference(name: string, script: string): Promise<string> {
  const ref = path.join(tmp.dir, name);
  expect((await run('cp', ['-a', src, ref])).code).toBe(0);
  const r = await sh(ref, script);
  expect(r.code, r.stderr).toBe(0);
  return ref;
}

async function commitAndCompare(ws: string, out: string, ref: string, extra: string[] = []): Promise<void> {
  const c = await hexzJson(['commit', out, '-C', ws, ...extra], { env: env() });
  expect(c.code, c.stderr).toBe(0);
  const x = `${out}.extract`;
  const e = await hexz(['extract', out, x]);
  expect(e.code, e.stderr).toBe(0);
  const want = await treeDigest(ref);
  expect(await treeDigest(x)).toEqual(want);
  expect(await treeDigest(ws)).toEqual(want);
}

const fsynced = (file: string, text: string) => `python3 -c "import os;f=open('${file}','a');f.write('${text}\\n');f.flush();os.fsync(f.fileno());f.close()"`;
/** Durable edits made before the crash: a new file, an edit of a HEAD file, a rename (all fsync'd or journaled). */
const DURABLE = ['set -e', fsynced('kept.txt', 'durable'), fsynced('notes/a.txt', 'appended'), 'mv notes/b.txt notes/moved.txt'].join('\n');
/** The same without an edit of a HEAD file, whose copy-up would be the one the pause stops. */
const DURABLE_NO_COPY = ['set -e', fsynced('kept.txt', 'durable'), 'mkdir made', 'mv notes/b.txt notes/moved.txt'].join('\n');

beforeAll(async () => {
  tmp = await makeTempDir('hexz-crash-');
  home = path.join(tmp.dir, 'home');
  src = path.join(tmp.dir, 'src');
  await writeTree(src, {
    // Copied up by extent (64 MiB and more), and whole (several pieces, so a copy can stop halfway).
    'big.img': randomBytesSeeded(200 * MiB, 31),
    'small.bin': randomBytesSeeded(6 * MiB, 32),
    'notes/a.txt': 'alpha\n',
    'notes/b.txt': textBytes(64 * 1024, 33),
  });
  v1 = path.join(tmp.dir, 'v1.hxz');
  const r = await hexz(['pack', src, v1]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const ws of mounted) {
    await hexz(['unmount', ws], { env: env() }).catch(() => {});
    await forceUnmount(ws);
  }
  await tmp?.cleanup();
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('kill -9 of a workspace server at its crash points (real FUSE mounts)', () => {
  it('during a whole-file copy-up: the half-copied file is dropped, HEAD shows, fsync-ed edits stay', async () => {
    const { ws, marker } = await pausedCheckout('ws-copyup', 'copy-up');
    expect((await sh(ws, DURABLE_NO_COPY)).code).toBe(0);
    const upper = path.join((await workspaceOf(ws)).state, 'gen-0', 'upper');
    // The append opens small.bin for writing: its copy-up stops after the first piece.
    const writer = sh(ws, 'echo lost >> small.bin');
    await waitFor(async () => existsSync(marker), 'the copy-up to start', 60_000);
    const temps = (await fs.readdir(upper)).filter((n) => n.startsWith('.tmp-'));
    expect(temps.length).toBe(1);
    expect((await fs.stat(path.join(upper, temps[0]))).size).toBeLessThan(6 * MiB);
    await killAtPause(ws, marker);
    expect((await writer).code).not.toBe(0);
    await resume(ws);

    expect((await fs.readdir(upper)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await sha256File(path.join(ws, 'small.bin'))).toBe(await sha256File(path.join(src, 'small.bin')));
    expect(await fs.readFile(path.join(ws, 'kept.txt'), 'utf8')).toBe('durable\n');
    expect((await changes(ws)).sort()).toEqual(['added kept.txt', 'added made', 'renamed notes/b.txt -> notes/moved.txt']);

    // The same append again, uninterrupted, then a commit equal to a plain copy with the same edits.
    expect((await sh(ws, fsynced('small.bin', 'appended'))).code).toBe(0);
    const ref = await reference('ref-copyup', `${DURABLE_NO_COPY}\n${fsynced('small.bin', 'appended')}`);
    await commitAndCompare(ws, path.join(tmp.dir, 'copyup-v2.hxz'), ref);
  });

  it('during an extent copy-up of a 200 MiB file: the unsynced extent reads as HEAD, the map names nothing half-filled', async () => {
    const { ws, marker } = await pausedCheckout('ws-extent', 'extent-fill');
    expect((await sh(ws, DURABLE)).code).toBe(0);
    const upper = path.join((await workspaceOf(ws)).state, 'gen-0', 'upper');
    // One byte in the middle: big.img is copied up by extent (journaled), then the write fills its
    // extent from HEAD and stops with the extent written in the upper file but not in the map.
    const poke = (seek: number, extra = '') => `printf Z | dd of=big.img bs=1 seek=${seek} conv=notrunc${extra} status=none`;
    const writer = sh(ws, poke(150_000_000));
    await killAtPause(ws, marker);
    expect((await writer).code).not.toBe(0);
    const names = await fs.readdir(upper);
    const image = names.find((n) => n.endsWith('.map'))!.slice(0, -'.map'.length);
    // The extent's bytes reached the upper file; the map on disk does not name them.
    expect((await fs.stat(path.join(upper, image))).blocks * 512).toBeGreaterThan(0);
    await resume(ws);

    expect(await sha256File(path.join(ws, 'big.img'))).toBe(await sha256File(path.join(src, 'big.img')));
    expect(await fs.readFile(path.join(ws, 'kept.txt'), 'utf8')).toBe('durable\n');
    // Copied up but unchanged: not a change.
    expect((await changes(ws)).sort()).toEqual(['added kept.txt', 'modified notes/a.txt', 'renamed notes/b.txt -> notes/moved.txt']);

    // The edit again, fsync'd this time, plus one in another extent; a kill -9 now loses none of it.
    expect((await sh(ws, `set -e\n${poke(150_000_000, ',fsync')}\n${poke(3_000_000, ',fsync')}`)).code).toBe(0);
    process.kill((await workspaceOf(ws)).pid!, 'SIGKILL');
    await waitFor(async () => !(await workspaceOf(ws)).pid, 'the server to die after kill -9');
    await resume(ws);
    const ref = await reference('ref-extent', `${DURABLE}\n${poke(150_000_000)}\n${poke(3_000_000)}`);
    expect(await sha256File(path.join(ws, 'big.img'))).toBe(await sha256File(path.join(ref, 'big.img')));
    const st = await hexzJson(['status', ws], { env: env() });
    expect(st.json.hashedBytes).toBeLessThanOrEqual(8 * MiB);
    await commitAndCompare(ws, path.join(tmp.dir, 'extent-v2.hxz'), ref);
  });

  it('during a commit, before its commit point: the old HEAD with every change, and the commit runs again', async () => {
    const { ws, marker } = await pausedCheckout('ws-commit-before', 'commit-written');
    const edits = `${DURABLE}\nprintf Z | dd of=big.img bs=1 seek=100000000 conv=notrunc,fsync status=none`;
    expect((await sh(ws, edits)).code).toBe(0);
    const before = (await changes(ws)).sort();
    const out = path.join(tmp.dir, 'before-v2.hxz');
    const committing = hexz(['commit', out, '-C', ws], { env: env() });
    await killAtPause(ws, marker);
    expect((await committing).code).not.toBe(0);
    await resume(ws);

    expect(await workspaceOf(ws)).toMatchObject({ generation: 0, head: { url: `file://${v1}` } });
    expect((await changes(ws)).sort()).toEqual(before);
    const ref = await reference('ref-commit-before', edits);
    // The archive written before the kill is complete but nothing names it: an orphan, refused as an
    // output like any existing file, and replaced with --force.
    expect(existsSync(out)).toBe(true);
    const again = await hexz(['commit', out, '-C', ws], { env: env() });
    expect(again.stderr).toMatch(/already exists/);
    await commitAndCompare(ws, out, ref, ['--force']);
    expect(await workspaceOf(ws)).toMatchObject({ generation: 1, head: { url: `file://${out}` } });
  });

  it('during a commit, after its commit point: the new HEAD with an empty overlay, and a second commit works', async () => {
    const { ws, marker } = await pausedCheckout('ws-commit-after', 'commit-point');
    const edits = `${DURABLE}\nprintf Z | dd of=big.img bs=1 seek=100000000 conv=notrunc,fsync status=none`;
    expect((await sh(ws, edits)).code).toBe(0);
    const out = path.join(tmp.dir, 'after-v2.hxz');
    const committing = hexz(['commit', out, '-C', ws], { env: env() });
    await killAtPause(ws, marker);
    expect((await committing).code).not.toBe(0);
    const state = (await workspaceOf(ws)).state;
    // The old generation outlived the kill; the next open deletes it.
    expect(existsSync(path.join(state, 'gen-0'))).toBe(true);
    await resume(ws);

    expect(await workspaceOf(ws)).toMatchObject({ generation: 1, head: { url: `file://${out}` } });
    expect(existsSync(path.join(state, 'gen-0'))).toBe(false);
    expect(await fs.readdir(path.join(state, 'gen-1', 'upper'))).toEqual([]);
    expect(await changes(ws)).toEqual([]);
    const ref = await reference('ref-commit-after', edits);
    const x = path.join(tmp.dir, 'after-v2.extract');
    expect((await hexz(['extract', out, x])).code).toBe(0);
    expect(await treeDigest(x)).toEqual(await treeDigest(ref));
    expect(await treeDigest(ws)).toEqual(await treeDigest(ref));

    // A second commit on top of the new HEAD.
    const more = 'set -e\necho more >> notes/moved.txt\nrm small.bin';
    expect((await sh(ws, more)).code).toBe(0);
    expect((await sh(ref, more)).code).toBe(0);
    expect((await changes(ws)).sort()).toEqual(['deleted small.bin', 'modified notes/moved.txt']);
    await commitAndCompare(ws, path.join(tmp.dir, 'after-v3.hxz'), ref);
  });

  it('Ctrl-C of `hexz commit` while the server writes the archive: the commit stops, nothing is left, the mount serves on', async () => {
    const { ws, marker } = await pausedCheckout('ws-commit-interrupt', 'commit-reading');
    const edits = `${DURABLE}\nprintf Z | dd of=big.img bs=1 seek=100000000 conv=notrunc,fsync status=none`;
    expect((await sh(ws, edits)).code).toBe(0);
    const before = (await changes(ws)).sort();
    const { pid } = await workspaceOf(ws);
    const out = path.join(tmp.dir, 'interrupted-v2.hxz');
    const child = spawn(process.execPath, [CLI, 'commit', out, '-C', ws], { env: { ...process.env, ...env(), HEXZ_PROGRESS: '0' } });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor(async () => existsSync(marker), 'the commit to reach its first file', 60_000);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted/);

    // The server stopped the commit (its writer removed the partial archive) and serves on, unchanged.
    expect(existsSync(out)).toBe(false);
    expect((await fs.readdir(tmp.dir)).filter((n) => n.startsWith('interrupted-v2'))).toEqual([]);
    expect(await workspaceOf(ws)).toMatchObject({ pid, generation: 0, head: { url: `file://${v1}` } });
    expect((await changes(ws)).sort()).toEqual(before);
    const ref = await reference('ref-commit-interrupt', edits);
    await commitAndCompare(ws, out, ref);
    expect(await workspaceOf(ws)).toMatchObject({ pid, generation: 1, head: { url: `file://${out}` } });
  });

  it('kill -9 after the journal was compacted: the snapshot and the records after it give the same tree', async () => {
    const ws = path.join(tmp.dir, 'ws-compacted');
    // Compaction considered from 300 lines (default 10,000), so a few hundred operations trigger it.
    const r = await hexz(['checkout', v1, ws], { env: { ...env(), HEXZ_JOURNAL_COMPACT: '300' } });
    expect(r.code, r.stderr).toBe(0);
    mounted.push(ws);
    // Hundreds of files created and deleted (an editor's or a build's temp files), then real edits.
    const churn = 'set -e\nfor i in $(seq 1 400); do echo $i > tmp.$i; rm tmp.$i; done';
    expect((await sh(ws, churn)).code).toBe(0);
    expect((await sh(ws, DURABLE)).code).toBe(0);
    const journal = path.join((await workspaceOf(ws)).state, 'gen-0', 'journal');
    const lines = (await fs.readFile(journal, 'utf8')).split('\n').filter(Boolean);
    expect(lines.some((l) => l.includes('"op":"node"'))).toBe(true);
    expect(lines.length).toBeLessThan(300);
    const before = (await changes(ws)).sort();
    expect(before).toEqual(['added kept.txt', 'modified notes/a.txt', 'renamed notes/b.txt -> notes/moved.txt']);

    const { pid } = await workspaceOf(ws);
    process.kill(pid!, 'SIGKILL');
    await waitFor(async () => !(await workspaceOf(ws)).pid, `the server of ${ws} to die after kill -9`);
    await resume(ws);
    expect((await changes(ws)).sort()).toEqual(before);
    await commitAndCompare(ws, path.join(tmp.dir, 'compacted-v2.hxz'), await reference('ref-compacted', DURABLE));
  });
});
