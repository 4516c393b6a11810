// Scenario 3 — extract / full read: restore the whole mixed data set, and read its large file to
// /dev/null, cold (page cache dropped before each run), with every tool's own archive of the same data.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { artifact } from '../lib/artifacts.mjs';
import { measureTools, MiB, noteFor, usage } from '../lib/common.mjs';
import { runTimed } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { hexz, RESTIC_ENV } from '../lib/tools.mjs';

export const title = '3. Extract and full read';

const COLUMNS = [
  { key: 'mibps', label: 'throughput', unit: 'MiB/s', better: 'higher', headline: true },
  { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
  { key: 'cpu', label: 'CPU (user+sys)', unit: 's', better: 'lower' },
  { key: 'maxRssBytes', label: 'peak RSS', unit: 'bytes', better: 'lower' },
];

export async function run(ctx) {
  const mixed = await ctx.data.mixed();
  const T = ctx.tools;
  const out = await ctx.scratch('extract');
  const target = path.join(out, 'restored');
  const clean = async () => {
    await fs.rm(target, { recursive: true, force: true });
    ctx.dropCaches();
  };
  const A = (tool) => artifact(ctx, 'mixed', tool, mixed.dir);
  const skip = (tool, pkg) => (T[tool].available ? undefined : `${pkg ?? tool} is not installed`);
  // Build every tool's archive first (untimed).
  const hx = await A('hexz');
  const sq = T.mksquashfs.available ? await A('squashfs').catch((e) => ({ error: e })) : null;
  const ca = T.casync.available ? await A('casync').catch((e) => ({ error: e })) : null;
  const rs = T.restic.available ? await A('restic').catch((e) => ({ error: e })) : null;
  const tz = T.zstd.available ? await A('tarzst').catch((e) => ({ error: e })) : null;
  const bad = (a) => (a?.error ? `could not build its archive: ${a.error.message}` : undefined);

  ctx.log('extract: whole mixed data set');
  const extractTools = [
    { name: 'hexz extract', prepare: clean, run: async () => usage(await hexz(['extract', hx.archive, target])) },
    { name: 'unsquashfs', skip: skip('unsquashfs', 'squashfs-tools') ?? bad(sq), prepare: clean, run: async () => usage(await runTimed('unsquashfs', ['-d', target, '-f', '-q', '-no-progress', sq.image])) },
    { name: 'casync extract', skip: skip('casync') ?? bad(ca), prepare: clean, run: async () => usage(await runTimed('casync', ['extract', `--store=${ca.store}`, ca.index, target])) },
    {
      name: 'restic restore',
      skip: skip('restic') ?? bad(rs),
      prepare: clean,
      run: async () => usage(await runTimed('restic', ['restore', 'latest', '--repo', rs.repo, '--cache-dir', rs.cache, '--target', target, '-q'], { env: RESTIC_ENV })),
    },
    {
      name: 'zstd -d | tar -x',
      skip: skip('zstd') ?? bad(tz),
      prepare: async () => {
        await clean();
        await fs.mkdir(target, { recursive: true });
      },
      run: async () => usage(await runTimed('bash', ['-c', 'set -o pipefail; zstd -d -q -c "$1" | tar -x -C "$2"', 'x', tz.file, target])),
    },
  ];
  const ex = await measureTools(ctx, extractTools);
  const t1 = table(`extract the whole mixed data set (${(mixed.bytes / MiB).toFixed(0)} MiB, ${mixed.files} files), cold`, COLUMNS, { reference: 'hexz extract' });
  for (const [name, r] of ex) {
    const m = r.median;
    addRow(t1, name, m ? { mibps: mixed.bytes / MiB / m.wall, wall: m.wall, cpu: m.cpu, maxRssBytes: m.maxRssBytes } : {}, noteFor(r));
  }
  await fs.rm(target, { recursive: true, force: true });

  // Full read of one large file to /dev/null.
  ctx.log('extract: full read of the large file');
  const large = mixed.largeFile;
  const sink = '/dev/null';
  const drop = async () => ctx.dropCaches();
  const single = T.zstd.available ? await artifact(ctx, 'mixed-large', 'tarzst', path.join(mixed.dir, large), true).catch((e) => ({ error: e })) : null;
  const readTools = [
    { name: 'hexz cat', prepare: drop, run: async () => usage(await hexz(['cat', hx.archive, large], { stdout: sink })) },
    { name: 'unsquashfs -cat', skip: skip('unsquashfs', 'squashfs-tools') ?? bad(sq), prepare: drop, run: async () => usage(await runTimed('unsquashfs', ['-cat', sq.image, large], { stdout: sink })) },
    {
      name: 'restic dump',
      skip: skip('restic') ?? bad(rs),
      prepare: drop,
      run: async () => usage(await runTimed('restic', ['dump', '--repo', rs.repo, '--cache-dir', rs.cache, '-q', 'latest', path.join(rs.input, large)], { env: RESTIC_ENV, stdout: sink })),
    },
    { name: 'zstd -d (the file alone, .zst)', skip: skip('zstd') ?? bad(single), prepare: drop, run: async () => usage(await runTimed('zstd', ['-d', '-q', '-c', single.file], { stdout: sink })) },
  ];
  const rd = await measureTools(ctx, readTools);
  const t2 = table(`read ${large} (${(mixed.largeSize / MiB).toFixed(0)} MiB) to /dev/null, cold`, COLUMNS, { reference: 'hexz cat' });
  for (const [name, r] of rd) {
    const m = r.median;
    addRow(t2, name, m ? { mibps: mixed.largeSize / MiB / m.wall, wall: m.wall, cpu: m.cpu, maxRssBytes: m.maxRssBytes } : {}, noteFor(r));
  }
  t2.notes.push('casync has no command that reads one file of a .caidx without extracting (it is in the FUSE rows of scenario 4).');
  await fs.rm(out, { recursive: true, force: true });
  return {
    tables: [t1, t2],
    meaning: [
      `throughput = logical bytes restored ÷ wall time; "cold" = ${ctx.canDrop ? 'page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every run, so the archive is read from disk' : 'page cache NOT dropped (not root)'}; the restored tree is written to the page cache (no fsync).`,
      'Each tool reads its own archive of the same data built in this run: .hxz (zstd 3), .sqfs (zstd 3), casync store (zstd), restic repository (format 2, zstd auto), .tar.zst (zstd -3).',
      'unsquashfs and zstd use every core for decompression; restic restores with several goroutines; casync is single-threaded.',
    ],
  };
}
