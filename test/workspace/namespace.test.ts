/**
 * The overlay's pure core without a mount: the namespace over an in-memory HEAD (every operation,
 * the errors they answer, replay giving the same tree), the journal's durability format (a torn
 * or damaged tail is cut off, never misread) and its compaction (a snapshot of the tree replays as
 * the same tree, and the records after it apply the same way).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileEntry } from '@hexz/src/format/file-table.js';
import type { ChunkRef } from '@hexz/src/format/chunk-index.js';
import { planFile } from '@hexz/src/workspace/overlay/extents.js';
import { Journal, parseJournal } from '@hexz/src/workspace/overlay/journal.js';
import { acquireLock, cleanGenerations, createWorkspaceDir, generationDir, readConfig, upperDir, writeConfig, type OverlayConfig } from '@hexz/src/workspace/overlay/store.js';
import { Namespace, RENAME_EXCHANGE, RENAME_NOREPLACE, type Lower, type NamespaceRecord } from '@hexz/src/workspace/overlay/namespace.js';
import { SnapshotLoader, snapshotRecords, type SnapshotRecord } from '@hexz/src/workspace/overlay/snapshot.js';
import { makeTempDir } from '../helpers/tmp.js';

const HEAD: Array<[string, FileEntry['type'], number?]> = [
  ['', 'directory'],
  ['a', 'directory'],
  ['a/x.txt', 'file', 10],
  ['a/y.txt', 'file', 20],
  ['a/sub', 'directory'],
  ['a/sub/z.txt', 'file', 30],
  ['b.txt', 'file', 40],
  ['empty', 'directory'],
  ['link', 'symlink'],
];

function lowerOf(): Lower {
  const entries = new Map<string, FileEntry>();
  for (const [p, type, size] of HEAD) {
    entries.set(p, { path: p, type, mode: type === 'directory' ? 0o755 : 0o644, mtimeNs: 1_000_000_000_000n, size: size ?? 0, logical: 0, firstRef: 0, refCount: 0, target: type === 'symlink' ? 'b.txt' : undefined });
  }
  return {
    lookup: async (p) => entries.get(p),
    list: async (dir) => [...entries.values()].filter((e) => e.path !== dir && (dir === '' ? !e.path.includes('/') : e.path.startsWith(`${dir}/`) && !e.path.slice(dir.length + 1).includes('/'))),
  };
}

/** Every path now, with what it shows: a HEAD path (`=a/x.txt`), an upper file (`+u1`), a directory. */
async function tree(ns: Namespace): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string) => {
    const f = await ns.find(p);
    if (!f) throw new Error(`lost ${p}`);
    const node = f.node;
    const kind = node ? node.kind : f.lower.type === 'directory' ? 'dir' : f.lower.type;
    if (kind === 'dir') {
      if (p) out.push(`${p}/`);
      const dir = node && node.kind === 'dir' ? node : await ns.materialize(p);
      for (const c of (await ns.list(dir as never)).map((l) => l.name).sort()) await walk(p ? `${p}/${c}` : c);
    } else if (node?.kind === 'file') out.push(`${p} ${node.upper ? `+${node.upper}` : `=${node.base}`}`);
    else if (node?.kind === 'symlink') out.push(`${p} -> ${node.target}`);
    else out.push(`${p} =${f.lower!.path}`);
  };
  await walk('');
  return out;
}

const t = 1;
async function applied(records: NamespaceRecord[]): Promise<Namespace> {
  const ns = new Namespace(lowerOf(), { mode: 0o755, mtimeMs: 0 });
  for (const r of records) await ns.apply(r);
  return ns;
}

