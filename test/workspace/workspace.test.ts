/**
 * Workspaces end to end, through the CLI as a user runs it: checkout, change things, status, commit
 * a thin delta, and the state that lets status trust stats (and not be fooled by them).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexz, hexzJson, run } from '../helpers/cli.js';
import { randomBytesSeeded, textBytes, treeDigest, writeTree } from '../helpers/data.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let src: string;
let v1: string;

interface Change {
  kind: string;
  path: string;
  from?: string;
}

const changes = (json: { changes: Change[] }) => json.changes.map((c) => `${c.kind} ${c.from ? `${c.from} -> ` : ''}${c.path}`);

beforeAll(async () => {
  tmp = await makeTempDir('hexz-ws-');
  src = path.join(tmp.dir, 'src');
  await writeTree(src, {
    'data/big.bin': randomBytesSeeded(8 * MiB, 1),
    'data/table.csv': textBytes(2 * MiB, 2),
    'notes/readme.txt': 'hello\n',
    'notes/todo.txt': 'one\ntwo\n',
    'empty/': null,
    'run.sh': '#!/bin/sh\necho hi\n',
  });
  await fs.symlink('notes/readme.txt', path.join(src, 'readme'));
  v1 = path.join(tmp.dir, 'v1.hxz');
  expect((await hexz(['pack', src, v1])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await tmp?.cleanup();
});

async function checkout(name: string, archive = v1): Promise<string> {
  const ws = path.join(tmp.dir, name);
  const r = await hexz(['checkout', '--copy', archive, ws]);
  expect(r.code, r.stderr).toBe(0);
  return ws;
}

describe('checkout and status', () => {
  it('checks out a writable copy whose status is clean, without hashing anything', async () => {
    const ws = await checkout('ws-clean');
    expect(await treeDigest(ws)).toEqual({ ...(await treeDigest(src)), '.hexz/': 'dir', '.hexz/index.jsonl': expect.any(String), '.hexz/workspace.json': expect.any(String) });
    const st = await hexzJson(['status', ws]);
    expect(st.code).toBe(0);
    expect(st.json).toMatchObject({ clean: true, changes: [], hashedFiles: 0, head: { url: `file://${v1}` } });
    // From a subdirectory too, like git.
    const sub = await hexzJson(['status'], { cwd: path.join(ws, 'notes') });
    expect(sub.json.clean).toBe(true);
  });

  it('reports added, modified, deleted, renamed, mode and type changes', async () => {
    const ws = await checkout('ws-changes');
    await fs.appendFile(path.join(ws, 'notes/todo.txt'), 'three\n');
    await fs.writeFile(path.join(ws, 'notes/new.txt'), 'new file\n');
    await fs.rename(path.join(ws, 'data/table.csv'), path.join(ws, 'data/table-renamed.csv'));
    await fs.rm(path.join(ws, 'notes/readme.txt'));
    await fs.chmod(path.join(ws, 'run.sh'), 0o755);
    await fs.rm(path.join(ws, 'readme'));
    await fs.writeFile(path.join(ws, 'readme'), 'now a file\n');
    await fs.rmdir(path.join(ws, 'empty'));
    const st = await hexzJson(['status', ws]);
    expect(st.code, st.stderr).toBe(0);
    expect(changes(st.json)).toEqual([
      'renamed data/table.csv -> data/table-renamed.csv',
      'deleted empty',
      'added notes/new.txt',
      'deleted notes/readme.txt',
      'modified notes/todo.txt',
      'typechange readme',
      'mode run.sh',
    ]);
    const text = (await hexz(['status', ws])).stdout.toString();
    expect(text).toContain('renamed:    data/table.csv → data/table-renamed.csv');
    expect(text).toContain('mode:       run.sh (644 → 755)');
  });

  it('sees a same-size change even when the mtime is put back (ctime), and remembers files it hashed', async () => {
    const ws = await checkout('ws-stat');
    const file = path.join(ws, 'data/big.bin');
    const before = await fs.stat(file);
    const fh = await fs.open(file, 'r+');
    await fh.write(Buffer.from('XY'), 0, 2, 4 * MiB);
    await fh.close();
    await fs.utimes(file, before.atime, before.mtime);
    expect(changes((await hexzJson(['status', ws])).json)).toEqual(['modified data/big.bin']);

    // A touch without a content change: hashed once, then trusted again.
    const ws2 = await checkout('ws-touch');
    await run('touch', [path.join(ws2, 'data/table.csv')]);
    await new Promise((r) => setTimeout(r, 150)); // leave the racy window (100 ms) behind
    const first = await hexzJson(['status', ws2]);
    expect(first.json).toMatchObject({ clean: true, hashedFiles: 1 });
    const second = await hexzJson(['status', ws2]);
    expect(second.json).toMatchObject({ clean: true, hashedFiles: 0 });
  });

  it('refuses what is not a workspace, and a non-empty checkout directory', async () => {
    const r = await hexz(['status', tmp.dir]);
    expect(r.code).toBe(25);
    expect(r.stderr).toMatch(/not inside a hexz workspace/);
    const full = path.join(tmp.dir, 'full');
    await writeTree(full, { 'x.txt': 'x' });
    const c = await hexz(['checkout', '--copy', v1, full]);
    expect(c.code).toBe(20);
    expect(c.stderr).toMatch(/not empty/);
  });
});

describe('commit', () => {
  it('writes a thin delta of the changes, moves HEAD, and chains', async () => {
    const ws = await checkout('ws-commit');
    await fs.appendFile(path.join(ws, 'notes/todo.txt'), 'three\n');
    await fs.writeFile(path.join(ws, 'data/extra.bin'), randomBytesSeeded(300_000, 7));
    await fs.rename(path.join(ws, 'data/table.csv'), path.join(ws, 'data/moved.csv'));
    const v2 = path.join(tmp.dir, 'ws-v2.hxz');
    const c = await hexzJson(['commit', v2, '-C', ws]);
    expect(c.code, c.stderr).toBe(0);
    // Unchanged and renamed files are taken from the base's index, not read; only new bytes are stored.
    expect(c.json.pack.reusedFiles).toBe(4); // big.bin, moved.csv, readme.txt, run.sh
    expect(c.json.pack.newBytes).toBeLessThan(300_000 + 64 * 1024);
    expect(c.json.pack.archiveBytes).toBeLessThan(400_000);
    expect(c.json.to.url).toBe(`file://${v2}`);
    expect((await hexzJson(['status', ws])).json).toMatchObject({ clean: true, head: { url: `file://${v2}` } });

    // The delta holds exactly the workspace (the state directory left out).
    const out = path.join(tmp.dir, 'ws-commit-out');
    expect((await hexz(['extract', v2, out])).code).toBe(0);
    const expected = await treeDigest(ws);
    for (const k of Object.keys(expected)) if (k.startsWith('.hexz')) delete expected[k];
    expect(await treeDigest(out)).toEqual(expected);
    expect((await hexz(['verify', v2])).code).toBe(0);

    // A second commit is a delta of the first.
    await fs.rm(path.join(ws, 'data/extra.bin'));
    const v3 = path.join(tmp.dir, 'ws-v3.hxz');
    const c3 = await hexzJson(['commit', v3], { cwd: ws });
    expect(c3.code, c3.stderr).toBe(0);
    expect(changes(c3.json)).toEqual(['deleted data/extra.bin']);
    const info = await hexzJson(['info', v3]);
    expect(info.json.bases.map((b: { url: string }) => b.url)).toEqual([`file://${v2}`, `file://${v1}`]);
  });

  it('says when there is nothing to commit (exit 26) unless --allow-empty', async () => {
    const ws = await checkout('ws-empty');
    const r = await hexz(['commit', path.join(tmp.dir, 'never.hxz'), '-C', ws]);
    expect(r.code).toBe(26);
    expect(r.stderr).toMatch(/nothing to commit/);
    await expect(fs.access(path.join(tmp.dir, 'never.hxz'))).rejects.toThrow();
    const forced = await hexzJson(['commit', path.join(tmp.dir, 'same.hxz'), '-C', ws, '--allow-empty']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.json.pack.newChunks).toBe(0);
  });

  it('keeps a single-file archive a single-file archive', async () => {
    const image = path.join(tmp.dir, 'disk.img');
    await fs.writeFile(image, randomBytesSeeded(3 * MiB, 3));
    const d1 = path.join(tmp.dir, 'disk1.hxz');
    expect((await hexz(['pack', image, d1])).code).toBe(0);
    const ws = await checkout('ws-disk', d1);
    const fh = await fs.open(path.join(ws, 'disk'), 'r+');
    await fh.write(Buffer.from('patched'), 0, 7, MiB);
    await fh.close();
    const d2 = path.join(tmp.dir, 'disk2.hxz');
    const c = await hexzJson(['commit', d2, '-C', ws]);
    expect(c.code, c.stderr).toBe(0);
    const info = await hexzJson(['info', d2]);
    expect(info.json.source.type).toBe('file');
    const cat = await hexz(['cat', d2, 'disk']);
    expect(cat.stdout.equals(await fs.readFile(path.join(ws, 'disk')))).toBe(true);

    await fs.writeFile(path.join(ws, 'other.txt'), 'x');
    const bad = await hexz(['commit', path.join(tmp.dir, 'disk3.hxz'), '-C', ws]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/exactly one file, disk/);
  });

  it('works on encrypted archives, with the key', async () => {
    const key = path.join(tmp.dir, 'ws.key');
    expect((await hexz(['keygen', key])).code).toBe(0);
    const e1 = path.join(tmp.dir, 'enc1.hxz');
    expect((await hexz(['--key-file', key, 'pack', '--encrypt', src, e1])).code).toBe(0);
    const ws = path.join(tmp.dir, 'ws-enc');
    expect((await hexz(['--key-file', key, 'checkout', '--copy', e1, ws])).code).toBe(0);
    await fs.appendFile(path.join(ws, 'notes/todo.txt'), 'more\n');
    await run('touch', [path.join(ws, 'run.sh')]);
    // Hashing needs the key (the ids are keyed); a size change alone does not.
    const noKey = await hexz(['status', ws]);
    expect(noKey.code).toBe(5);
    expect(noKey.stderr).toMatch(/encrypted: give --key-file/);
    const st = await hexzJson(['--key-file', key, 'status', ws]);
    expect(changes(st.json)).toEqual(['modified notes/todo.txt']);
    const e2 = path.join(tmp.dir, 'enc2.hxz');
    const c = await hexzJson(['--key-file', key, 'commit', e2, '-C', ws]);
    expect(c.code, c.stderr).toBe(0);
    const info = await hexzJson(['--key-file', key, 'info', e2]);
    expect(info.json).toMatchObject({ encrypted: true });
    expect(info.json.storedChunkBytes).toBeLessThan(100_000);
  });
});

describe('workspaces on S3', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['ws'] });
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it('checks out an s3:// archive and commits the delta next to it', async () => {
    const env = s3.env;
    expect((await hexz(['pack', src, 's3://ws/ds/v1.hxz'], { env })).code).toBe(0);
    const ws = path.join(tmp.dir, 'ws-s3');
    expect((await hexz(['checkout', '--copy', 's3://ws/ds/v1.hxz', ws], { env })).code).toBe(0);
    await fs.writeFile(path.join(ws, 'notes/s3.txt'), 'from a workspace\n');
    const c = await hexzJson(['commit', 's3://ws/ds/v2.hxz', '-C', ws], { env });
    expect(c.code, c.stderr).toBe(0);
    expect(c.json.to.url).toBe('s3://ws/ds/v2.hxz');
    expect(c.json.pack.bases[0].url).toBe('s3://ws/ds/v1.hxz');
    const cat = await hexz(['cat', 's3://ws/ds/v2.hxz', 'notes/s3.txt'], { env });
    expect(cat.stdout.toString()).toBe('from a workspace\n');
    expect((await hexzJson(['status', ws], { env })).json.clean).toBe(true);
  });
});
