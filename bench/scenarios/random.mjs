// Scenario 4 — random access: 4 KiB random reads through the hexz library API and through FUSE mounts
// (hexz mount, squashfuse, casync mount) with fio; plus sequential reads through the mounts.
import path from 'node:path';
import { artifact } from '../lib/artifacts.mjs';
import { MiB } from '../lib/common.mjs';
import { fioRandom, fioSequential, mount } from '../lib/fuse.mjs';
import { median, medianOf, runTimed } from '../lib/measure.mjs';
import { addRow, table } from '../lib/report.mjs';
import { NODE, REPO } from '../lib/tools.mjs';
import { existsSync } from 'node:fs';

export const title = '4. Random access and FUSE reads';

const RANDOM_COLS = [
  { key: 'iops', label: '4 KiB reads/s', unit: '', better: 'higher', digits: 0, headline: true },
  { key: 'p50us', label: 'p50 latency', unit: 'us', better: 'lower' },
  { key: 'p99us', label: 'p99 latency', unit: 'us', better: 'lower', headline: true },
  { key: 'rss', label: 'peak RSS (reader / FUSE server)', unit: 'bytes', better: 'lower' },
];
const SEQ_COLS = [
  { key: 'cold', label: 'cold sequential', unit: 'MiB/s', better: 'higher', headline: true },
  { key: 'warm', label: 'warm sequential (2nd pass, O_DIRECT)', unit: 'MiB/s', better: 'higher', headline: true },
  { key: 'rss', label: 'peak RSS of the FUSE server', unit: 'bytes', better: 'lower' },
];