describe('overlay namespace', () => {
  it('renames a HEAD directory without touching what is below it', async () => {
    const ns = await applied([{ op: 'rename', from: 'a', to: 'c', flags: 0, t }]);
    // Only the renamed directory is attached, and a whiteout at its old name: the dirty set.
    expect([...ns.root.children.keys()].sort()).toEqual(['a', 'c']);
    expect(ns.root.children.get('a')).toBeNull();
    expect(await tree(ns)).toEqual(['b.txt =b.txt', 'c/', 'c/sub/', 'c/sub/z.txt =a/sub/z.txt', 'c/x.txt =a/x.txt', 'c/y.txt =a/y.txt', 'empty/', 'link =link']);
  });

  it('create, unlink, mkdir, rmdir, symlink, link, content, and the whiteouts they leave', async () => {
    const ns = await applied([
      { op: 'create', path: 'a/new.txt', upper: 'u1', mode: 0o600, t },
      { op: 'unlink', path: 'a/x.txt', t },
      { op: 'mkdir', path: 'd', mode: 0o700, t },
      { op: 'symlink', path: 'd/l', target: '../b.txt', t },
      { op: 'link', from: 'a/y.txt', to: 'd/y-link', t },
      { op: 'content', path: 'a/y.txt', upper: 'u2', from: 'a/y.txt', t },
      { op: 'rmdir', path: 'empty', t },
    ]);
    expect(await tree(ns)).toEqual(['a/', 'a/new.txt +u1', 'a/sub/', 'a/sub/z.txt =a/sub/z.txt', 'a/y.txt +u2', 'b.txt =b.txt', 'd/', 'd/l -> ../b.txt', 'd/y-link +u2', 'link =link']);
  });

  it('answers the errors the kernel expects', async () => {
    const cases: Array<[NamespaceRecord[], NamespaceRecord, string]> = [
      [[], { op: 'rmdir', path: 'a', t }, 'NOT_EMPTY'],
      [[], { op: 'unlink', path: 'a', t }, 'NOT_A_FILE'],
      [[], { op: 'rmdir', path: 'b.txt', t }, 'NOT_A_DIRECTORY'],
      [[], { op: 'mkdir', path: 'a', mode: 0o755, t }, 'EXISTS'],
      [[], { op: 'create', path: 'nope/f', upper: 'u', mode: 0o644, t }, 'PATH_NOT_FOUND'],
      [[{ op: 'unlink', path: 'b.txt', t }], { op: 'unlink', path: 'b.txt', t }, 'PATH_NOT_FOUND'],
      [[], { op: 'rename', from: 'b.txt', to: 'a', flags: 0, t }, 'NOT_A_FILE'],
      [[], { op: 'rename', from: 'a', to: 'a/sub/a', flags: 0, t }, 'INVALID_ARGUMENT'],
      [[], { op: 'rename', from: 'a/x.txt', to: 'b.txt', flags: RENAME_NOREPLACE, t }, 'EXISTS'],
      [[], { op: 'link', from: 'a', to: 'a2', t }, 'PERMISSION'],
    ];
    for (const [before, r, code] of cases) {
      const ns = await applied(before);
      await expect(ns.apply(r), JSON.stringify(r)).rejects.toMatchObject({ code });
    }
  });

  it('rename over a file, rename-exchange, and a recreated directory that is opaque', async () => {
    const ns = await applied([
      { op: 'rename', from: 'a/x.txt', to: 'b.txt', flags: 0, t },
      { op: 'rename', from: 'a/y.txt', to: 'link', flags: RENAME_EXCHANGE, t },
      { op: 'unlink', path: 'a/sub/z.txt', t },
      { op: 'rmdir', path: 'a/sub', t },
      { op: 'mkdir', path: 'a/sub', mode: 0o755, t },
    ]);
    expect(await tree(ns)).toEqual(['a/', 'a/sub/', 'a/y.txt -> b.txt', 'b.txt =a/x.txt', 'empty/', 'link =a/y.txt']);
  });

  it('replays its records into the same tree', async () => {
    const records: NamespaceRecord[] = [
      { op: 'rename', from: 'a', to: 'c', flags: 0, t },
      { op: 'create', path: 'c/sub/n', upper: 'u9', mode: 0o644, t },
      { op: 'attr', path: 'c/x.txt', mode: 0o600, t },
      { op: 'rename', from: 'c/sub', to: 'sub2', flags: 0, t },
    ];
    const live = await applied(records);
    const again = await applied(JSON.parse(JSON.stringify(records)));
    expect(await tree(again)).toEqual(await tree(live));
    expect(await tree(live)).toContain('sub2/n +u9');
  });
});

/** A namespace rebuilt from snapshot records (as read back from a journal: through JSON). */
function loaded(records: SnapshotRecord[]): Namespace {
  const ns = new Namespace(lowerOf(), { mode: 0o755, mtimeMs: 0 });
  const loader = new SnapshotLoader(ns);
  for (const r of JSON.parse(JSON.stringify(records)) as SnapshotRecord[]) loader.add(r);
  loader.finish();
  return ns;
}

