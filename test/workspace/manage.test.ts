/**
 * What `hexz status` says of files made in the workspace and then renamed (an added file at its final
 * path, never a rename: HEAD never had it), the same as a materialised copy says; and `hexz
 * workspaces --forget`, which unmounts a workspace and deletes its state, refusing while a commit runs.
 * Real FUSE mounts.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson, run } from '../helpers/cli.js';
import { treeDigest, writeTree } from '../helpers/data.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, isMounted, waitFor } from '../fuse/mount-helper.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let home: string;
let src: string;
let v1: string;
const mounted: string[] = [];
const env = () => ({ HEXZ_HOME: home });
const sh = (cwd: string, script: string) => run('sh', ['-c', script], { cwd });
const listed = async () => (await hexzJson(['workspaces'], { env: env() })).json.workspaces as Array<{ id: string; mountpoint: string; pid?: number; state: string }>;
const changes = async (ws: string): Promise<string[]> => {
  const st = await hexzJson(['status', ws], { env: env() });
  expect(st.code, st.stderr).toBe(0);
  return st.json.changes.map((c: { kind: string; path: string; from?: string }) => `${c.kind} ${c.from ? `${c.from} -> ` : ''}${c.path}`);
};

async function checkout(name: string, extra: Record<string, string> = {}): Promise<string> {
  const ws = path.join(tmp.dir, name);
  const r = await hexz(['checkout', v1, ws], { env: { ...env(), ...extra } });
  expect(r.code, r.stderr).toBe(0);
  mounted.push(ws);
  return ws;
}

beforeAll(async () => {
  tmp = await makeTempDir('hexz-ws-manage-');
  home = path.join(tmp.dir, 'home');
  src = path.join(tmp.dir, 'src');
  await writeTree(src, { 'a.txt': 'a\n', 'b.txt': 'b\n', 'd/c.txt': 'c\n' });
  v1 = path.join(tmp.dir, 'v1.hxz');
  expect((await hexz(['pack', src, v1])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const ws of mounted) {
    await hexz(['unmount', ws], { env: env() }).catch(() => {});
    await forceUnmount(ws);
  }
  await tmp?.cleanup();
});

describe.skipIf(!FUSE_DEVICE_PRESENT)('workspaces: renames of new files, and --forget (real FUSE mounts)', () => {
  it('reports a file or directory made in the workspace and renamed as added at its final path, like a copy does', async () => {
    const script = [
      'set -e',
      'echo new > new.txt && mv new.txt d/moved.txt', // made, then moved: added where it is now
      'mkdir nd && echo x > nd/x && mv nd nd2', // a new directory moved with what is in it
      'echo over > o.txt && mv o.txt b.txt', // a new file renamed over a HEAD file: that file modified
      'echo tmp > t.txt && mv t.txt t2.txt && rm t2.txt', // made, moved and removed: nothing
    ].join('\n');
    const ws = await checkout('ws-renames');
    const copy = path.join(tmp.dir, 'copy-renames');
    expect((await hexz(['checkout', '--copy', v1, copy], { env: env() })).code).toBe(0);
    for (const dir of [ws, copy]) expect((await sh(dir, script)).code).toBe(0);
    const want = ['added d/moved.txt', 'added nd2', 'added nd2/x', 'modified b.txt'];
    expect((await changes(ws)).sort()).toEqual(want);
    expect((await changes(copy)).sort()).toEqual(want);
    // A HEAD file renamed and a new one made at its old path: the overlay saw the rename, so it says
    // so; a copy cannot tell it from a copy of the file (there it is `added a2.txt`).
    const swap = 'mv a.txt a2.txt && echo again > a.txt';
    for (const dir of [ws, copy]) expect((await sh(dir, swap)).code).toBe(0);
    expect((await changes(ws)).sort()).toEqual([...want, 'modified a.txt', 'renamed a.txt -> a2.txt'].sort());
    const st = await hexzJson(['status', ws], { env: env() });
    // HEAD's 4 paths less the 3 changes to them (a.txt twice): added paths were never HEAD's.
    expect(st.json).toMatchObject({ unchanged: 1, hashedFiles: 0 });
    const out = path.join(tmp.dir, 'renames-v2.hxz');
    expect((await hexz(['commit', out, '-C', ws], { env: env() })).code).toBe(0);
    const x = path.join(tmp.dir, 'renames-x');
    expect((await hexz(['extract', out, x])).code).toBe(0);
    await fs.rm(path.join(copy, '.hexz'), { recursive: true, force: true });
    expect(await treeDigest(x)).toEqual(await treeDigest(copy));
  });

  it('forgets a mounted workspace (unmounted, state deleted) and an unmounted one by id', async () => {
    const ws = await checkout('ws-forget');
    await fs.writeFile(path.join(ws, 'uncommitted.txt'), 'lost on purpose\n');
    const w = (await listed()).find((l) => l.mountpoint === ws)!;
    const r = await hexzJson(['workspaces', '--forget', ws], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.forgotten).toMatchObject({ id: w.id, unmounted: true, state: w.state });
    expect(existsSync(w.state)).toBe(false);
    expect(await isMounted(ws)).toBe(false);
    expect(await fs.readdir(ws)).toEqual([]);
    expect((await listed()).some((l) => l.id === w.id)).toBe(false);
    // Its directory can hold a new checkout.
    await fs.rmdir(ws);
    const again = await checkout('ws-forget');
    expect(await fs.readFile(path.join(again, 'a.txt'), 'utf8')).toBe('a\n');

    // Unmounted first: forgotten by id.
    expect((await hexz(['unmount', again], { env: env() })).code).toBe(0);
    const id = (await listed()).find((l) => l.mountpoint === again)!.id;
    const byId = await hexz(['workspaces', '--forget', id], { env: env() });
    expect(byId.code, byId.stderr).toBe(0);
    expect((await listed()).some((l) => l.id === id)).toBe(false);
    const none = await hexz(['workspaces', '--forget', id], { env: env() });
    expect(none.code).toBe(25);
    expect(none.stderr).toMatch(/no workspace/);
  });

  it('refuses to forget a workspace while a commit runs, and forgets it once the server is gone', async () => {
    const marker = path.join(tmp.dir, 'forget.paused');
    const ws = await checkout('ws-forget-busy', { HEXZ_TEST_PAUSE_AT: 'commit-written', HEXZ_TEST_PAUSE_MARKER: marker });
    await fs.writeFile(path.join(ws, 'c.txt'), 'c\n');
    const committing = hexz(['commit', path.join(tmp.dir, 'busy-v2.hxz'), '-C', ws], { env: env() });
    await waitFor(async () => existsSync(marker), 'the commit to reach its pause point', 60_000);
    const refused = await hexz(['workspaces', '--forget', ws], { env: env() });
    expect(refused.code).toBe(28);
    expect(refused.stderr).toMatch(/a commit is running/);
    const w = (await listed()).find((l) => l.mountpoint === ws)!;
    expect(existsSync(w.state)).toBe(true);
    // The stuck server killed: its (possibly stale) mount is cleared and the state deleted.
    process.kill(w.pid!, 'SIGKILL');
    await waitFor(async () => !(await listed()).find((l) => l.mountpoint === ws)?.pid, 'the server to die after kill -9');
    expect((await committing).code).not.toBe(0);
    const r = await hexz(['workspaces', '--forget', ws], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(w.state)).toBe(false);
    expect(await isMounted(ws)).toBe(false);
  });
});
