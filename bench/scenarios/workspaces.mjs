// Workspaces (docs/workspaces.md): a writable FUSE overlay (`hexz checkout`) against the materialised
// copy (`hexz checkout --copy`). Bars (issue 16): checkout of any size in about a second and a few
// MiB of disk; status after 3 edits hashes at most 3 files; commit after a 1-byte edit of a large file
// reads and stores about one chunk.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { artifact } from '../lib/artifacts.mjs';
import { fmtSize } from '../lib/datasets.mjs';
import { measureTools, MiB, noteFor, usage } from '../lib/common.mjs';
import { runProcess } from '../lib/measure.mjs';
import { registerCleanup } from '../lib/cleanup.mjs';
import { addRow, table } from '../lib/report.mjs';
import { fuseUnmount, hexz } from '../lib/tools.mjs';

export const title = '8. Workspaces: checkout, status and commit (overlay vs --copy)';

/** Allocated bytes below `p` (du: what the disk really holds, holes excluded). */
async function diskUsed(p) {
  const r = await runProcess('du', ['-sk', p], { stdout: 'capture', allowFail: true });
  return Number(String(r.stdout).split(/\s/)[0]) * 1024 || 0;
}

/**
 * What the three measurements run on. At the sizes (`--size full`: the preset has a workspace
 * tree) one archive of 10 GiB or more holds them all: 100,000 small files, a 4 GiB file and
 * incompressible filler. Smaller presets use the disk image and the small-files tree, which other
 * scenarios build anyway.
 */
async function subjects(ctx) {
  const ws = await ctx.data.workspace();
  if (ws) {
    const a = await artifact(ctx, 'workspace', 'hexz', ws.dir);
    const archiveBytes = (await fs.stat(a.archive)).size;
    const label = `the workspace tree (${fmtSize(archiveBytes)} archive, ${ws.files.toLocaleString('en-US')} files)`;
    return {
      checkout: { archive: a.archive, label },
      status: { archive: a.archive, source: path.join(ws.dir, ws.smallDir), prefix: `${ws.smallDir}/`, label: `${ws.files.toLocaleString('en-US')} files` },
      commit: { archive: a.archive, file: ws.largeFile, bytes: ws.largeSize, label: `${ws.largeFile} (${fmtSize(ws.largeSize)}) in ${label}` },
      archiveBytes,
    };
  }
  const disk = await ctx.data.disk();
  const small = await ctx.data.small();
  const image = await artifact(ctx, 'disk', 'hexz', disk.v1, true);
  const tree = await artifact(ctx, 'small-files', 'hexz', small.dir);
  return {
    checkout: { archive: image.archive, label: `the disk image (${(disk.bytes / MiB).toFixed(0)} MiB logical)` },
    status: { archive: tree.archive, source: small.dir, prefix: '', label: `small-files (${small.files} files)` },
    commit: { archive: image.archive, file: 'disk', bytes: disk.bytes, label: `the disk image (${(disk.bytes / MiB).toFixed(0)} MiB)` },
    archiveBytes: (await fs.stat(image.archive)).size,
  };
}

