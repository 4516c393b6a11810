#!/usr/bin/env node
// hexz mount through each FUSE binding against squashfuse, on the same data in the same run: the
// `mixed` data set (bench/lib/datasets.mjs) packed with `hexz pack` and with `mksquashfs -comp zstd`,
// its large file read through each mount. Run as root (drops the page cache, raises readahead):
//
//   node bench/fuse-mount-ab.mjs [--size-mib 256] [--runs 5] [--secs 15] [--configs hexz-3,hexz-2,squashfuse]
//
// Per run and mount: a fresh mount after `sync; echo 3 > drop_caches`, then
//   cold   dd bs=1M of the large file (page cache empty, server cache empty);
//   warm   dd bs=1M iflag=direct, a second pass (the kernel's page cache bypassed: served by the FUSE
//          server from its own cache, which is what the server can do; through the page cache a warm
//          hexz mount (kernel_cache) is answered by the kernel alone);
//   random fio 4 KiB randread, QD 1, O_DIRECT, `--secs` seconds on another fresh, cold mount.
// Medians over the runs; the configurations alternate within each run so load drifts hit all alike.
// Extra environment for hexz mounts: HEXZ_BENCH_ENV='{"K":"V"}'. --readahead-kb N rewrites the hexz
// mounts' read_ahead_kb after mounting (to try other values than fuse/mount.ts's KERNEL_READAHEAD_KB).
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mixed } from './lib/datasets.mjs';
import { fioRandom, mount } from './lib/fuse.mjs';
import { dropCaches, median, procUsage, runProcess } from './lib/measure.mjs';
import { hexzPack, REPO } from './lib/tools.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const SIZE = Number(args['size-mib'] ?? 256) * 1024 * 1024;
const RUNS = Number(args.runs ?? 5);
const SECS = Number(args.secs ?? 15);
const CONFIGS = String(args.configs ?? 'hexz-3,hexz-2,squashfuse').split(',');
const WORK = path.join(REPO, 'bench', 'work', 'fuse-ab');
const extraEnv = JSON.parse(process.env.HEXZ_BENCH_ENV ?? '{}');
const READAHEAD_KB = args['readahead-kb'] ? Number(args['readahead-kb']) : undefined;
const MiB = 1 << 20;

await fs.mkdir(WORK, { recursive: true });
const data = await mixed(path.join(REPO, 'bench', 'work'), SIZE, (l) => console.error(l));
const archive = path.join(WORK, `mixed-${SIZE}.hxz`);
const image = path.join(WORK, `mixed-${SIZE}.sqfs`);
if (!existsSync(archive)) await hexzPack(data.dir, archive);
if (!existsSync(image)) spawnSync('mksquashfs', [data.dir, image, '-comp', 'zstd', '-noappend', '-quiet'], { stdio: 'inherit' });
const large = data.largeFile;

function parseDd(stderr) {
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(stderr);
  if (!m) throw new Error(`dd: ${stderr}`);
  return Number(m[1]) / Number(m[2]) / MiB;
}

async function dd(file, direct) {
  const r = await runProcess('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', ...(direct ? ['iflag=direct'] : [])], { stderr: 'capture' });
  return parseDd(r.stderr);
}

async function mountConfig(name, mnt) {
  const saved = { ...process.env };
  if (name.startsWith('hexz-')) Object.assign(process.env, { HEXZ_FUSE: name.slice(5) }, extraEnv);
  try {
    if (name === 'squashfuse') return await mount('squashfuse', { image }, mnt);
    const m = await mount('hexz', { archive }, mnt);
    if (READAHEAD_KB) {
      const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
      const dev = info.split('\n').find((l) => l.split(' ')[4] === mnt)?.split(' ')[2];
      await fs.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(READAHEAD_KB));
    }
    return m;
  } finally {
    process.env = saved;
  }
}

const results = Object.fromEntries(CONFIGS.map((c) => [c, { cold: [], warm: [], iops: [], p99: [], p50: [], cpuCold: [] }]));
for (let run = 0; run < RUNS; run++) {
  for (const name of CONFIGS) {
    const mnt = path.join(WORK, `mnt-${name}`);
    let m = await mountConfig(name, mnt);
    try {
      dropCaches();
      const u0 = await m.usage();
      const cold = await dd(path.join(mnt, large), false);
      const u1 = await m.usage();
      const warm = await dd(path.join(mnt, large), true);
      results[name].cold.push(cold);
      results[name].warm.push(warm);
      results[name].cpuCold.push((u1.cpu - u0.cpu) / (data.largeSize / 2 ** 30));
    } finally {
      await m.unmount();
    }
    m = await mountConfig(name, mnt);
    try {
      dropCaches();
      const r = await fioRandom(path.join(mnt, large), SECS);
      results[name].iops.push(r.iops);
      results[name].p50.push(r.p50us);
      results[name].p99.push(r.p99us);
    } finally {
      await m.unmount();
    }
    const x = results[name];
    console.error(`run ${run + 1} ${name}: cold ${x.cold.at(-1).toFixed(0)} MiB/s, warm ${x.warm.at(-1).toFixed(0)} MiB/s, random ${x.iops.at(-1).toFixed(0)} IOPS p99 ${x.p99.at(-1).toFixed(0)} µs`);
  }
}

const ref = results.squashfuse ? 'squashfuse' : undefined;
const md = (xs) => median(xs);
console.log(`\nhexz mount vs squashfuse: ${large} (${data.largeSize / MiB} MiB) of mixed-${SIZE / MiB} MiB, ${RUNS} runs (median), ${os.cpus().length} cores, kernel ${os.release()}, load ${os.loadavg()[0].toFixed(1)}${Object.keys(extraEnv).length ? `, env ${JSON.stringify(extraEnv)}` : ''}${READAHEAD_KB ? `, hexz read_ahead_kb ${READAHEAD_KB}` : ''}\n`);
console.log('| mount | cold dd MiB/s | warm dd (O_DIRECT) MiB/s | 4 KiB random IOPS | p50 µs | p99 µs | server CPU s/GiB (cold) |' + (ref ? ' cold / warm / IOPS vs squashfuse |' : ''));
console.log('|---|---|---|---|---|---|---|' + (ref ? '---|' : ''));
for (const [name, x] of Object.entries(results)) {
  const ratio = ref ? ` ${(md(x.cold) / md(results[ref].cold)).toFixed(2)}× / ${(md(x.warm) / md(results[ref].warm)).toFixed(2)}× / ${(md(x.iops) / md(results[ref].iops)).toFixed(2)}× |` : '';
  console.log(`| ${name} | ${md(x.cold).toFixed(0)} | ${md(x.warm).toFixed(0)} | ${md(x.iops).toFixed(0)} | ${md(x.p50).toFixed(0)} | ${md(x.p99).toFixed(0)} | ${md(x.cpuCold).toFixed(2)} |${ratio}`);
}
