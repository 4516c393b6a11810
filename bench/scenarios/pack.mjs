// Scenario 1 — pack: throughput and stored size, hexz (zstd 3 and lz4) vs mksquashfs (zstd 3), casync
// make, restic backup (fresh repo) and tar | zstd -3 -T0, on every data set.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { measureTools, MiB, noteFor, usage } from '../lib/common.mjs';
import { runTimed, treeBytes, warmTree } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { hexzPack, RESTIC_ENV, resticInit } from '../lib/tools.mjs';

export const title = '1. Pack: throughput and stored size';

const COLUMNS = [
  { key: 'mibps', label: 'throughput', unit: 'MiB/s', better: 'higher', headline: true },
  { key: 'wall', label: 'wall', unit: 's', better: 'lower' },
  { key: 'cpu', label: 'CPU (user+sys)', unit: 's', better: 'lower' },
  { key: 'maxRssBytes', label: 'peak RSS', unit: 'bytes', better: 'lower' },
  { key: 'stored', label: 'stored', unit: 'bytes', better: 'lower', headline: true },
  { key: 'ratio', label: 'input ÷ stored', unit: 'x', better: 'higher', ratio: false },
];

export const HEXZ = 'hexz (zstd 3)';

/**
 * Run a peer's command, then flush its output to disk (`sync -f`), inside the timed process: hexz
 * fsyncs its archive before it exits (an archive is not packed until it is on disk), so every tool
 * pays for durability.
 */
function runSynced(output, cmd, args, opts) {
  return runTimed('bash', ['-c', 'out="$1"; shift; "$@" && sync -f "$out"', 'synced', output, cmd, ...args], opts);
}

