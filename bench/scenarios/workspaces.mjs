// Workspaces (docs/workspaces.md): a writable FUSE overlay (`hexz checkout`) against the materialised
// copy (`hexz checkout --copy`). Bars (issue 16): checkout of any size in about a second and a few
// MiB of disk; status after 3 edits hashes at most 3 files; commit after a 1-byte edit of a large file
// reads and stores about one chunk.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { artifact } from '../lib/artifacts.mjs';
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

export async function run(ctx) {
  if (!existsSync('/dev/fuse')) return { skipped: '/dev/fuse is missing, so hexz checkout can only make copies (--copy)', tables: [] };
  const disk = await ctx.data.disk();
  const small = await ctx.data.small();
  const out = await ctx.scratch('workspaces');
  const home = path.join(out, 'home');
  const env = { HEXZ_HOME: home };
  const image = await artifact(ctx, 'disk', 'hexz', disk.v1, true);
  const tree = await artifact(ctx, 'small-files', 'hexz', small.dir);
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
        const { mp, r, state } = await overlay(image.archive);
        const used = await diskUsed(state);
        await drop(mp);
        return { ...usage(r), used };
      },
    },
    {
      name: 'hexz checkout --copy',
      run: async () => {
        const dir = fresh('copy');
        const r = await hexz(['checkout', '--copy', image.archive, dir], { env });
        const used = await diskUsed(dir);
        await fs.rm(dir, { recursive: true, force: true });
        return { ...usage(r), used };
      },
    },
  ]);
  const t1 = table(`checkout of the disk image (${(disk.bytes / MiB).toFixed(0)} MiB logical)`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'used', label: 'disk used', unit: 'bytes', better: 'lower' },
    { key: 'maxRssBytes', label: 'peak RSS (the CLI)', unit: 'bytes', better: 'lower' },
  ], { reference: 'hexz checkout (overlay)' });
  for (const [name, r] of checkout) addRow(t1, name, r.median ?? {}, noteFor(r));

  // 2. Status after 3 edits in the small-files tree.
  ctx.log('workspaces: status after 3 edits');
  const first = (await fs.readdir(small.dir)).sort()[0];
  const names = (await fs.readdir(path.join(small.dir, first))).sort().slice(0, 3).map((f) => `${first}/${f}`);
  const edit = (dir) => runProcess('sh', ['-c', names.map((f) => `printf x >> '${f}'`).join(' && ')], { cwd: dir });
  const status = await measureTools(ctx, [
    {
      name: 'hexz status (overlay)',
      run: async () => {
        const { mp } = await overlay(tree.archive);
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
        await hexz(['checkout', '--copy', tree.archive, dir], { env });
        await edit(dir);
        const r = await hexz(['--json', 'status', dir], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await fs.rm(dir, { recursive: true, force: true });
        return { ...usage(r), hashed: j.hashedFiles, changes: j.changes.length };
      },
    },
  ]);
  const t2 = table(`status after 3 appends in small-files (${small.files} files)`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'hashed', label: 'files hashed', unit: '', better: 'lower' },
    { key: 'changes', label: 'changes', unit: '' },
  ], { reference: 'hexz status (overlay)' });
  for (const [name, r] of status) addRow(t2, name, r.median ?? {}, noteFor(r));

  // 3. Commit after a 1-byte edit in the middle of the disk image.
  ctx.log('workspaces: commit after a 1-byte edit');
  const middle = Math.floor(disk.bytes / 2);
  const poke = (file) => runProcess('sh', ['-c', `printf Z | dd of='${file}' bs=1 seek=${middle} conv=notrunc status=none`]);
  const commit = await measureTools(ctx, [
    {
      name: 'hexz commit (overlay)',
      run: async () => {
        const { mp } = await overlay(image.archive);
        await poke(path.join(mp, 'disk'));
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
        await hexz(['checkout', '--copy', image.archive, dir], { env });
        await poke(path.join(dir, 'disk'));
        const archive = fresh('delta') + '.hxz';
        const r = await hexz(['--json', 'commit', archive, '-C', dir], { env, stdout: 'capture' });
        const j = JSON.parse(r.stdout);
        await fs.rm(dir, { recursive: true, force: true });
        // The changed file is read whole (its stat changed); a single-file archive has no other file.
        return { ...usage(r), read: j.pack.reusedFiles ? 0 : j.pack.logicalBytes, stored: j.pack.newBytes, delta: (await fs.stat(archive)).size };
      },
    },
  ]);
  const t3 = table(`commit after a 1-byte edit of the disk image (${(disk.bytes / MiB).toFixed(0)} MiB)`, [
    { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
    { key: 'read', label: 'bytes read from the workspace', unit: 'bytes', better: 'lower' },
    { key: 'stored', label: 'new chunk bytes', unit: 'bytes', better: 'lower' },
    { key: 'delta', label: 'delta size', unit: 'bytes', better: 'lower' },
  ], { reference: 'hexz commit (overlay)' });
  for (const [name, r] of commit) addRow(t3, name, r.median ?? {}, noteFor(r));

  const c = checkout.get('hexz checkout (overlay)').median;
  ctx.targets.push({ id: 'ws-checkout', text: 'workspace checkout in about a second and a few MiB of disk, whatever the size', measured: `${c.wall.toFixed(2)} s, ${(c.used / MiB).toFixed(1)} MiB`, bar: '≤ 1 s, ≤ 50 MiB', met: c.wall <= 1 && c.used <= 50 * MiB });
  const s = status.get('hexz status (overlay)').median;
  ctx.targets.push({ id: 'ws-status', text: 'status after 3 edits hashes at most 3 files', measured: `${s.hashed} files in ${s.wall.toFixed(2)} s`, bar: '≤ 3 files', met: s.hashed <= 3 });
  const k = commit.get('hexz commit (overlay)').median;
  ctx.targets.push({ id: 'ws-commit', text: 'commit after a 1-byte edit reads and stores about one chunk', measured: `read ${(k.read / MiB).toFixed(2)} MiB, stored ${(k.stored / 1024).toFixed(0)} KiB`, bar: 'read ≤ 4 MiB (an extent and its neighbour chunks), stored ≤ 512 KiB', met: k.read <= 4 * MiB && k.stored <= 512 * 1024 });
  return {
    tables: [t1, t2, t3],
    meaning: [
      'Overlay = `hexz checkout ARCHIVE DIR` (a FUSE overlay served by a background process; the time is until the mount answers); --copy = the materialised checkout (extracts everything). Disk used = `du` of the workspace state (overlay) or of the extracted tree (--copy).',
      'Status: three files of one directory appended to, then `hexz --json status`; "files hashed" is its hashedFiles. Commit: one byte written in the middle of the image with dd, then `hexz --json commit`; "bytes read" is the overlay commit\'s upperBytes (extent-mapped files: only the ranges around changed extents); for --copy it is the bytes of files that had to be read.',
    ],
  };
}