describe('journal compaction (snapshot of the tree)', () => {
  /** Every kind of change: renamed HEAD directories, whiteouts, opaque dirs, hard links, exchange, attrs. */
  const history: NamespaceRecord[] = [
    { op: 'rename', from: 'a', to: 'c', flags: 0, t },
    { op: 'create', path: 'c/sub/n', upper: 'u1', mode: 0o644, t: 2 },
    { op: 'content', path: 'b.txt', upper: 'u2', from: 'b.txt', extents: true, t: 3 },
    { op: 'link', from: 'b.txt', to: 'c/hard', t: 4 },
    { op: 'unlink', path: 'c/x.txt', t: 5 },
    { op: 'rmdir', path: 'empty', t: 6 },
    { op: 'mkdir', path: 'empty', mode: 0o700, t: 7 },
    { op: 'symlink', path: 'empty/l', target: '../b.txt', t: 8 },
    { op: 'attr', path: 'c/y.txt', mode: 0o600, mtimeMs: 12345, uid: 7, gid: 8, t: 9 },
    { op: 'rename', from: 'c/sub', to: 'sub2', flags: 0, t: 10 },
    { op: 'create', path: 'tmp1', upper: 'u3', mode: 0o600, t: 11 },
    { op: 'rename', from: 'tmp1', to: 'link', flags: RENAME_EXCHANGE, t: 12 },
    { op: 'unlink', path: 'link', t: 13 },
  ];

  it('replays as the same tree, names, whiteouts and hard links included', async () => {
    const live = await applied(history);
    const snap = snapshotRecords(live);
    const again = loaded(snap);
    expect(await tree(again)).toEqual(await tree(live));
    expect(snapshotRecords(again)).toEqual(snap);
    // The hard link is still one node with two names (its first name first), and the whiteouts hold.
    const hard = (await again.find('c/hard'))!.node!;
    expect(hard).toBe((await again.find('b.txt'))!.node);
    expect(again.pathOf(hard)).toBe('b.txt');
    expect(await again.find('c/x.txt')).toBeUndefined();
    expect(await again.find('a')).toBeUndefined();
    expect(await tree(live)).toContain('tmp1 -> b.txt');
  });

  it('applies the records that follow it as the uncompacted journal does', async () => {
    const after: NamespaceRecord[] = [
      { op: 'unlink', path: 'b.txt', t: 20 },
      { op: 'rename', from: 'sub2', to: 'c/sub', flags: 0, t: 21 },
      { op: 'create', path: 'c/x.txt', upper: 'u4', mode: 0o644, t: 22 },
      { op: 'rename', from: 'c', to: 'a', flags: 0, t: 23 },
    ];
    const full = await applied([...history, ...after]);
    const compacted = loaded(snapshotRecords(await applied(history)));
    for (const r of after) await compacted.apply(r);
    expect(await tree(compacted)).toEqual(await tree(full));
    expect(snapshotRecords(compacted)).toEqual(snapshotRecords(full));
  });

  it('refuses an inconsistent snapshot (a name in a node it does not have)', () => {
    const snap = snapshotRecords(new Namespace(lowerOf(), { mode: 0o755, mtimeMs: 0 }));
    const bad = [{ ...snap[0], kind: 'dir', children: [['x', 5]] }] as SnapshotRecord[];
    expect(() => loaded(bad)).toThrow(expect.objectContaining({ code: 'CORRUPT' }));
  });
});

describe('overlay journal', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-journal-');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('appends durably in order, groups concurrent appends, and reads them back', async () => {
    const file = path.join(tmp.dir, 'j1');
    const { journal, records } = await Journal.open(file);
    expect(records).toEqual([]);
    const rs: NamespaceRecord[] = Array.from({ length: 50 }, (_, i) => ({ op: 'mkdir', path: `d${i}`, mode: 0o755, t: i }));
    await Promise.all(rs.map((r) => journal.append(r)));
    await journal.close();
    const again = await Journal.open(file);
    expect(again.records).toEqual(rs);
    await again.journal.close();
  });

  it('cuts off a torn or damaged tail and keeps appending after the valid prefix', async () => {
    const file = path.join(tmp.dir, 'j2');
    const { journal } = await Journal.open(file);
    await journal.append({ op: 'mkdir', path: 'ok', mode: 0o755, t });
    await journal.close();
    const good = await fs.readFile(file);
    // A line without its newline (never synced), and one whose checksum does not match.
    await fs.appendFile(file, '00000000 {"op":"mkdir","path":"torn"');
    expect(parseJournal(await fs.readFile(file)).records).toHaveLength(1);
    await fs.writeFile(file, Buffer.concat([good, Buffer.from('deadbeef {"op":"unlink","path":"ok","t":1}\n')]));
    const reopened = await Journal.open(file);
    expect(reopened.records).toEqual([{ op: 'mkdir', path: 'ok', mode: 0o755, t }]);
    expect((await fs.readFile(file)).length).toBe(good.length);
    await reopened.journal.append({ op: 'mkdir', path: 'next', mode: 0o755, t });
    await reopened.journal.close();
    expect((await Journal.read(file)).map((r) => (r as { path: string }).path)).toEqual(['ok', 'next']);
  });
  it('rewrites itself durably (compaction) and appends after the new content', async () => {
    const file = path.join(tmp.dir, 'j3');
    const { journal } = await Journal.open(file);
    await Promise.all(Array.from({ length: 20 }, (_, i) => journal.append({ op: 'mkdir', path: `d${i}`, mode: 0o755, t: i })));
    const snap = snapshotRecords(await applied([{ op: 'mkdir', path: 'kept', mode: 0o755, t }]));
    await journal.rewrite(snap);
    expect(journal.appended).toBe(0);
    await journal.append({ op: 'mkdir', path: 'after', mode: 0o755, t });
    await journal.close();
    expect(await Journal.read(file)).toEqual([...snap, { op: 'mkdir', path: 'after', mode: 0o755, t }]);
    // A compaction cut short by a crash leaves its temp file: the journal is the old one, the temp goes.
    await fs.writeFile(`${file}.compact.tmp`, 'partial');
    const reopened = await Journal.open(file);
    expect(reopened.records).toHaveLength(snap.length + 1);
    expect(existsSync(`${file}.compact.tmp`)).toBe(false);
    await reopened.journal.close();
  });
});

