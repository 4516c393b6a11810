/**
 * Overlay workspaces end to end, with real FUSE mounts and real tools (docs/workspaces.md): checkout
 * mounts in about no time and copies nothing; vim, sed -i, a lock file + rename, cp, rsync (when
 * installed), python mmap writes, truncate -s0, renames of files and directories, hard links and
 * symlinks work; status reads only the dirty set; commit writes a thin delta whose fresh extract
 * equals, byte for byte, the same edits applied to a plain copy; and kill -9 of the server — after
 * fsync'd edits, during a copy-up, during a commit — loses nothing and accepts no half-copied file.
 *
 * The workspace's server is its own process (spawned by `hexz checkout`), so this process may look
 * at the mount directly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson, run } from '../helpers/cli.js';
import { randomBytesSeeded, sha256File, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { startS3Server } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FUSE_DEVICE_PRESENT, forceUnmount, waitFor } from '../fuse/mount-helper.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let home: string;
let src: string;
let v1: string;
const mounted: string[] = [];

const env = () => ({ HEXZ_HOME: home });
const has = (tool: string) => {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

interface Change {
  kind: string;
  path: string;
  from?: string;
}
const changes = (json: { changes: Change[] }) => json.changes.map((c) => `${c.kind} ${c.from ? `${c.from} -> ` : ''}${c.path}`);

/** Content digests plus permission bits of every path below `root`. */
async function treeWithModes(root: string): Promise<Record<string, string>> {
  const out = await treeDigest(root);
  for (const p of Object.keys(out)) {
    const st = await fs.lstat(path.join(root, p));
    if (!st.isSymbolicLink()) out[p] += ` ${(st.mode & 0o7777).toString(8)}`;
  }
  return out;
}

async function checkout(name: string, archive = v1, extra: Record<string, string> = {}): Promise<string> {
  const ws = path.join(tmp.dir, name);
  const r = await hexz(['checkout', archive, ws], { env: { ...env(), ...extra } });
  expect(r.code, r.stderr).toBe(0);
  mounted.push(ws);
  return ws;
}

async function workspaceOf(ws: string): Promise<{ id: string; pid?: number; state: string; generation: number; head: { url: string } }> {
  const r = await hexzJson(['workspaces'], { env: env() });
  return r.json.workspaces.find((w: { mountpoint: string }) => w.mountpoint === ws);
}

/**
 * kill -9 the server of `ws` and wait until it is dead. The mount is usually dropped by fusermount's
 * auto_unmount watchdog; when something keeps it busy it stays, stale, and --resume clears it.
 */
async function killServer(ws: string, pid?: number): Promise<void> {
  pid ??= (await workspaceOf(ws)).pid;
  expect(pid).toBeGreaterThan(0);
  process.kill(pid!, 'SIGKILL');
  await waitFor(async () => !(await workspaceOf(ws)).pid, `the server of ${ws} to die after kill -9`);
}

async function resume(ws: string, extra: Record<string, string> = {}): Promise<void> {
  const r = await hexz(['checkout', '--resume', ws], { env: { ...env(), ...extra } });
  expect(r.code, r.stderr).toBe(0);
}

const sh = (cwd: string, script: string) => run('sh', ['-c', script], { cwd });

beforeAll(async () => {
  tmp = await makeTempDir('hexz-overlay-');
  home = path.join(tmp.dir, 'home');
  src = path.join(tmp.dir, 'src');
  await writeTree(src, {
    'data/big.bin': randomBytesSeeded(8 * MiB, 1),
    'data/mm.bin': randomBytesSeeded(256 * 1024, 2),
    'data/large.bin': textBytes(4 * MiB, 3),
    'notes/vim.txt': 'alpha\nline two\n',
    'notes/sed.txt': 'beta\nline two\n',
    'notes/gone.txt': 'to be deleted\n',
    'olddir/a.txt': 'in old dir\n',
    'olddir/deep/b.txt': 'deeper\n',
    'emptydir/': null,
    'run.sh': '#!/bin/sh\necho hi\n',
  });
  await fs.chmod(path.join(src, 'run.sh'), 0o644);
  await fs.symlink('notes/vim.txt', path.join(src, 'readme'));
  v1 = path.join(tmp.dir, 'v1.hxz');
  const r = await hexz(['pack', src, v1]);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const ws of mounted) {
    await hexz(['unmount', ws]).catch(() => {});
    await forceUnmount(ws);
  }
  await tmp?.cleanup();
});