export async function run(ctx) {
  const mixed = await ctx.data.mixed();
  const T = ctx.tools;
  const out = await ctx.scratch('random');
  const large = mixed.largeFile;
  const secs = ctx.duration;
  const hx = await artifact(ctx, 'mixed', 'hexz', mixed.dir);
  const notes = [];
  const randomRows = new Map();
  const seqRows = new Map();
  const keep = (map, name, rec) => {
    if (!map.has(name)) map.set(name, []);
    map.get(name).push(rec);
  };
  const failed = new Map();

  // Library API, in a fresh process with a dropped page cache each run.
  ctx.log('random: library API');
  for (let r = 0; r < ctx.runs; r++) {
    ctx.dropCaches();
    const res = await runTimed(NODE, [path.join(REPO, 'bench', 'lib', 'hexz-random.mjs'), hx.archive, large, '--seconds', String(secs), '--bs', '4096', '--seed', String(r + 1)], { stdout: 'capture' });
    const j = JSON.parse(res.stdout.trim().split('\n').pop());
    keep(randomRows, 'hexz library (Archive.read)', { iops: j.iops, p50us: j.p50us, p99us: j.p99us, rss: res.maxRssBytes });
    ctx.log(`  library run ${r + 1}: ${j.iops.toFixed(0)} reads/s, p50 ${j.p50us.toFixed(0)} µs, p99 ${j.p99us.toFixed(0)} µs`);
  }

  const fuseOk = T.fuse.available && T.fio.available;
  if (!fuseOk) notes.push(`FUSE rows skipped: ${!T.fuse.available ? '/dev/fuse or fusermount missing' : 'fio is not installed'}.`);
  const mounts = [];
  if (fuseOk) {
    const hexzMountReady = existsSync(path.join(REPO, 'dist', 'fuse', 'mount.js'));
    if (hexzMountReady) mounts.push({ name: 'hexz mount', kind: 'hexz', src: hx });
    else notes.push('hexz mount is not built (dist/fuse/mount.js missing): its rows are missing.');
    if (T.squashfuse.available && T.mksquashfs.available) mounts.push({ name: 'squashfuse', kind: 'squashfuse', src: () => artifact(ctx, 'mixed', 'squashfs', mixed.dir) });
    else notes.push('squashfuse or squashfs-tools missing: squashfuse rows are missing.');
    if (T.casync.available) mounts.push({ name: 'casync mount', kind: 'casync', src: () => artifact(ctx, 'mixed', 'casync', mixed.dir) });
  }
  for (let r = 0; r < ctx.runs && fuseOk; r++) {
    for (const m of mounts) {
      if (failed.has(m.name)) continue;
      const mnt = path.join(out, `mnt-${m.kind}`);
      try {
        const src = typeof m.src === 'function' ? await m.src() : m.src;
        // Sequential: a fresh mount, cold page cache; then a second pass.
        let fs_ = await mount(m.kind, src, mnt);
        try {
          ctx.dropCaches();
          const cold = await fioSequential(path.join(mnt, large));
          const warm = await fioSequential(path.join(mnt, large), { direct: true });
          const u = await fs_.usage();
          keep(seqRows, m.name, { cold: cold.mibps, warm: warm.mibps, rss: u.hwmBytes });
          ctx.log(`  ${m.name} run ${r + 1}: sequential cold ${cold.mibps.toFixed(0)} MiB/s, warm ${warm.mibps.toFixed(0)} MiB/s, server RSS ${(u.hwmBytes / MiB).toFixed(0)} MiB`);
        } finally {
          await fs_.unmount();
        }
        // Random: another fresh mount, cold page cache.
        fs_ = await mount(m.kind, src, mnt);
        try {
          ctx.dropCaches();
          const rnd = await fioRandom(path.join(mnt, large), secs);
          const u = await fs_.usage();
          keep(randomRows, `${m.name} + fio`, { iops: rnd.iops, p50us: rnd.p50us, p99us: rnd.p99us, rss: u.hwmBytes });
          ctx.log(`  ${m.name} run ${r + 1}: random ${rnd.iops.toFixed(0)} reads/s, p50 ${rnd.p50us.toFixed(0)} µs, p99 ${rnd.p99us.toFixed(0)} µs`);
        } finally {
          await fs_.unmount();
        }
      } catch (err) {
        failed.set(m.name, String(err.message || err).slice(0, 400));
        ctx.log(`  ${m.name} FAILED: ${err.message}`);
      }
    }
  }

  const t1 = table(`4 KiB random reads of ${large} (${(mixed.largeSize / MiB).toFixed(0)} MiB), queue depth 1, ${secs} s from a cold start`, RANDOM_COLS, { reference: 'hexz mount + fio' });
  if (!randomRows.has('hexz mount + fio')) t1.reference = 'hexz library (Archive.read)';
  for (const [name, recs] of randomRows) addRow(t1, name, medianOf(recs));
  for (const [name, err] of failed) addRow(t1, `${name} + fio`, {}, `failed: ${err}`);
  const t2 = table(`sequential reads of ${large} through FUSE (1 MiB reads)`, SEQ_COLS, { reference: 'hexz mount' });
  for (const [name, recs] of seqRows) addRow(t2, name, medianOf(recs));
  for (const [name, err] of failed) addRow(t2, name, {}, `failed: ${err}`);

  // DESIGN bar: FUSE sequential and 4 KiB random read ≥ squashfuse on the same data.
  const hs = seqRows.get('hexz mount');
  const ss = seqRows.get('squashfuse');
  const hr = randomRows.get('hexz mount + fio');
  const sr = randomRows.get('squashfuse + fio');
  if (hs && ss && hr && sr) {
    const v = (recs, k) => median(recs.map((x) => x[k]));
    const ok = v(hs, 'cold') >= v(ss, 'cold') && v(hs, 'warm') >= v(ss, 'warm') && v(hr, 'iops') >= v(sr, 'iops');
    ctx.targets.push({
      id: 'fuse-vs-squashfuse',
      text: 'FUSE sequential and 4 KiB random read ≥ squashfuse on the same data',
      measured: `sequential cold ${v(hs, 'cold').toFixed(0)} vs ${v(ss, 'cold').toFixed(0)} MiB/s, warm ${v(hs, 'warm').toFixed(0)} vs ${v(ss, 'warm').toFixed(0)} MiB/s; random ${v(hr, 'iops').toFixed(0)} vs ${v(sr, 'iops').toFixed(0)} reads/s (p99 ${v(hr, 'p99us').toFixed(0)} vs ${v(sr, 'p99us').toFixed(0)} µs)`,
      bar: '≥ 1.00× on each',
      met: ok,
    });
  } else {
    ctx.targets.push({ id: 'fuse-vs-squashfuse', text: 'FUSE sequential and 4 KiB random read ≥ squashfuse on the same data', measured: null, met: null, note: [...failed].map(([n, e]) => `${n}: ${e}`).join('; ') || notes.join(' ') || 'not measured' });
  }
  return {
    tables: [t1, t2],
    notes,
    meaning: [
      `Random reads: fio --rw=randread --bs=4k --ioengine=psync --iodepth=1 --direct=1 (O_DIRECT, so every read reaches the FUSE server instead of the kernel page cache) for ${secs} s on a fresh mount after dropping the page cache; block-aligned offsets. The library row does the same reads with Archive.read() in a fresh Node process (bench/lib/hexz-random.mjs). Reads/s includes the warm-up from cold: the server's own cache fills during the run (hexz: 256 MiB block cache by default; squashfuse and casync: small internal caches).`,
      'Sequential: fio --rw=read --bs=1M --ioengine=psync. "cold" = one pass through the page cache (kernel readahead on) on a fresh mount right after dropping the page cache. "warm" = a second pass on the same mount with O_DIRECT, so every byte is served by the FUSE server again (from its own cache, and the archive file\'s pages that the kernel kept) instead of by the kernel\'s cache of the mounted file, which would make every file system look the same (~memory speed).',
      'peak RSS = VmHWM of the FUSE server process (hexz: the `hexz mount` Node process; squashfuse -f; casync mount), or of the Node process for the library row.',
    ],
  };
}