/** The pack commands of every tool for one input, writing under `out`. */
export function packTools(ctx, input, out, isFile) {
  const T = ctx.tools;
  const skip = (tool, pkg) => (T[tool].available ? undefined : `${pkg ?? tool} is not installed`);
  const fresh = async (p) => {
    await fs.rm(p, { recursive: true, force: true });
  };
  return [
    {
      name: HEXZ,
      run: async () => {
        const r = await hexzPack(input, path.join(out, 'a.hxz'));
        return { ...usage(r), stored: r.archiveBytes, inner: r.summary.seconds };
      },
    },
    {
      name: 'hexz (lz4)',
      run: async () => {
        const r = await hexzPack(input, path.join(out, 'a-lz4.hxz'), ['-c', 'lz4']);
        return { ...usage(r), stored: r.archiveBytes };
      },
    },
    {
      name: 'mksquashfs (zstd 3)',
      skip: skip('mksquashfs', 'squashfs-tools'),
      prepare: () => fresh(path.join(out, 'a.sqfs')),
      run: async () => {
        const img = path.join(out, 'a.sqfs');
        const r = await runSynced(img, 'mksquashfs', [input, img, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-quiet', '-no-progress']);
        return { ...usage(r), stored: (await fs.stat(img)).size };
      },
    },
    {
      name: 'casync make (zstd)',
      skip: skip('casync'),
      prepare: async () => {
        await fresh(path.join(out, 'store.castr'));
        await fresh(path.join(out, isFile ? 'a.caibx' : 'a.caidx'));
      },
      run: async () => {
        const store = path.join(out, 'store.castr');
        const index = path.join(out, isFile ? 'a.caibx' : 'a.caidx');
        const r = await runSynced(index, 'casync', ['make', '--compression=zstd', `--store=${store}`, index, input]);
        return { ...usage(r), stored: (await treeBytes(store)) + (await fs.stat(index)).size };
      },
    },
    {
      name: 'restic backup (fresh repo)',
      skip: skip('restic'),
      prepare: () => resticInit(path.join(out, 'repo'), path.join(out, 'restic-cache')),
      run: async () => {
        const repo = path.join(out, 'repo');
        const r = await runSynced(repo, 'restic', ['backup', '--repo', repo, '--cache-dir', path.join(out, 'restic-cache'), '-q', input], { env: RESTIC_ENV });
        return { ...usage(r), stored: await treeBytes(repo) };
      },
    },
    {
      name: isFile ? 'zstd -3 -T0' : 'tar | zstd -3 -T0',
      skip: skip('zstd'),
      prepare: () => fresh(path.join(out, 'a.zst')),
      run: async () => {
        const f = path.join(out, 'a.zst');
        const r = isFile
          ? await runSynced(f, 'zstd', ['-3', '-T0', '-q', '-f', input, '-o', f])
          : await runTimed('bash', ['-c', 'set -o pipefail; tar -C "$1" -cf - . | zstd -3 -T0 -q -o "$2" && sync -f "$2"', 'tarzst', input, f]);
        return { ...usage(r), stored: (await fs.stat(f)).size };
      },
    },
  ];
}

async function packDataset(ctx, label, input, logical, isFile) {
  const out = await ctx.scratch(`pack/${label}`);
  ctx.log(`pack: ${label} (${(logical / MiB).toFixed(0)} MiB)`);
  await warmTree(input);
  const res = await measureTools(ctx, packTools(ctx, input, out, isFile));
  const t = table(`${label} — ${(logical / MiB).toFixed(0)} MiB input`, COLUMNS, { reference: HEXZ });
  for (const [name, r] of res) {
    const m = r.median;
    addRow(t, name, m ? { mibps: logical / MiB / m.wall, wall: m.wall, cpu: m.cpu, maxRssBytes: m.maxRssBytes, stored: m.stored, ratio: logical / m.stored } : {}, noteFor(r));
  }
  const hx = res.get(HEXZ)?.median;
  if (hx?.inner) t.notes.push(`hexz's own summary times the packing alone at ${hx.inner.toFixed(2)} s (${(logical / MiB / hx.inner).toFixed(0)} MiB/s): the other ${(hx.wall - hx.inner).toFixed(2)} s of the process are Node start-up, loading the CLI's modules and exiting.`);
  await fs.rm(out, { recursive: true, force: true });
  return { table: t, res };
}

export async function run(ctx) {
  const tables = [];
  const mixed = await ctx.data.mixed();
  tables.push((await packDataset(ctx, 'mixed', mixed.dir, mixed.bytes, false)).table);
  const disk = await ctx.data.disk();
  tables.push((await packDataset(ctx, 'disk', disk.v1, disk.bytes, true)).table);
  const small = await ctx.data.small();
  tables.push((await packDataset(ctx, 'small-files', small.dir, small.bytes, false)).table);
  const real = await ctx.data.real();
  tables.push((await packDataset(ctx, 'real', real.dir, real.bytes, false)).table);

  // DESIGN bar: pack throughput ≥ the fastest peer packer on the same input, using all cores — on
  // every data set, so one favourable input cannot carry the verdict.
  const TARGET = 'pack throughput ≥ the fastest peer packer on the same input (every data set, zstd 3, all cores)';
  const sets = tables.map((tb) => {
    const hx = tb.rows.find((r) => r.tool === HEXZ)?.values.mibps;
    const best = tb.rows.filter((r) => !r.tool.startsWith('hexz') && r.values.mibps).sort((x, y) => y.values.mibps - x.values.mibps)[0];
    return hx && best ? { name: tb.title.split(' ')[0], hx, peer: best.tool, rate: best.values.mibps } : null;
  }).filter(Boolean);
  if (sets.length) {
    const lost = sets.filter((d) => d.hx < d.rate);
    ctx.targets.push({
      id: 'pack-throughput',
      text: TARGET,
      measured: sets.map((d) => `${d.name}: hexz ${d.hx.toFixed(0)} vs ${d.peer} ${d.rate.toFixed(0)} MiB/s (${(d.hx / d.rate).toFixed(2)}×)`).join('; '),
      bar: '≥ 1.00× on each',
      met: lost.length === 0,
      note: lost.length ? `met on ${sets.length - lost.length} of ${sets.length} data sets` : undefined,
    });
  } else {
    ctx.targets.push({ id: 'pack-throughput', text: TARGET, measured: null, met: null, note: 'no peer packer ran' });
  }
  return {
    tables,
    meaning: [
      'throughput = logical input bytes (apparent sizes, sparse files counted in full) ÷ wall time of the whole process; the input is in the page cache (read once before); every output is on disk when the clock stops (hexz fsyncs its archive before it exits, as it always does; every peer command is followed by `sync -f` on its output inside the timed process).',
      'CPU = user + system seconds of the process and its children (GNU time); peak RSS = the largest resident set of the process (for the tar | zstd pipeline: the largest of its processes).',
      'stored = bytes on disk after packing: the .hxz / .sqfs / .zst file; for casync the chunk store plus the index; for restic the whole repository (restic encrypts, always).',
      'hexz, mksquashfs, restic and zstd use every core; casync and tar are single-threaded (that is how they work, not a setting).',
      'restic uses repository format 2 (compression "auto", zstd); casync --compression=zstd (its default level); mksquashfs -comp zstd -Xcompression-level 3 (1 MiB blocks, no dedup beyond identical files); hexz defaults (64 KiB average chunks).',
    ],
  };
}