/** The edits every tool makes, run in the workspace and in a plain copy alike. */
const TOOLS_SCRIPT = [
  'set -e',
  // vim: a swap file next to the file, and a write that renames the original to a backup first.
  `vim -u NONE -i NONE -N -es -c 'set swapfile directory=. backupcopy=no writebackup nobackup' -c '%s/alpha/ALPHA/' -c 'wq' notes/vim.txt`,
  "sed -i 's/beta/BETA/' notes/sed.txt",
  // git's way of replacing a file: write a lock file, then rename it over the file.
  "printf 'locked\\n' > config.lock && mv config.lock config",
  'cp data/big.bin data/big-copy.bin',
  `python3 -c "import mmap,os;f=open('data/mm.bin','r+b');m=mmap.mmap(f.fileno(),0);m[0:4]=b'MMAP';m.flush();m.close();os.fsync(f.fileno());f.close()"`,
  'truncate -s0 data/large.bin',
  'mkdir -p newdir/sub && echo hi > newdir/sub/f.txt',
  'mv olddir movedir && echo more >> movedir/deep/b.txt',
  'ln notes/sed.txt notes/hardlink.txt',
  'ln -s ../notes/vim.txt newdir/link',
  'rm notes/gone.txt',
  'rmdir emptydir',
  'chmod 755 run.sh',
  ...(has('rsync') ? ['rsync -a notes/ notes-backup/'] : []),
].join('\n');