describe('extent plans (planFile)', () => {
  const ref = (raw: number, n: number): ChunkRef => ({ id: new Uint8Array(32).fill(n), logical: 0, offset: 0, stored: raw, raw, owner: 1, codec: 0, hole: false });
  const refs = [ref(100, 1), ref(100, 2), ref(100, 3), ref(100, 4)];
  const plan = (dirty: Array<[number, number]>, size: number) =>
    planFile(refs, dirty, size).map((p) => (p.kind === 'refs' ? `refs ${p.refs.map((r) => r.id[0]).join(',')}` : `read ${p.start}-${p.end}`));

  it('keeps HEAD chunks no changed byte touches and reads from chunk boundary to chunk boundary', () => {
    expect(plan([], 400)).toEqual(['refs 1,2,3,4']);
    expect(plan([[150, 151]], 400)).toEqual(['refs 1', 'read 100-200', 'refs 3,4']);
    expect(plan([[99, 101]], 400)).toEqual(['read 0-200', 'refs 3,4']);
    expect(plan([[150, 151], [250, 260]], 400)).toEqual(['refs 1', 'read 100-300', 'refs 4']);
    // Shrunk inside chunk 3, grown past HEAD's end.
    expect(plan([], 250)).toEqual(['refs 1,2', 'read 200-250']);
    expect(plan([[400, 450]], 450)).toEqual(['refs 1,2,3,4', 'read 400-450']);
  });
});

describe('workspace state directory', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-wsstate-');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });
  const config = (id: string): OverlayConfig => ({
    version: 1,
    id,
    mountpoint: '/nowhere',
    generation: 0,
    flags: {},
    head: { url: 'file:///a.hxz', uuid: 'u', rootHash: 'h' },
    kind: 'directory',
    encrypted: false,
    chunking: { algorithm: 1, normalization: 2, min: 16384, avg: 65536, max: 262144, seed: '0' } as never,
    checkedOut: '',
    updated: '',
  });

  it('after a crash around the commit point, keeps only the generation config.json names', async () => {
    const { dir, config: c } = await createWorkspaceDir(path.join(tmp.dir, 'home'), config);
    // Killed after the new config was written, before the old generation was deleted:
    await fs.mkdir(upperDir(dir, 1), { recursive: true });
    await fs.writeFile(path.join(upperDir(dir, 0), 'stale'), 'x');
    await fs.writeFile(path.join(upperDir(dir, 1), '.tmp-copy'), 'half');
    await writeConfig(dir, { ...c, generation: 1 });
    const now = await readConfig(dir);
    await cleanGenerations(dir, now.generation);
    expect(existsSync(generationDir(dir, 0))).toBe(false);
    expect(await fs.readdir(upperDir(dir, 1))).toEqual([]);
  });

  it('lets one process hold the lock, and takes over the lock of a dead one', async () => {
    const { dir } = await createWorkspaceDir(path.join(tmp.dir, 'home'), config);
    const release = await acquireLock(dir, 'mount');
    await expect(acquireLock(dir, 'mount again')).rejects.toMatchObject({ code: 'WORKSPACE_BUSY' });
    await release();
    await fs.writeFile(path.join(dir, 'lock'), '999999999 1\n'); // a pid that does not exist
    const again = await acquireLock(dir, 'mount');
    await again();
  });
});