export async function run(ctx) {
  if (!existsSync('/dev/fuse')) return { skipped: '/dev/fuse is missing, so hexz checkout can only make copies (--copy)', tables: [] };
  const out = await ctx.scratch('workspaces');
  const home = path.join(out, 'home');
  const env = { HEXZ_HOME: home };
  const subj = await subjects(ctx);
  const mounts = [];
  registerCleanup(async () => {
    for (const m of mounts) await fuseUnmount(m);
  });
  let n = 0;
  const fresh = (name) => path.join(out, `${name}-${n++}`);
  const overlay = async (archive) => {
    const mp = fresh('ws');
    const r = await hexz(['--json', 'checkout', archive, mp], { env, stdout: 'capture' });
    if (r.code !== 0) throw new Error(`checkout failed: ${r.stderr}`);
    mounts.push(mp);
    return { mp, r, state: JSON.parse(r.stdout).state };
  };
  const drop = async (mp) => {
    await hexz(['unmount', mp], { allowFail: true });
  };

  // 1. Checkout of the disk image: time until the workspace is usable, and disk used.
  ctx.log('workspaces: checkout');
  const checkout = await measureTools(ctx, [
    {
      name: 'hexz checkout (overlay)',
      run: async () => {
        const { mp, r, state } = await overlay(subj.checkout.archive);
        const used = await diskUsed(state);
        await drop(mp);
        return { ...usage(r), used };
      },
    },
    {
      name: 'hexz checkout --copy',
      run: async () => {
        const dir = fresh('copy');
        const r = await hexz(['checkout', '--copy', subj.checkout.archive, dir], { env });
        const used = await diskUsed(dir);
        await fs.rm(dir, { recursive: true, force: true });
        return { ...usage(r), used };
      },
    },
  ]);
  const t1 = table(`checkout of ${subj.checkout.label}`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'used', label: 'disk used', unit: 'bytes', better: 'lower' },
    { key: 'maxRssBytes', label: 'peak RSS (the CLI)', unit: 'bytes', better: 'lower' },
  ], { reference: 'hexz checkout (overlay)' });
  for (const [name, r] of checkout) addRow(t1, name, r.median ?? {}, noteFor(r));

  // 2. Status after 3 edits in the small-files tree.
  ctx.log('workspaces: status after 3 edits');
  const first = (await fs.readdir(subj.status.source)).sort()[0];
  const names = (await fs.readdir(path.join(subj.status.source, first))).sort().slice(0, 3).map((f) => `${subj.status.prefix}${first}/${f}`);
  // Overwritten in place (4 bytes no generated file starts with): the sizes stay, so status must
  // compare content — the case that hashes; an append would be told by its size alone.
  const edit = (dir) => runProcess('sh', ['-c', names.map((f) => `printf '\\001\\002\\003\\004' | dd of='${f}' conv=notrunc status=none`).join(' && ')], { cwd: dir });
  const status = await measureTools(ctx, [
    {
      name: 'hexz status (overlay)',
      run: async () => {
        const { mp } = await overlay(subj.status.archive);
        await edit(mp);
        const r = await hexz(['--json', 'status', mp], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await drop(mp);
        return { ...usage(r), hashed: j.hashedFiles, changes: j.changes.length };
      },
    },
    {
      name: 'hexz status (--copy)',
      run: async () => {
        const dir = fresh('copy');
        await hexz(['checkout', '--copy', subj.status.archive, dir], { env });
        await edit(dir);
        const r = await hexz(['--json', 'status', dir], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await fs.rm(dir, { recursive: true, force: true });
        return { ...usage(r), hashed: j.hashedFiles, changes: j.changes.length };
      },
    },
  ]);
  const t2 = table(`status after 3 same-size edits in ${subj.status.label}`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'hashed', label: 'files hashed', unit: '', better: 'lower' },
    { key: 'changes', label: 'changes', unit: '' },
  ], { reference: 'hexz status (overlay)' });
  for (const [name, r] of status) addRow(t2, name, r.median ?? {}, noteFor(r));

  // 3. Commit after a 1-byte edit in the middle of the disk image.
  ctx.log('workspaces: commit after a 1-byte edit');
  const middle = Math.floor(subj.commit.bytes / 2);
  const poke = (file) => runProcess('sh', ['-c', `printf Z | dd of='${file}' bs=1 seek=${middle} conv=notrunc status=none`]);
  const commit = await measureTools(ctx, [
    {
      name: 'hexz commit (overlay)',
      run: async () => {
        const { mp } = await overlay(subj.commit.archive);
        await poke(path.join(mp, subj.commit.file));
        const archive = fresh('delta') + '.hxz';
        const r = await hexz(['--json', 'commit', archive, '-C', mp], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await drop(mp);
        return { ...usage(r), read: j.upperBytes, stored: j.pack.newBytes, delta: (await fs.stat(archive)).size };
      },
    },
    {
      name: 'hexz commit (--copy)',
      run: async () => {
        const dir = fresh('copy');
        await hexz(['checkout', '--copy', subj.commit.archive, dir], { env });
        await poke(path.join(dir, subj.commit.file));
        const archive = fresh('delta') + '.hxz';
        const r = await hexz(['--json', 'commit', archive, '-C', dir], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await fs.rm(dir, { recursive: true, force: true });
        // Files whose stat changed are read whole; the others are taken from the base's index.
        const read = j.changes.filter((c) => c.kind === 'modified' || c.kind === 'added').reduce((a, c) => a + (c.size ?? 0), 0);
        return { ...usage(r), read, stored: j.pack.newBytes, delta: (await fs.stat(archive)).size };
      },
    },
  ]);
  const t3 = table(`commit after a 1-byte edit of ${subj.commit.label}`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'read', label: 'bytes read from the workspace', unit: 'bytes', better: 'lower' },
    { key: 'stored', label: 'new chunk bytes', unit: 'bytes', better: 'lower' },
    { key: 'delta', label: 'delta size', unit: 'bytes', better: 'lower' },
  ], { reference: 'hexz commit (overlay)' });
  for (const [name, r] of commit) addRow(t3, name, r.median ?? {}, noteFor(r));

  const c = checkout.get('hexz checkout (overlay)').median;
  ctx.targets.push({ id: 'ws-checkout', text: 'workspace checkout in about a second and a few MiB of disk, whatever the size', measured: `${c.wall.toFixed(2)} s, ${(c.used / MiB).toFixed(1)} MiB (archive of ${fmtSize(subj.archiveBytes)})`, bar: '≤ 1 s, ≤ 50 MiB', met: c.wall <= 1 && c.used <= 50 * MiB });
  const s = status.get('hexz status (overlay)').median;
  ctx.targets.push({ id: 'ws-status', text: 'status after 3 edits hashes at most 3 files', measured: `${s.hashed} files in ${s.wall.toFixed(2)} s`, bar: '≤ 3 files', met: s.hashed <= 3 });
  const k = commit.get('hexz commit (overlay)').median;
  ctx.targets.push({ id: 'ws-commit', text: 'commit after a 1-byte edit reads and stores about one chunk', measured: `read ${(k.read / MiB).toFixed(2)} MiB, stored ${(k.stored / 1024).toFixed(0)} KiB`, bar: 'read ≤ 4 MiB (an extent and its neighbour chunks), stored ≤ 512 KiB', met: k.read <= 4 * MiB && k.stored <= 512 * 1024 });
  // The delta also holds the new version's whole file table and chunk index (format.md): at 100,000
  // files that, not the changed chunk, is most of it.
  ctx.targets.push({ id: 'ws-commit-delta', text: 'commit after a 1-byte edit: the delta file is about one chunk', measured: `${fmtSize(k.delta)} for ${fmtSize(k.stored)} of new chunks`, bar: '≤ 1 MiB', met: k.delta <= MiB });
  return {
    tables: [t1, t2, t3],
    meaning: [
      'With `--size full` all three run on one archive of the workspace data set (100,000 small files, a 4 GiB incompressible file, incompressible filler: the .hxz file is over 10 GiB); smaller presets use the disk image (checkout, commit) and small-files (status).',
      'Overlay = `hexz checkout ARCHIVE DIR` (a FUSE overlay served by a background process; the time is until the mount answers); --copy = the materialised checkout (extracts everything). Disk used = `du` of the workspace state (overlay) or of the extracted tree (--copy).',
      'Status: the first 4 bytes of three files of one directory overwritten (sizes unchanged, so each must be hashed to be told apart from HEAD), then `hexz --json status`; "files hashed" is its hashedFiles. Commit: one byte written in the middle of the image with dd, then `hexz --json commit`; "bytes read" is the overlay commit\'s upperBytes (extent-mapped files: only the ranges around changed extents); for --copy it is the size of the files whose stat changed (read whole).',
    ],
  };
}