describe.skipIf(!FUSE_DEVICE_PRESENT)('overlay workspaces (real FUSE mounts)', () => {
  it('checks out by mounting: nothing copied, state outside the tree, listed by hexz workspaces', async () => {
    const ws = await checkout('ws-open');
    expect(await treeWithModes(ws)).toEqual(await treeWithModes(src));
    const w = await workspaceOf(ws);
    expect(w).toMatchObject({ generation: 0, head: { url: `file://${v1}` } });
    expect(w.state.startsWith(path.join(home, 'workspaces'))).toBe(true);
    // Reading every byte copied nothing up.
    expect(await fs.readdir(path.join(w.state, 'gen-0', 'upper'))).toEqual([]);
    const st = await hexzJson(['status', ws], { env: env() });
    expect(st.json).toMatchObject({ clean: true, changes: [], hashedFiles: 0 });
    // From a subdirectory too.
    expect((await hexzJson(['status'], { env: env(), cwd: path.join(ws, 'notes') })).json.clean).toBe(true);
  });

  it('runs editors and tools, reports them from the dirty set, and commits a delta that extracts byte for byte', async () => {
    const ws = await checkout('ws-tools');
    const ref = path.join(tmp.dir, 'ref-tools');
    expect((await run('cp', ['-a', src, ref])).code).toBe(0);
    for (const dir of [ws, ref]) {
      const r = await sh(dir, TOOLS_SCRIPT);
      expect(r.code, `${dir}: ${r.stderr}`).toBe(0);
    }
    // vim's swap file and backup are gone again in both.
    expect(await treeWithModes(ws)).toEqual(await treeWithModes(ref));

    const st = await hexzJson(['status', ws], { env: env() });
    expect(st.code, st.stderr).toBe(0);
    const got = changes(st.json);
    for (const c of [
      'modified notes/vim.txt',
      'modified notes/sed.txt',
      'added config',
      'added data/big-copy.bin',
      'modified data/mm.bin',
      'modified data/large.bin',
      'renamed olddir -> movedir',
      'modified movedir/deep/b.txt',
      'added notes/hardlink.txt',
      'added newdir',
      'added newdir/link',
      'deleted notes/gone.txt',
      'deleted emptydir',
      'mode run.sh',
    ]) {
      expect(got).toContain(c);
    }
    // Only edited files of an unchanged size are hashed (vim, sed, mmap): never the untouched tree.
    expect(st.json.hashedFiles).toBeLessThanOrEqual(3);
    expect(st.json.hashedBytes).toBeLessThan(300 * 1024);

    const v2 = path.join(tmp.dir, 'v2-tools.hxz');
    const c = await hexzJson(['commit', v2, '-C', ws], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    // Untouched files come from HEAD's index; the copy of big.bin dedups against HEAD entirely.
    expect(c.json.pack.reusedFiles).toBeGreaterThanOrEqual(3);
    expect(c.json.pack.baseBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(c.json.pack.newBytes).toBeLessThan(MiB);
    expect(c.json.upperBytes).toBeLessThan(9 * MiB);
    const info = await hexzJson(['info', v2]);
    expect(info.json.bases?.length ?? info.json.chain?.length).toBeGreaterThanOrEqual(1);

    const out = path.join(tmp.dir, 'extract-tools');
    const x = await hexz(['extract', v2, out]);
    expect(x.code, x.stderr).toBe(0);
    expect(await treeWithModes(out)).toEqual(await treeWithModes(ref));
    // HEAD moved, the overlay is empty, the mount shows the same tree.
    expect((await hexzJson(['status', ws], { env: env() })).json).toMatchObject({ clean: true, head: { url: `file://${v2}` } });
    const w = await workspaceOf(ws);
    expect(w.generation).toBe(1);
    expect(await fs.readdir(path.join(w.state, 'gen-1', 'upper'))).toEqual([]);
    expect(await treeWithModes(ws)).toEqual(await treeWithModes(ref));

    // And it keeps working on top of the new HEAD.
    await fs.writeFile(path.join(ws, 'notes/after.txt'), 'after the commit\n');
    expect(changes((await hexzJson(['status', ws], { env: env() })).json)).toEqual(['added notes/after.txt']);
  });

  it('does not call a file copied up but unchanged "modified", and O_TRUNC copies nothing', async () => {
    const ws = await checkout('ws-touch');
    const w = await workspaceOf(ws);
    // Opened for writing and closed: a copy-up, same content.
    expect((await sh(ws, ': >> data/big.bin')).code).toBe(0);
    // Metadata only: no copy-up (GNU touch opens for writing: utime does not).
    expect((await sh(ws, `python3 -c "import os; os.utime('notes/sed.txt', (0, 1577836800)); os.chmod('notes/vim.txt', 0o644)"`)).code).toBe(0);
    const st = await hexzJson(['status', ws], { env: env() });
    expect(st.json.changes).toEqual([]);
    expect(st.json.hashedFiles).toBe(1);
    // Truncating open of a large file: an empty upper file, nothing copied.
    const before = (await fs.readdir(path.join(w.state, 'gen-0', 'upper'))).length;
    expect((await sh(ws, 'printf x > data/large.bin')).code).toBe(0);
    const uppers = await fs.readdir(path.join(w.state, 'gen-0', 'upper'));
    expect(uppers.length).toBe(before + 1);
    const sizes = await Promise.all(uppers.map(async (n) => (await fs.stat(path.join(w.state, 'gen-0', 'upper', n))).size));
    expect(sizes.sort((a, b) => a - b)).toEqual([1, 8 * MiB]);
  });

  it('keeps fsync-ed changes across kill -9 of the server, and mounts again with --resume', async () => {
    const ws = await checkout('ws-kill');
    const script = [
      'set -e',
      'mkdir kept',
      `python3 -c "import os;f=open('kept/f.txt','w');f.write('durable\\n');f.flush();os.fsync(f.fileno());f.close()"`,
      'mv notes/sed.txt notes/renamed.txt',
      'rm notes/gone.txt',
      "python3 -c \"import os;f=open('notes/vim.txt','r+');f.write('ALPHA');f.flush();os.fsync(f.fileno());f.close()\"",
    ].join('\n');
    expect((await sh(ws, script)).code).toBe(0);
    const before = await treeWithModes(ws);
    const status = changes((await hexzJson(['status', ws], { env: env() })).json);
    await killServer(ws);
    // Not mounted: status still answers, from the journal.
    const offline = await hexzJson(['status', ws], { env: env() });
    expect(offline.code, offline.stderr).toBe(0);
    expect(changes(offline.json)).toEqual(status);
    await resume(ws);
    expect(await treeWithModes(ws)).toEqual(before);
    expect(changes((await hexzJson(['status', ws], { env: env() })).json)).toEqual(status);
  });

  it('never takes a half-copied file as copied when the server is killed during a copy-up', async () => {
    const big = path.join(tmp.dir, 'src-huge');
    await writeTree(big, { 'huge.bin': randomBytesSeeded(192 * MiB, 7), 'small.txt': 'small\n' });
    const archive = path.join(tmp.dir, 'huge.hxz');
    expect((await hexz(['pack', big, archive])).code).toBe(0);
    // Copied whole (not by extent, which has nothing to interrupt): the threshold above its size.
    const ws = await checkout('ws-copyup', archive, { HEXZ_EXTENT_MIN: '1G' });
    const w = await workspaceOf(ws);
    const upper = path.join(w.state, 'gen-0', 'upper');
    // Opening for append starts the copy-up; it does not finish before the kill.
    const writer = sh(ws, 'echo appended >> huge.bin');
    let sawTemp = false;
    const until = Date.now() + 20_000;
    while (!sawTemp && Date.now() < until) {
      sawTemp = (await fs.readdir(upper)).some((n) => n.startsWith('.tmp-'));
      if (!sawTemp) await new Promise((r) => setTimeout(r, 2));
    }
    expect(sawTemp, 'the copy-up temp file appeared').toBe(true);
    // Reads of untouched files do not wait behind the copy: this one is answered while it runs.
    expect(await fs.readFile(path.join(ws, 'small.txt'), 'utf8')).toBe('small\n');
    expect((await fs.readdir(upper)).some((n) => n.startsWith('.tmp-')), 'the copy-up was still running').toBe(true);
    await killServer(ws, w.pid);
    await writer;
    await resume(ws, { HEXZ_EXTENT_MIN: '1G' });
    // The temp file is gone, nothing is in the upper layer, and the file is HEAD's.
    expect(await fs.readdir(upper)).toEqual([]);
    expect(await sha256File(path.join(ws, 'huge.bin'))).toBe(await sha256File(path.join(big, 'huge.bin')));
    expect((await hexzJson(['status', ws], { env: env() })).json.clean).toBe(true);
  });

  it('rolls back cleanly when the server is killed during a commit, and commits again', async () => {
    const ws = await checkout('ws-commit-kill');
    const payload = path.join(tmp.dir, 'payload.bin');
    await fs.writeFile(payload, randomBytesSeeded(96 * MiB, 9));
    expect((await run('cp', [payload, path.join(ws, 'payload.bin')])).code).toBe(0);
    expect((await sh(ws, 'echo edited > notes/sed.txt')).code).toBe(0);
    const outDir = path.join(tmp.dir, 'commits');
    await fs.mkdir(outDir);
    const out = path.join(outDir, 'v2.hxz');
    const w = await workspaceOf(ws);
    const committing = hexz(['commit', out, '-C', ws], { env: env() });
    let sawTemp = false;
    const until = Date.now() + 30_000;
    while (!sawTemp && Date.now() < until) {
      sawTemp = (await fs.readdir(outDir)).some((n) => n.endsWith('.tmp'));
      if (!sawTemp) await new Promise((r) => setTimeout(r, 2));
    }
    expect(sawTemp, 'the commit had started writing').toBe(true);
    await killServer(ws, w.pid);
    expect((await committing).code).not.toBe(0);
    expect(existsSync(out)).toBe(false);
    await resume(ws);
    const again = await workspaceOf(ws);
    expect(again).toMatchObject({ generation: 0, head: { url: `file://${v1}` } });
    expect(changes((await hexzJson(['status', ws], { env: env() })).json)).toEqual(['modified notes/sed.txt', 'added payload.bin']);
    const c = await hexz(['commit', out, '-C', ws], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    const x = path.join(tmp.dir, 'extract-commit-kill');
    expect((await hexz(['extract', out, x])).code).toBe(0);
    expect(await sha256File(path.join(x, 'payload.bin'))).toBe(await sha256File(payload));
    expect(await fs.readFile(path.join(x, 'notes/sed.txt'), 'utf8')).toBe('edited\n');
    expect(await treeWithModes(x)).toEqual(await treeWithModes(ws));
  });

  it('copies a large file up by extent: a 1-byte edit costs about one extent to keep, read and commit', async () => {
    const big = path.join(tmp.dir, 'src-image');
    const image = randomBytesSeeded(80 * MiB, 11);
    await writeTree(big, { 'disk.img': image, 'note.txt': 'n\n' });
    const archive = path.join(tmp.dir, 'image.hxz');
    expect((await hexz(['pack', big, archive])).code).toBe(0);
    const ws = await checkout('ws-extent', archive);
    const w = await workspaceOf(ws);
    const upper = path.join(w.state, 'gen-0', 'upper');
    // One byte in the middle, and a python mmap write near the end; both fsync'd.
    const script = [
      'set -e',
      "printf Z | dd of=disk.img bs=1 seek=41000000 conv=notrunc,fsync status=none",
      `python3 -c "import mmap,os;f=open('disk.img','r+b');m=mmap.mmap(f.fileno(),0);m[${79 * MiB}:${79 * MiB + 4}]=b'MMAP';m.flush();m.close();os.fsync(f.fileno());f.close()"`,
    ].join('\n');
    const r = await sh(ws, script);
    expect(r.code, r.stderr).toBe(0);
    const expected = Buffer.from(image);
    expected[41_000_000] = 'Z'.charCodeAt(0);
    expected.write('MMAP', 79 * MiB);
    // The upper file is sparse: two extents of data, not 80 MiB.
    const names = await fs.readdir(upper);
    const file = names.find((n) => !n.endsWith('.map'))!;
    expect(names).toContain(`${file}.map`);
    expect((await fs.stat(path.join(upper, file))).blocks * 512).toBeLessThanOrEqual(3 * MiB);
    // A kill -9 loses none of it: the map was synced with the data.
    await killServer(ws);
    await resume(ws);
    expect((await fs.readFile(path.join(ws, 'disk.img'))).equals(expected)).toBe(true);

    const st = await hexzJson(['status', ws], { env: env() });
    expect(changes(st.json)).toEqual(['modified disk.img']);
    expect(st.json.hashedBytes).toBeLessThanOrEqual(4 * MiB);
    const out = path.join(tmp.dir, 'image-v2.hxz');
    const c = await hexzJson(['commit', out, '-C', ws], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    expect(c.json.upperBytes).toBeLessThanOrEqual(4 * MiB);
    expect(c.json.pack.newBytes).toBeLessThanOrEqual(4 * 256 * 1024); // a few chunks at most
    const x = path.join(tmp.dir, 'extract-image');
    expect((await hexz(['extract', out, x])).code).toBe(0);
    expect((await fs.readFile(path.join(x, 'disk.img'))).equals(expected)).toBe(true);
  });

  it('keeps an encrypted archive encrypted and a single-file archive a single file', async () => {
    const key = path.join(tmp.dir, 'ws.key');
    expect((await hexz(['keygen', key])).code).toBe(0);
    const e1 = path.join(tmp.dir, 'enc1.hxz');
    expect((await hexz(['--key-file', key, 'pack', '--encrypt', src, e1])).code).toBe(0);
    const ews = path.join(tmp.dir, 'ws-enc');
    const r = await hexz(['--key-file', key, 'checkout', e1, ews], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    mounted.push(ews);
    await fs.appendFile(path.join(ews, 'notes/sed.txt'), 'secret\n');
    // The server remembered the key file: status and commit need no key of their own.
    expect(changes((await hexzJson(['status', ews], { env: env() })).json)).toEqual(['modified notes/sed.txt']);
    const e2 = path.join(tmp.dir, 'enc2.hxz');
    const c = await hexzJson(['commit', e2, '-C', ews], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    expect((await hexzJson(['--key-file', key, 'info', e2])).json).toMatchObject({ encrypted: true });
    const cat = await hexz(['--key-file', key, 'cat', e2, 'notes/sed.txt']);
    expect(cat.stdout.toString()).toBe('beta\nline two\nsecret\n');

    const img = path.join(tmp.dir, 'one.img');
    await fs.writeFile(img, randomBytesSeeded(3 * MiB, 21));
    const s1 = path.join(tmp.dir, 'one.hxz');
    expect((await hexz(['pack', img, s1])).code).toBe(0);
    const sws = await checkout('ws-single', s1);
    expect(await fs.readdir(sws)).toEqual(['disk']);
    expect((await sh(sws, 'printf ABCD | dd of=disk bs=1 seek=1000 conv=notrunc status=none')).code).toBe(0);
    const s2 = path.join(tmp.dir, 'one-v2.hxz');
    const sc = await hexzJson(['commit', s2, '-C', sws], { env: env() });
    expect(sc.code, sc.stderr).toBe(0);
    expect(sc.json.pack.kind).toBe('file');
    const expected = await fs.readFile(img);
    expected.write('ABCD', 1000);
    expect((await hexz(['cat', s2, 'disk'])).stdout.equals(expected)).toBe(true);
  });

  it('works over an s3:// archive: reads through the mount, commits the delta next to it', async () => {
    const s3 = await startS3Server({ buckets: ['ws'] });
    try {
      const e = { ...env(), ...s3.env };
      expect((await hexz(['pack', src, 's3://ws/ds/v1.hxz'], { env: s3.env })).code).toBe(0);
      const ws = path.join(tmp.dir, 'ws-s3');
      const r = await hexz(['checkout', 's3://ws/ds/v1.hxz', ws], { env: e });
      expect(r.code, r.stderr).toBe(0);
      mounted.push(ws);
      expect(await sha256File(path.join(ws, 'data/big.bin'))).toBe(await sha256File(path.join(src, 'data/big.bin')));
      await fs.writeFile(path.join(ws, 'notes/s3.txt'), 'from a workspace\n');
      await fs.rename(path.join(ws, 'olddir'), path.join(ws, 'newdir'));
      const c = await hexzJson(['commit', 's3://ws/ds/v2.hxz', '-C', ws], { env: e });
      expect(c.code, c.stderr).toBe(0);
      expect(c.json.to.url).toBe('s3://ws/ds/v2.hxz');
      expect(c.json.upperBytes).toBe('from a workspace\n'.length);
      const cat = await hexz(['cat', 's3://ws/ds/v2.hxz', 'newdir/deep/b.txt'], { env: s3.env });
      expect(cat.stdout.toString()).toBe('deeper\n');
      expect((await hexzJson(['status', ws], { env: e })).json.clean).toBe(true);
      await hexz(['unmount', ws]);
    } finally {
      await s3.stop();
    }
  });

  it('refuses a second mount of a workspace and a commit while a file is open for writing', async () => {
    const ws = await checkout('ws-busy');
    const again = await hexz(['checkout', '--resume', ws], { env: env() });
    expect(again.code).toBe(0);
    expect(again.stdout.toString()).toMatch(/already mounted/);
    // A writer holds a file open (sleep keeps the descriptor) while commit is asked for.
    const holder = sh(ws, 'exec 3>>notes/sed.txt; echo x >&3; sleep 3');
    await new Promise((r) => setTimeout(r, 500));
    const c = await hexz(['commit', path.join(tmp.dir, 'busy.hxz'), '-C', ws], { env: env() });
    expect(c.code).toBe(28);
    expect(c.stderr).toMatch(/open for writing/);
    await holder;
    expect((await hexz(['commit', path.join(tmp.dir, 'busy.hxz'), '-C', ws], { env: env() })).code).toBe(0);
  });
});
